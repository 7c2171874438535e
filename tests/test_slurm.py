"""The pretrain stage as submitit jobs, on this machine through submitit's local executor: two gloo tasks train
like one process; a job signalled as SLURM signals one at its time limit, or pre-empted, is requeued and ends
with an uninterrupted run's weights; README's cluster lambda sweep runs at toy size. The launcher block is
checked like any params block, and stays out of DVC's params and the checkpoint fingerprint."""
from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
import yaml
from conftest import REPO

from dataset_fixtures import save_prepared

from pipeline.artifacts.prepared import PreparedDataset
from pipeline.config.params import with_overrides
from pipeline.core.errors import PipelineError
from pipeline.runtime.cli import ran_as_job
from pipeline.runtime.launcher import IN_JOB, launcher_from_dict, load_launcher

TOY = {"seeds": [1], "model.patch_size": 4, "model.width": 16, "model.depth": 1, "model.heads": 2,
       "predictor.width": 8, "predictor.depth": 1, "predictor.heads": 2, "masks.min_context": 1,
       "pretrain.epochs": 2, "pretrain.batch_size": 8, "pretrain.warmup_epochs": 0.25, "pretrain.log_every": 2,
       "pretrain.checkpoint_every": 2, "pretrain.device": "cpu",
       "launcher.kind": "slurm", "launcher.gpus_per_node": 0, "launcher.cpus_per_task": 1,
       "launcher.timeout_min": 5, "launcher.max_requeues": 2}
ENCODER = Path("data/models/jepa/seed1/target.pt")
# Stands in for SLURM: at step 5 of the first attempt, task 0 gets the signal SLURM sends ahead of a time limit
# (submitit acts on it in task 0 only).
PREEMPTED_STAGE = '''
import os, signal
from pathlib import Path
import stages.pretrain
from pipeline.pretrain import trainer

real = trainer.Trainer.train_step

def train_step(self, step):
    if step == 5 and os.environ["RANK"] == "0" and not Path("signalled").exists():
        Path("signalled").touch()
        os.kill(os.getpid(), signal.SIGUSR2)
    return real(self, step)

trainer.Trainer.train_step = train_step
main = stages.pretrain.main
'''
# A pre-emption as submitit's SlurmJob._interrupt sends one: SIGTERM at step 5, the requeue signal a second later.
PREEMPTED_BY_SIGTERM = PREEMPTED_STAGE.replace(
    "os.kill(os.getpid(), signal.SIGUSR2)",
    "os.kill(os.getpid(), signal.SIGTERM); "
    "__import__('threading').Timer(1.0, os.kill, (os.getpid(), signal.SIGUSR2)).start()")


def workspace(root: Path, **launcher) -> Path:
    """A checkout's worth of params.yaml and a toy prepared dataset, in `root`."""
    rng = np.random.default_rng(0)
    save_prepared(root / "data/prepared/toy", PreparedDataset(
        "toy", ["a", "b"], rng.integers(0, 256, (32, 24, 24, 3), dtype=np.uint8), np.arange(32) % 2,
        rng.integers(0, 256, (8, 24, 24, 3), dtype=np.uint8), np.arange(8) % 2))
    overrides = {**TOY, **{f"launcher.{k}": v for k, v in launcher.items()},
                 "launcher.folder": str(root / "checkpoints/slurm")}
    raw = with_overrides(yaml.safe_load((REPO / "params.yaml").read_text()), overrides)
    (root / "params.yaml").write_text(yaml.safe_dump(raw))
    return root


@pytest.fixture
def job_env(monkeypatch):
    """What the stage and the job's tasks need: no MLflow, the local executor, the repository importable."""
    pytest.importorskip("submitit")
    monkeypatch.setenv("SPARSEJEPA_MLFLOW", "off")
    monkeypatch.setenv("SPARSEJEPA_SUBMITIT_CLUSTER", "local")
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]))
    for name in ("WORLD_SIZE", "RANK", "LOCAL_RANK", IN_JOB):
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


def run_here(root: Path, monkeypatch, argv=("jepa", "toy")) -> dict:
    """The pretrain stage as `python -m stages.pretrain` runs it (its launcher decides where), in `root`."""
    from stages import pretrain

    monkeypatch.chdir(root)
    monkeypatch.setenv("SPARSEJEPA_CHECKPOINTS", str(root / "checkpoints"))
    if not ran_as_job("stages.pretrain", list(argv)):
        pretrain.main(list(argv))
    return torch.load(root / ENCODER, weights_only=False)


@pytest.fixture(scope="module")
def one_process(tmp_path_factory) -> dict:
    """The encoder of an uninterrupted run in this process (launcher.kind local)."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("SPARSEJEPA_MLFLOW", "off")
        for name in ("WORLD_SIZE", "RANK", "LOCAL_RANK", IN_JOB):
            mp.delenv(name, raising=False)
        return run_here(workspace(tmp_path_factory.mktemp("one"), kind="local"), mp)


def job_logs(root: Path) -> str:
    return "".join(p.read_text() for p in sorted((root / "checkpoints/slurm").rglob("*_log.*")))


def test_launcher_block_is_checked_with_one_line_errors():
    good = yaml.safe_load((REPO / "params.yaml").read_text())["launcher"]
    assert load_launcher(REPO / "params.yaml").kind == "local"  # the committed default runs here
    for key, value, words in [("kind", "pbs", "launcher.kind = 'pbs' is invalid; it must be 'local' or 'slurm'"),
                              ("nodes", 0, "launcher.nodes = 0 is invalid; it must be >= 1"),
                              ("tasks_per_node", 2, "launcher.tasks_per_node = 2 is invalid; it must be "
                                                    "launcher.gpus_per_node=1 (one process per GPU)"),
                              ("timeout_min", "4h", "launcher.timeout_min must be an integer"),
                              ("account", None, "launcher.account must be a string")]:
        with pytest.raises(PipelineError) as err:
            launcher_from_dict({**good, key: value})
        assert words in str(err.value) and "\n" not in str(err.value), str(err.value)
    with pytest.raises(PipelineError, match="params.yaml has no 'launcher.folder'"):
        launcher_from_dict({k: v for k, v in good.items() if k != "folder"})
    with pytest.raises(PipelineError, match="unknown key 'launcher.gpus'"):
        launcher_from_dict({**good, "gpus": 1})


def test_launcher_is_never_a_dvc_param_and_never_fingerprinted():
    from pipeline import dag, methods
    from pipeline.core.codebase import code_files

    for under in methods.pipelines():
        assert "launcher" not in (REPO / dag.dvc_file(under)).read_text(), under

    assert not any("launcher" in str(p) or "slurm" in str(p) for p in code_files(["stages.pretrain"]))


def test_slurm_without_sbatch_is_a_clear_error(tmp_path, job_env):
    job_env.delenv("SPARSEJEPA_SUBMITIT_CLUSTER")
    job_env.setenv("PATH", str(tmp_path))  # no sbatch here
    root = workspace(tmp_path)
    job_env.chdir(root)
    with pytest.raises(PipelineError, match="sbatch is not on PATH"):
        ran_as_job("stages.pretrain", ["jepa", "toy"])


def test_two_gloo_tasks_of_a_job_train_like_one_process(tmp_path, job_env, one_process):
    root = workspace(tmp_path, tasks_per_node=2)
    encoder = run_here(root, job_env)
    summary = yaml.safe_load((root / "reports/pretrain/jepa/seed1/summary.json").read_text())
    assert summary["steps"] == 8  # 32 images / global batch 8 x 2 epochs: the tasks split each batch
    assert len(list((root / "checkpoints/slurm").rglob("*_1_log.out"))) == 1  # a second task ran
    for name, value in one_process["state_dict"].items():
        # Gradients are summed in another order across processes: equal up to float rounding.
        torch.testing.assert_close(encoder["state_dict"][name], value, rtol=1e-5, atol=1e-6, msg=name)


@pytest.mark.parametrize("tasks", [1, 2])
def test_a_job_signalled_at_its_time_limit_is_requeued_and_ends_with_uninterrupted_weights(tasks, tmp_path, job_env,
                                                                                           one_process):
    root = workspace(tmp_path, tasks_per_node=tasks)
    (root / "preempted_stage.py").write_text(PREEMPTED_STAGE)
    job_env.chdir(root)
    job_env.setenv("SPARSEJEPA_CHECKPOINTS", str(root / "checkpoints"))
    from pipeline.runtime import slurm

    slurm.run_as_job(load_launcher(), "preempted_stage", ["jepa", "toy"])
    logs = job_logs(root)
    assert (root / "signalled").exists() and "this job is timed-out" in logs and "Requeued job" in logs, logs[-3000:]
    assert "resumed from step 4" in logs, logs[-3000:]  # the checkpoint before the signal, not step 0
    encoder = torch.load(root / ENCODER, weights_only=False)
    for name, value in one_process["state_dict"].items():
        if tasks == 1:  # the existing resume is exact
            assert torch.equal(encoder["state_dict"][name], value), name
        else:  # task 1 lost its peer mid-step and failed; the requeue restarted both
            torch.testing.assert_close(encoder["state_dict"][name], value, rtol=1e-5, atol=1e-6, msg=name)


def test_a_preempted_job_saves_on_sigterm_is_requeued_and_ends_with_uninterrupted_weights(tmp_path, job_env,
                                                                                          one_process):
    root = workspace(tmp_path)
    (root / "preempted_stage.py").write_text(PREEMPTED_BY_SIGTERM)
    job_env.chdir(root)
    job_env.setenv("SPARSEJEPA_CHECKPOINTS", str(root / "checkpoints"))
    from pipeline.runtime import slurm

    slurm.run_as_job(load_launcher(), "preempted_stage", ["jepa", "toy"])
    logs = job_logs(root)
    assert "Requeued job" in logs and "resumed from step 6" in logs, logs[-3000:]  # saved at the end of step 6
    encoder = torch.load(root / ENCODER, weights_only=False)
    for name, value in one_process["state_dict"].items():
        assert torch.equal(encoder["state_dict"][name], value), name


def test_the_stage_command_submits_and_a_failure_in_the_job_is_one_line_naming_its_log(tmp_path, job_env):
    root = workspace(tmp_path)
    env = {**os.environ, "SPARSEJEPA_CHECKPOINTS": str(root / "checkpoints")}
    proc = subprocess.run([sys.executable, "-m", "stages.pretrain", "no_such_method", "toy"], cwd=root, env=env,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 1 and "submitted `python -m stages.pretrain no_such_method toy` as job" in proc.stdout
    error = proc.stderr.strip()
    assert error.startswith("error: ") and "\n" not in error and "no_such_method" in error, proc.stderr[-3000:]
    assert "_log.out" in error, error


class StuckJob:
    """A job that never ends on its own; `stop` is what interrupts the wait on it."""

    def __init__(self, stop):
        self.job_id, self.stop, self.cancelled = "7", stop, False
        self.paths = SimpleNamespace(stdout=Path("7_0_log.out"), stderr=Path("7_0_log.err"))

    def results(self):
        self.stop()
        time.sleep(30)

    def cancel(self, check=True):
        self.cancelled = True


@pytest.mark.parametrize("how", ["ctrl_c", "sigterm"])
def test_interrupting_the_wait_cancels_the_job(how, job_env):
    from pipeline.runtime import slurm

    def ctrl_c():
        raise KeyboardInterrupt

    job = StuckJob(ctrl_c if how == "ctrl_c" else lambda: os.kill(os.getpid(), signal.SIGTERM))
    previous = signal.getsignal(signal.SIGTERM)
    with pytest.raises(KeyboardInterrupt):
        slurm.wait(job)
    assert job.cancelled and signal.getsignal(signal.SIGTERM) is previous


@pytest.mark.slow
def test_a_lambda_sweep_is_one_queued_experiment_per_value_each_one_job(tmp_path, job_env):
    """README *Cluster*'s sweep at toy size: `dvc exp run --queue` per lambda, `dvc queue start --jobs 2`, in a
    fresh git + DVC repo holding only SparseJEPA's pretrain stage (a toy prepared dataset committed in git)."""
    root = workspace(tmp_path / "repo", kind="slurm")
    for name in ("pipeline", "stages"):
        shutil.copytree(REPO / name, root / name, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(REPO / ".dvcignore", root / ".dvcignore")
    (root / ".gitignore").write_text("/checkpoints/\n__pycache__/\n")
    (root / "dvc.yaml").write_text(yaml.safe_dump({"stages": {"pretrain-sparse_jepa": {
        "cmd": "python -m stages.pretrain sparse_jepa toy", "deps": ["data/prepared/toy"], "params": ["sparsity"],
        "outs": ["data/models/sparse_jepa", "reports/pretrain/sparse_jepa"]}}}))
    env = {**os.environ, "PATH": str(Path(sys.executable).parent) + os.pathsep + os.environ["PATH"],
           "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t", "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@t"}
    for key in ("PYTHONPATH", "SPARSEJEPA_CHECKPOINTS", "DVC_ROOT", "DVC_EXP_NAME"):
        env.pop(key, None)  # the stages must run the repo's own copy, their checkpoints in its checkpoints/

    def run(*cmd: str) -> str:
        proc = subprocess.run(cmd, cwd=root, env=env, capture_output=True, text=True, timeout=300)
        assert proc.returncode == 0, f"{' '.join(cmd)}:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
        return proc.stdout

    for cmd in (["git", "init", "-q"], ["dvc", "init", "-q"], ["dvc", "config", "core.analytics", "false"],
                ["git", "add", "-A"], ["git", "commit", "-qm", "toy"]):
        run(*cmd)
    for value in ("0.01", "0.1"):
        run("dvc", "exp", "run", "--queue", "-n", f"lambda-{value}", "-S", f"sparsity.lambda={value}")
    run("dvc", "queue", "start", "--jobs", "2")
    deadline = time.monotonic() + 240
    while re.search(r"Running|Queued", status := run("dvc", "queue", "status")) and time.monotonic() < deadline:
        time.sleep(2)
    assert status.count("Success") == 2, status + run("dvc", "queue", "logs", "lambda-0.1")

    shown = json.loads(run("dvc", "exp", "show", "--json"))
    runs = {r["name"]: r["data"] for c in shown for e in c.get("experiments") or [] for r in e["revs"]}
    assert sorted(runs) == ["lambda-0.01", "lambda-0.1"]
    assert runs["lambda-0.01"]["outs"]["data/models/sparse_jepa"]["hash"] != \
        runs["lambda-0.1"]["outs"]["data/models/sparse_jepa"]["hash"]
    assert len(list((root / "checkpoints/slurm").glob("*_0_result.pkl"))) == 2  # one job per experiment
    assert len(list((root / "checkpoints/sparse_jepa").iterdir())) == 2  # in the repository, not the queue's copies
