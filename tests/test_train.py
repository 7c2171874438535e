"""The training loop at toy size: it learns, resumes exactly, and stops cleanly on NaN."""
import shutil

import pytest
import torch
from conftest import repo_params

from pipeline import methods
from pipeline.core.errors import PipelineError
from pipeline.methods.jepa import JEPA
from pipeline.pretrain import checkpoint
from pipeline.pretrain.checkpoint import run_identity
from pipeline.pretrain.trainer import Trainer

SECTIONS = ["model", "predictor", "masks", "pretrain", "sparsity"]
TOY = {"seed": 3, "model.patch_size": 4, "model.width": 16, "model.depth": 1, "model.heads": 2,
       "predictor.width": 8, "predictor.depth": 1, "predictor.heads": 2, "masks.min_context": 1,
       "pretrain.epochs": 2, "pretrain.batch_size": 8, "pretrain.warmup_epochs": 0.5, "pretrain.log_every": 1,
       "pretrain.checkpoint_every": 2, "pretrain.monitor_every": 0,
       "sparsity.lambda": 0.01, "sparsity.kl": True, "sparsity.beta": 0.01, "sparsity.groups": 4,
       "sparsity.step_sum": 150.0}  # about what a step of 30 at the peak sums to over these 8 steps


def toy_params(sparsity: dict | None = None, **pretrain):
    """params.yaml at toy size; keyword arguments override pretrain.<key>, `sparsity` sparsity.<key>."""
    return repo_params({**TOY, **{f"pretrain.{k}": v for k, v in pretrain.items()},
                        **{f"sparsity.{k}": v for k, v in (sparsity or {}).items()}}, SECTIONS)


def toy_data(n=32, size=24):
    gen = torch.Generator().manual_seed(0)
    return torch.randint(0, 256, (n, size, size, 3), dtype=torch.uint8, generator=gen), torch.arange(n) % 4


def make(method, params, run_dir):
    images, labels = toy_data()
    return Trainer(method, methods.get(method).build, params, images, labels, 4, run_dir)


@pytest.mark.parametrize("method, sparsity", [("jepa", {}), ("sparse_jepa", {}),
                                              ("sparse_jepa", {"map_optimizer": "dual_averaging", "map_window": 3})])
def test_killed_run_resumes_to_the_same_weights(method, sparsity, tmp_path):
    params = toy_params(sparsity)  # dual averaging's window restarts right after the kill: its state is checkpointed
    straight = make(method, params, tmp_path / "a").run()

    first = make(method, params, tmp_path / "b")
    first.run(stop_after=3)  # what a kill after step 3 leaves: the checkpoint of step 3
    assert checkpoint.load(tmp_path / "b" / checkpoint.LAST)["step"] == 3
    resumed = make(method, params, tmp_path / "b")
    assert resumed.resumed_from == 3
    result = resumed.run()

    for (name, a), (_, b) in zip(straight.target_encoder.state_dict().items(),
                                 result.target_encoder.state_dict().items()):
        assert torch.equal(a, b), name
    assert [r["objective"] for r in straight.history] == [r["objective"] for r in result.history]
    assert straight.outputs.keys() == result.outputs.keys()
    for name in straight.outputs:
        assert (straight.outputs[name] == result.outputs[name]).all(), name


def test_training_changes_the_target_encoder_and_reports(tmp_path):
    params = toy_params()
    trainer = make("sparse_jepa", params, tmp_path)
    before = {k: v.clone() for k, v in trainer.model.target_encoder.state_dict().items()}
    result = trainer.run()
    after = result.target_encoder.state_dict()
    assert any(not torch.equal(before[k], after[k]) for k in before)
    # Both encoders are returned for probing: the context encoder is the gradient-trained one, the
    # target its EMA, so after training they differ.
    assert result.context_encoder is trainer.model.encoder
    context = result.context_encoder.state_dict()
    assert any(not torch.equal(context[k], after[k]) for k in after)
    assert result.summary.steps == 8 and result.summary.seed == 3 and result.outputs["column_norms"].shape == (4, 16)
    row = result.history[-1]
    assert {"objective", "autograd_loss", "loss_jepa", "penalty", "kl", "zero_fraction", "online_top1",
            "effective_rank"} <= set(row)
    assert row["penalty"] > 0 and row["kl"] > 0
    # The logged objective is L: the loss autograd saw plus the lasso the proximal step minimises (step means).
    assert row["objective"] == pytest.approx(row["autograd_loss"] + row["penalty"], rel=1e-5)
    assert result.summary.final_objective == row["objective"] and result.summary.final_loss_jepa == row["loss_jepa"]


def test_a_strong_penalty_zeroes_columns_and_none_keeps_them(tmp_path):
    strong = toy_params({"lambda": 1000.0, "kl": False}, checkpoint_every=100)
    assert make("sparse_jepa", strong, tmp_path / "s").run().summary.value("zero_fraction") > 0.5
    none = toy_params({"lambda": 0.0, "kl": False}, checkpoint_every=100)
    assert make("sparse_jepa", none, tmp_path / "n").run().summary.value("zero_fraction") == 0.0


def test_nan_loss_stops_with_a_clear_error_and_keeps_the_last_good_checkpoint(tmp_path, monkeypatch):
    params = toy_params()
    trainer = make("jepa", params, tmp_path)
    original = JEPA.forward
    calls = {"n": 0}

    def poisoned(self, *args, **kwargs):
        calls["n"] += 1
        out = original(self, *args, **kwargs)
        if calls["n"] >= 4:
            out["autograd_loss"] = out["autograd_loss"] * float("nan")
            out["objective"] = out["objective"] * float("nan")
        return out

    monkeypatch.setattr(JEPA, "forward", poisoned)
    with pytest.raises(PipelineError, match="NaN"):
        trainer.run()
    saved = checkpoint.load(tmp_path / checkpoint.LAST)
    assert saved["step"] == 2  # the checkpoint after step 2; step 4's NaN never overwrote it
    assert all(torch.isfinite(v).all() for v in saved["model"].values() if v.is_floating_point())


def test_checkpoint_folder_changes_with_params_but_not_with_logging(tmp_path):
    meta = {"name": "toy"}
    sparse, jepa = methods.get("sparse_jepa"), methods.get("jepa")

    def folder(method, params):
        return checkpoint.fingerprint(run_identity(method, params, meta))

    a = folder(sparse, toy_params())
    assert a == folder(sparse, toy_params(log_every=7))
    assert a != folder(sparse, toy_params(lr=0.1))
    assert a != folder(sparse, toy_params({"lambda": 0.5}))
    assert a != folder(jepa, toy_params())


def test_batch_larger_than_dataset_is_a_clear_error(tmp_path):
    with pytest.raises(PipelineError, match="batch_size"):
        make("jepa", toy_params(batch_size=64), tmp_path)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device on this machine")
def test_cuda_bf16_training_runs_and_stays_finite(tmp_path):
    result = make("sparse_jepa", toy_params(device="cuda"), tmp_path).run()
    assert result.summary.device.startswith("cuda")
    assert all(torch.isfinite(torch.tensor(r["objective"])) for r in result.history)
    assert next(result.target_encoder.parameters()).is_cuda


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device on this machine")
@pytest.mark.parametrize("method", ["jepa", "sparse_jepa"])
def test_cuda_step_never_waits_for_the_device(method, tmp_path):
    trainer = make(method, toy_params(device="cuda", compile="off"), tmp_path)
    trainer.train_step(0)  # first-use allocations and cuBLAS set-up may synchronise
    torch.cuda.set_sync_debug_mode("error")  # any synchronising call inside a step now raises
    try:
        for step in range(1, 4):
            trainer.train_step(step)
    finally:
        torch.cuda.set_sync_debug_mode("default")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device on this machine")
def test_compiled_step_computes_what_the_eager_step_does(tmp_path):
    eager = make("sparse_jepa", toy_params(device="cuda", compile="off"), tmp_path / "eager")
    compiled = make("sparse_jepa", toy_params(device="cuda", compile="on"), tmp_path / "compiled")
    for step in range(3):
        a, b = eager.train_step(step), compiled.train_step(step)
        # bf16 kernels fused differently: equal up to bf16 rounding.
        assert float(a["objective"]) == pytest.approx(float(b["objective"]), rel=2e-2)


def _failing_compile(*args, **kwargs):
    def forward(*a, **k):
        raise AssertionError("inductor could not tile this kernel")
    return forward


def test_a_model_this_torch_cannot_compile_trains_eager_under_auto(tmp_path, monkeypatch):
    eager = make("jepa", toy_params(compile="off"), tmp_path / "eager")
    trainer = make("jepa", toy_params(compile="auto"), tmp_path / "auto")
    # What auto does on CUDA, on the CPU: compile, here with a compiler that fails as torch 2.11's did on an H200.
    trainer.forward, trainer.compiled, trainer._compile_proven = _failing_compile(), True, False
    out = trainer.train_step(0)
    assert not trainer.compiled and trainer.forward is trainer.eager_forward
    assert float(out["objective"]) == float(eager.train_step(0)["objective"])


def test_a_failed_compile_asked_for_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setattr(torch, "compile", _failing_compile)
    trainer = make("jepa", toy_params(compile="on"), tmp_path)
    with pytest.raises(PipelineError, match="torch.compile failed.*pretrain.compile"):
        trainer.train_step(0)


def test_asking_for_cuda_without_one_is_a_clear_error(tmp_path):
    if torch.cuda.is_available():
        pytest.skip("a CUDA device is present")
    with pytest.raises(PipelineError, match="no CUDA device"):
        make("jepa", toy_params(device="cuda"), tmp_path)


def test_resumed_run_whose_mlflow_run_is_gone_logs_to_a_new_run(tmp_path, monkeypatch):
    from pipeline.runtime import tracking

    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    with tracking.Run("pretrain", "jepa", run_id="0123456789abcdef0123456789abcdef") as run:
        run.log_metrics({"loss": 1.0}, step=1)
    assert run.run_id != "0123456789abcdef0123456789abcdef"


def test_periodic_encoder_snapshots_do_not_wait_for_a_checkpoint_step(tmp_path):
    make("jepa", toy_params(keep_every_epochs=1, checkpoint_every=100), tmp_path).run()
    assert sorted(p.name for p in tmp_path.glob("encoder_step*.pt")) == ["encoder_step0000004.pt",
                                                                          "encoder_step0000008.pt"]


def test_edited_training_code_gets_a_fresh_checkpoint_folder(tmp_path, monkeypatch):
    from pipeline.core import codebase

    # A copy of the repository's code, so that a file of it can be edited.
    repo = tmp_path / "repo"
    for name in ("pipeline", "stages"):
        shutil.copytree(codebase.REPO / name, repo / name, ignore=shutil.ignore_patterns("__pycache__"))
    monkeypatch.setattr(codebase, "REPO", repo)
    monkeypatch.setattr(checkpoint, "code_fingerprint", lambda entries: codebase.code_fingerprint(entries, repo))
    jepa = methods.get("jepa")

    def folder():
        return checkpoint.fingerprint(run_identity(jepa, toy_params(), {"name": "toy"}))

    before = folder()
    (repo / "pipeline/runtime/progress.py").write_text("# a progress bar cannot change a result\n")
    assert folder() == before
    (repo / "pipeline/methods/sparse_jepa.py").write_text("# another method's file\n")
    assert folder() == before
    masks = repo / "pipeline/pretrain/masks.py"
    masks.write_text(masks.read_text() + "\n# edited\n")
    assert folder() != before


def test_saved_files_are_byte_identical_for_identical_content(tmp_path):
    state = {"w": torch.arange(4.0)}
    checkpoint.save(tmp_path / "a.pt", state)
    checkpoint.save(tmp_path / "b.pt", state)
    assert (tmp_path / "a.pt").read_bytes() == (tmp_path / "b.pt").read_bytes()
