"""Independent jobs in worker processes (the probe stage's records)."""
import math
import operator

import pytest
import torch

from pipeline.core.workers import cpu_workers, in_processes


def test_worker_count_follows_the_request_the_cores_and_the_jobs():
    cpu, cuda = torch.device("cpu"), torch.device("cuda")
    assert cpu_workers(3, 10, cpu) == 3
    assert cpu_workers(3, 2, cpu) == 2  # never more processes than jobs
    assert cpu_workers(0, 100, cpu) == torch.get_num_threads()  # 0: one per core
    assert cpu_workers(4, 10, cuda) == 1  # one process owns the accelerator


def test_jobs_in_processes_give_what_they_give_in_this_one():
    calls = [(1, 2), (3, 4), (5, 6)]
    serial = dict(in_processes(operator.add, calls, 1))
    assert serial == {(1, 2): 3, (3, 4): 7, (5, 6): 11}
    assert dict(in_processes(operator.add, calls, 2)) == serial


def test_a_failing_job_raises_its_error_in_the_caller():
    with pytest.raises(ValueError, match="math domain error"):
        list(in_processes(math.sqrt, [(4.0,), (-1.0,)], 2))
