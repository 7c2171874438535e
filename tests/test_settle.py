"""The settle bench: the maps alone on proximal SGD or dual averaging after pretraining, at toy size."""
import math
from types import SimpleNamespace

import pandas as pd
import pytest
import torch
from test_train import make, toy_data, toy_params

from pipeline import methods
from pipeline.bench.recipe import pretrain_resumable
from pipeline.bench.settle import setting_params, settle, table_md
from pipeline.bench.settle import main as settle_main
from pipeline.core.errors import PipelineError
from pipeline.pretrain.trainer import Trainer


def test_settling_moves_only_the_maps(tmp_path):
    trainer = make("sparse_jepa", toy_params({"kl": False, "lambda": 0.0}), tmp_path)
    trainer.run()
    encoder = [p.clone() for p in trainer.model.encoder.parameters()]
    maps = trainer.model.group_embed.weight.detach().clone()
    rows = list(settle(trainer, 6, 20.0, every=3))
    assert [r["step"] for r in rows] == [0, 3, 6]
    assert rows[-1]["zero_fraction"] == 0.0 and rows[-1]["support_stable_steps"] == 6  # lambda 0 cuts nothing
    assert not torch.equal(maps, trainer.model.group_embed.weight)
    assert all(torch.equal(a, b) for a, b in zip(encoder, trainer.model.encoder.parameters()))


def test_the_settle_table_has_a_row_per_run_with_the_shown_steps():
    rows = [{"trial": "t", "seed": 0, "setting": "quick", "overrides": "-", "rule": "prox", "step_size": 20,
             "step": step, "zero_fraction": z, "support_flips": {0: 0, 50: 1000, 100: 1234}[step],
             "support_stable_steps": stable, "loss_jepa": 0.01 * step, "grad_live_mean_ratio": live,
             "grad_zero_max_ratio": dead}
            for step, z, stable, live, dead in ((0, 0.5, 0, 0.25, float("nan")), (50, 0.75, 3, 1.0, 0.9),
                                                (100, 0.8, 20, 1.0, 0.9))]
    # the same trial at another map step, or under another rule, is another run
    rows += [{**r, "step_size": 60, "zero_fraction": 0.9} for r in rows[:3]]
    rows += [{**r, "rule": "rda", "zero_fraction": 0.7} for r in rows[:3]]
    md = table_md(pd.DataFrame(rows), shown=(50, 200)).splitlines()
    assert len(md) == 5
    assert md[2] == ("| quick | t | 0 | - | prox | 20 | 50.0% | 0.25 | 75.0% | — | 100 | 80.0% | 1,234 | 234 | 20 | "
                     "1.00 | 0.90 | 0.5000 -> 1.0000 |")
    assert md[3].startswith("| quick | t | 0 | - | prox | 60 | 90.0% |")
    assert md[4].startswith("| quick | t | 0 | - | rda | 20 | 70.0% |")


def test_the_dual_averaging_rule_moves_only_the_maps_and_reads_the_dual_average(tmp_path):
    trainer = make("sparse_jepa", toy_params({"kl": False, "lambda": 0.0}), tmp_path)
    trainer.run()
    encoder = [p.clone() for p in trainer.model.encoder.parameters()]
    maps = trainer.model.group_embed.weight.detach().clone()
    rows = list(settle(trainer, 4, 20.0, every=2, rule="rda"))
    assert [r["step"] for r in rows] == [0, 2, 4] and rows[-1]["zero_fraction"] == 0.0
    assert not torch.equal(maps, trainer.model.group_embed.weight)
    assert all(torch.equal(a, b) for a, b in zip(encoder, trainer.model.encoder.parameters()))


def test_a_setting_overrides_only_the_blocks_the_method_reads():
    found = setting_params("standard", ("pretrain", "sparsity"))
    assert "pretrain.epochs" in found  # its data, extract and probe keys are not the bench's
    assert {k.split(".")[0] for k in found} <= {"pretrain", "sparsity"}
    assert setting_params(None, ("pretrain",)) == {}


def test_a_killed_recipe_pretraining_resumes_and_never_from_another_runs_state(tmp_path, monkeypatch):
    images, labels = toy_data()
    data = SimpleNamespace(train_images=images.numpy(), train_labels=labels.numpy(), num_classes=4,
                           meta={"name": "toy"})
    params, root = toy_params({"kl": False}), tmp_path / "ckpt"
    real_run = Trainer.run

    def killed(self, **kwargs):
        real_run(self, stop_after=2)
        raise KeyboardInterrupt

    monkeypatch.setattr(Trainer, "run", killed)
    with pytest.raises(KeyboardInterrupt):
        pretrain_resumable("sparse_jepa", params, data, root)
    assert len(list(root.rglob("last.pt"))) == 1  # the killed run's state is kept
    monkeypatch.undo()
    changed, _ = pretrain_resumable("sparse_jepa", toy_params({"kl": False, "lambda": 0.5}), data, root)
    assert changed.resumed_from is None  # another run's state is never resumed
    trainer, result = pretrain_resumable("sparse_jepa", params, data, root)
    assert trainer.resumed_from == 2
    assert trainer.step == trainer.schedules.total_steps == result.summary.steps
    # kept for the caller, who removes it once its row is written (a trial killed while probing resumes at the end)
    assert (trainer.run_dir / "last.pt").exists() and trainer.run_dir.parent == root
    again, _ = pretrain_resumable("sparse_jepa", params, data, root)
    assert again.resumed_from == again.step == trainer.step


def test_an_unknown_rule_is_a_one_line_error_before_any_work():
    with pytest.raises(PipelineError, match="--rule adam is not a rule; use one of prox, rda, lazy"):
        settle_main(["t", "sparse_jepa", "0", "10", "20", "--rule", "adam"])


def test_a_method_without_maps_is_a_one_line_error_naming_those_with_maps():
    baseline = methods.baseline()
    with_maps = [m.key for m in methods.all_methods() if "sparsity" in m.params]
    assert with_maps and baseline not in with_maps
    with pytest.raises(PipelineError, match=f"{baseline} has no maps to settle.*name one that has: {with_maps[0]}"):
        settle_main(["t", baseline, "0", "10", "20"])
