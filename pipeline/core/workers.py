"""Independent CPU jobs in parallel processes: a stage's probe records, each a few seconds to minutes of small
float64 products that one process spreads poorly over several cores (measured, 2-core AMD EPYC: a 128-wide
FashionMNIST linear probe took 18.6 s on two torch threads and 20.1 s on one)."""
from __future__ import annotations

import multiprocessing
import signal
from typing import Any, Callable, Iterator, Sequence

import torch


def cpu_workers(requested: int, jobs: int, device: torch.device) -> int:
    """Processes to run `jobs` in: `requested` (0 = one per torch thread of this process, i.e. per core), never
    more than the jobs; 1 off the CPU, where one process owns the accelerator."""
    if device.type != "cpu":
        return 1
    return max(1, min(requested or torch.get_num_threads(), jobs))


def _init_worker(threads: int) -> None:
    torch.set_num_threads(threads)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the caller's: it terminates the workers


def _run(job: tuple[Callable[..., Any], tuple]) -> tuple[tuple, Any]:
    fn, call = job
    return call, fn(*call)


def in_processes(fn: Callable[..., Any], calls: Sequence[tuple], workers: int) -> Iterator[tuple[tuple, Any]]:
    """(call, fn(*call)) for every call, in the order they finish. With workers > 1, in that many spawned
    processes (fork is unsafe once torch's thread pool has started) that share this process's threads: each
    gets threads // workers. `fn` must be importable (module level). An exception in a job, or Ctrl-C, re-raises
    here and terminates the workers at once (a pool that waited for the jobs in flight took 39 s to stop)."""
    if workers <= 1:
        for call in calls:
            yield call, fn(*call)
        return
    threads = max(1, torch.get_num_threads() // workers)
    context = multiprocessing.get_context("spawn")
    with context.Pool(workers, initializer=_init_worker, initargs=(threads,)) as pool:  # exit: terminate()
        yield from pool.imap_unordered(_run, [(fn, call) for call in calls])
