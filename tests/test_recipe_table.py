"""The validation table pairs each trial with the baseline trial's seeds and shows what it cannot tell."""
import json

import pandas as pd

from pipeline.bench.recipe_table import table_md, earlier_trials_md

PROBE_COLUMNS = ("target_val_top1", "target_knn_val_top1", "target_low_label_10_val_top1",
                 "target_low_label_100_val_top1", "context_val_top1")


def row(trial, seed, linear, ten=50.0, overrides=None):
    out = {"trial": trial, "method": "m", "seed": seed, "overrides": json.dumps(overrides or {}),
           "effective_rank": 10.0, "wall_s": 60.0, **{c: 80.0 for c in PROBE_COLUMNS}}
    out.update(target_val_top1=linear, target_low_label_10_val_top1=ten)
    return out


def cells(md: str, trial: str) -> list[str]:
    line = next(x for x in md.splitlines() if x.startswith(f"| {trial} |"))
    return [c.strip() for c in line.strip("|").split("|")]


def test_paired_difference_over_shared_seeds_and_no_interval_for_one_seed():
    frame = pd.DataFrame([row("jepa", 0, 80.0), row("jepa", 1, 81.0), row("jepa", 2, 82.0),
                          row("wide", 0, 81.0, overrides={"model.width": 192}), row("wide", 1, 82.5),
                          row("wide", 2, 82.5), row("one", 0, 85.0)])
    md = table_md(frame, baseline="jepa")
    wide = cells(md, "wide")
    assert wide[2] == "`model.width: 192`" and wide[3] == "0, 1, 2"
    assert wide[4] == "82.00 ± 0.87"
    assert wide[9].startswith("+1.00 [") and "within noise" in wide[9]  # diffs 1, 1.5, 0.5
    assert cells(md, "one")[9] == "+5.00 (1 seed: no interval)"
    assert cells(md, "jepa")[9] == "—"


def test_a_rerun_seed_counts_once_with_its_latest_row():
    frame = pd.DataFrame([row("jepa", 0, 80.0), row("jepa", 0, 70.0)])
    assert cells(table_md(frame), "jepa")[4] == "70.00"


def test_earlier_test_trials_are_listed_as_run_with_their_change():
    frame = pd.DataFrame([
        {"trial": "base", "method": "jepa", "seed": 0, "overrides": "{}", "target_top1": 80.62, "context_top1": 80.09,
         "ema_init_share": 0.3076, "position_share": 0.6113},
        {"trial": "bs64", "method": "jepa", "seed": 0, "overrides": json.dumps({"pretrain.batch_size": 64}),
         "target_top1": 79.69, "context_top1": 77.25, "ema_init_share": 0.0951, "position_share": 0.33}])
    lines = earlier_trials_md(frame).splitlines()
    assert lines[0].startswith("| trial | method | seed | change | target test top-1")
    assert lines[2] == "| base | jepa | 0 | — | 80.62 | 80.09 | 30.8% | 61.1% |"
    assert lines[3] == "| bs64 | jepa | 0 | `pretrain.batch_size: 64` | 79.69 | 77.25 | 9.5% | 33.0% |"
