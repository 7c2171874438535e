"""The settle bench: the maps alone on proximal SGD after pretraining, at toy size."""
import math

import pandas as pd
import torch
from test_train import make, toy_params

from pipeline.bench.settle import column_ratios, setting_params, settle, table_md


def test_column_ratios_read_live_and_zero_columns_against_the_threshold():
    grad = torch.zeros(2, 3, 2)
    grad[0, :, 0] = torch.tensor([3.0, 4.0, 0.0])  # norm 5, live
    grad[1, :, 1] = torch.tensor([0.0, 0.6, 0.8])  # norm 1, cut
    support = torch.tensor([[True, False], [False, False]])
    assert column_ratios(grad, support, 2.0) == (2.5, 0.5)
    live, dead = column_ratios(grad, torch.zeros(2, 2, dtype=torch.bool), 1.0)
    assert math.isnan(live) and dead == 5.0


def test_settling_moves_only_the_maps(tmp_path):
    trainer = make("sparse_jepa", toy_params({"kl": False, "lambda": 0.0}), tmp_path)
    trainer.run()
    encoder = [p.clone() for p in trainer.model.encoder.parameters()]
    maps = trainer.model.group_embed.weight.detach().clone()
    rows = settle(trainer, 6, 20.0, every=3)
    assert [r["step"] for r in rows] == [0, 3, 6]
    assert rows[-1]["zero_fraction"] == 0.0 and rows[-1]["support_stable_steps"] == 6  # lambda 0 cuts nothing
    assert not torch.equal(maps, trainer.model.group_embed.weight)
    assert all(torch.equal(a, b) for a, b in zip(encoder, trainer.model.encoder.parameters()))



def test_the_settle_table_has_a_row_per_run_with_the_shown_steps():
    rows = [{"trial": "t", "seed": 0, "setting": "quick", "overrides": "-", "step_size": 20, "step": step,
             "zero_fraction": z, "support_flips": 0, "support_stable_steps": stable, "loss_jepa": 0.01 * step,
             "grad_live_mean_ratio": live, "grad_zero_max_ratio": dead}
            for step, z, stable, live, dead in ((0, 0.5, 0, 0.25, float("nan")), (50, 0.75, 3, 1.0, 0.9),
                                                (100, 0.8, 20, 1.0, 0.9))]
    # the same trial at another map step is another run
    rows += [{**r, "step_size": 60, "zero_fraction": 0.9} for r in rows]
    md = table_md(pd.DataFrame(rows), shown=(50, 200)).splitlines()
    assert len(md) == 4
    assert md[2] == ("| quick | t | 0 | - | 20 | 50.0% | 0.25 | 75.0% | — | 100 | 80.0% | 20 | 1.00 | 0.90 | "
                     "0.5000 -> 1.0000 |")
    assert md[3].startswith("| quick | t | 0 | - | 60 | 90.0% |")


def test_a_setting_overrides_only_the_blocks_the_method_reads():
    found = setting_params("standard", ("pretrain", "sparsity"))
    assert "pretrain.epochs" in found  # its data, extract and probe keys are not the bench's
    assert {k.split(".")[0] for k in found} <= {"pretrain", "sparsity"}
    assert setting_params(None, ("pretrain",)) == {}
