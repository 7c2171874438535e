"""A stage as one submitit job: submit it, wait for it, requeue it when it times out or is pre-empted.

The DVC process submits the stage's own command (the same module and argv) as one job of launcher.nodes x
launcher.tasks_per_node tasks and waits. Every task joins one DistributedDataParallel world through the
environment variables torchrun would set (pipeline/pretrain/distributed.py reads them), so training runs
the code path it runs under torchrun, and task 0 writes the stage's outputs in the submitting checkout,
where DVC finds them when the job ends (the cluster's nodes must see that folder).

Ahead of the time limit, and on pre-emption, SLURM signals the job (USR2); submitit calls StageJob.checkpoint
in task 0 and requeues the job. The requeued job runs the stage again, which resumes from the trainer's last
checkpoint (checkpoints/<method>/<fingerprint>/last.pt), so the steps since it are redone and the weights
come out as an uninterrupted run's.
"""
from __future__ import annotations

import importlib
import os
import shutil
import signal
import time
import zlib

import submitit
from submitit.helpers import Checkpointable, DelayedSubmission

from pipeline.core.errors import PipelineError
from pipeline.runtime.launcher import IN_JOB, Launcher

# "local": submitit's local executor runs the job's tasks as processes of this machine (the tests, or a try
# of the job path without a cluster); unset: SLURM.
EXECUTOR = "SPARSEJEPA_SUBMITIT_CLUSTER"
PREEMPTION_WAIT_S = 120


class StageJob(Checkpointable):
    """`python -m <module> <argv>` in <cwd>, as one task of a job."""

    def __init__(self, module: str, argv: list[str], cwd: str, attempt: int = 0):
        self.module, self.argv, self.cwd, self.attempt = module, list(argv), cwd, attempt

    def __call__(self) -> str | None:
        join_world(self.attempt)
        os.environ[IN_JOB] = "1"
        os.chdir(self.cwd)
        try:
            importlib.import_module(self.module).main(self.argv)
        except PipelineError as e:  # the stage's own one-line message, for the submitting process to print
            return str(e)
        except KeyboardInterrupt:
            # A pre-emption is SIGTERM, then the signal submitit requeues on: the trainer stopped on the first with
            # its state saved; task 0 waits for the second instead of ending the job as failed (a cancelled job
            # is killed meanwhile).
            if submitit.JobEnvironment().global_rank == 0:
                time.sleep(PREEMPTION_WAIT_S)
            raise
        return None

    def checkpoint(self) -> DelayedSubmission:
        # The state worth keeping is the trainer's last.pt, not this object; a new attempt number gives the
        # requeued job a fresh rendezvous port.
        return DelayedSubmission(StageJob(self.module, self.argv, self.cwd, self.attempt + 1))


def join_world(attempt: int) -> None:
    """Describe this task's place in the job the way torchrun does, so init_from_env joins it unchanged."""
    env = submitit.JobEnvironment()
    # On one node the loopback interface always resolves; across nodes the first node hosts the rendezvous.
    master = "127.0.0.1" if env.num_nodes == 1 else env.hostnames[0]
    os.environ.update(RANK=str(env.global_rank), LOCAL_RANK=str(env.local_rank), WORLD_SIZE=str(env.num_tasks),
                      MASTER_ADDR=master, MASTER_PORT=str(rendezvous_port(env.job_id, attempt)))


def rendezvous_port(job_id: str, attempt: int) -> int:
    """The same port in every task of a job (no task can ask another), different per job and attempt."""
    return 20000 + (zlib.crc32(job_id.encode()) + attempt) % 30000


def executor(launcher: Launcher) -> submitit.AutoExecutor:
    cluster = os.environ.get(EXECUTOR) or None
    if cluster is None and shutil.which("sbatch") is None:
        raise PipelineError("launcher.kind is slurm but sbatch is not on PATH; run on a SLURM login node, or set "
                            "launcher.kind: local in params.yaml")
    requeues = {"slurm_max_num_timeout": launcher.max_requeues, "local_max_num_timeout": launcher.max_requeues}
    ex = submitit.AutoExecutor(folder=launcher.folder, cluster=cluster, **requeues)
    ex.update_parameters(nodes=launcher.nodes, tasks_per_node=launcher.tasks_per_node,
                         gpus_per_node=launcher.gpus_per_node, cpus_per_task=launcher.cpus_per_task,
                         timeout_min=launcher.timeout_min, slurm_partition=launcher.partition or None,
                         slurm_account=launcher.account or None)
    return ex


def submit(launcher: Launcher, module: str, argv: list[str]) -> submitit.Job:
    job = executor(launcher).submit(StageJob(module, argv, os.getcwd()))
    print(f"submitted `python -m {module} {' '.join(argv)}` as job {job.job_id} ({launcher.nodes} node(s) x "
          f"{launcher.tasks_per_node} task(s)); logs in {job.paths.folder}", flush=True)
    return job


def wait(job: submitit.Job) -> None:
    """Block until the job ends (requeues included); a failed task becomes one line naming its log. Ctrl-C or
    SIGTERM (what `dvc queue kill` and `kill` send) cancels the job: it must not go on writing outputs that
    nobody waits for."""
    previous = signal.signal(signal.SIGTERM, signal.default_int_handler)
    try:
        errors = [r for r in job.results() if r]
    except KeyboardInterrupt:
        job.cancel(check=False)
        raise
    except Exception as e:  # submitit's error holds the task's whole traceback; its log has it too
        raise PipelineError(f"job {job.job_id} failed ({type(e).__name__}); see {job.paths.stderr} "
                            f"(re-running resumes from the last checkpoint)") from None
    finally:
        signal.signal(signal.SIGTERM, previous)
    if errors:
        raise PipelineError(f"{errors[0]} (job {job.job_id}, log {job.paths.stdout})")
    print(f"job {job.job_id} finished", flush=True)


def run_as_job(launcher: Launcher, module: str, argv: list[str]) -> None:
    wait(submit(launcher, module, argv))
