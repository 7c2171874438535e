"""Two CPU processes (gloo, DistributedDataParallel) take the same updates as one process on the same
global batch, and the pretrain stage launches itself under torchrun when pretrain.processes > 1."""
from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
import yaml
from conftest import REPO
from test_train import make, toy_params

from dataset_fixtures import save_prepared

from pipeline.artifacts.prepared import PreparedDataset
from pipeline.config.params import with_overrides

STEPS = 3


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _train_as_one_of_two(rank: int, port: int, method: str, out: str) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("gloo", rank=rank, world_size=2)
    try:
        grads = _first_step_gradients(method, Path(out) / f"grads{rank}")
        trainer = make(method, toy_params(), Path(out) / f"rank{rank}")
        trainer.run(stop_after=STEPS)
        if rank == 0:
            torch.save({"state": trainer.model.state_dict(), "losses": [r["objective"] for r in trainer.history],
                        "grads": grads}, Path(out) / "ddp.pt")
    finally:
        dist.destroy_process_group()


def _first_step_gradients(method: str, run_dir: Path) -> dict[str, torch.Tensor]:
    """The gradients of step 0 (AdamW would hide a gradient summed instead of averaged: compare them too),
    and under "images" how many images this process pushed through the model."""
    from pipeline.pretrain import trainer as train

    seen = []
    real = train.apply_augment
    train.apply_augment = lambda images, *args: seen.append(len(images)) or real(images, *args)
    try:
        trainer = make(method, toy_params(), run_dir)
        trainer.train_step(0)
    finally:
        train.apply_augment = real
    grads = {name: p.grad.clone() for name, p in trainer.model.named_parameters() if p.grad is not None}
    return {**grads, "images": torch.tensor(seen)}


@pytest.mark.parametrize("method", ["jepa", "sparse_jepa"])  # sparse_jepa: group maps, proximal step, KL noise
def test_two_gloo_processes_update_like_one_process_on_the_same_global_batch(method, tmp_path):
    single = make(method, toy_params(), tmp_path / "single")
    single.run(stop_after=STEPS)
    mp.spawn(_train_as_one_of_two, args=(_free_port(), method, str(tmp_path)), nprocs=2)
    ddp = torch.load(tmp_path / "ddp.pt")

    grads = _first_step_gradients(method, tmp_path / "grads")
    assert grads.pop("images").tolist() == [8] and ddp["grads"].pop("images").tolist() == [4]  # half each
    assert set(ddp["grads"]) == set(grads)
    for name, value in grads.items():
        torch.testing.assert_close(ddp["grads"][name], value, rtol=1e-4, atol=1e-7, msg=name)

    reference = single.model.state_dict()
    assert set(ddp["state"]) == set(reference)
    for name, value in reference.items():
        # Gradients are summed in another order across processes: equal up to float rounding.
        torch.testing.assert_close(ddp["state"][name], value, rtol=1e-5, atol=1e-6, msg=name)
    np.testing.assert_allclose(ddp["losses"], [r["objective"] for r in single.history], rtol=1e-5)
    # Not trivially equal: the weights moved away from their initialisation.
    init = make(method, toy_params(), tmp_path / "init").model.state_dict()
    assert not torch.equal(init["encoder.patch_embed.weight"], reference["encoder.patch_embed.weight"])


def test_pretrain_stage_relaunches_itself_under_torchrun(tmp_path):
    rng = np.random.default_rng(0)
    save_prepared(tmp_path / "data/prepared/toy", PreparedDataset(
        "toy", ["a", "b"], rng.integers(0, 256, (32, 24, 24, 3), dtype=np.uint8), np.arange(32) % 2,
        rng.integers(0, 256, (8, 24, 24, 3), dtype=np.uint8), np.arange(8) % 2))
    overrides = {"seeds": [1], "model.patch_size": 4, "model.width": 16, "model.depth": 1, "model.heads": 2,
                 "predictor.width": 8, "predictor.depth": 1, "predictor.heads": 2, "masks.min_context": 1,
                 "pretrain.epochs": 1, "pretrain.batch_size": 8, "pretrain.warmup_epochs": 0.25,
                 "pretrain.log_every": 2, "pretrain.processes": 2}
    raw = with_overrides(yaml.safe_load((REPO / "params.yaml").read_text()), overrides)
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(raw))
    env = {**os.environ, "SPARSEJEPA_MLFLOW": "off", "SPARSEJEPA_CHECKPOINTS": str(tmp_path / "checkpoints"),
           "PYTHONPATH": str(REPO)}
    env.pop("WORLD_SIZE", None)
    proc = subprocess.run([sys.executable, "-m", "stages.pretrain", "jepa", "toy"], cwd=tmp_path,
                          env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "launching 2 processes with torchrun" in proc.stdout
    assert (tmp_path / "data/models/jepa/seed1/target.pt").is_file()
    assert (tmp_path / "data/models/jepa/seed1/context.pt").is_file()
    summary = yaml.safe_load((tmp_path / "reports/pretrain/jepa/seed1/summary.json").read_text())
    assert summary["steps"] == 4  # 32 images / global batch 8: the processes split each batch, not the epoch
