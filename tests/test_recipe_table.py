"""The validation table pairs each trial with the baseline trial's seeds and shows what it cannot tell."""
import json

import pandas as pd
import pytest

from pipeline.bench.recipe_table import earlier_trials_md, noninferiority_md, parse_steps, steps_md, table_md
from pipeline.core.errors import PipelineError

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


def judged_row(trial, seed, linear, knn):
    out = row(trial, seed, linear)
    out.update(target_knn_val_top1=knn, context_val_top1=linear, context_knn_val_top1=knn)
    return out


def test_non_inferiority_verdicts_at_the_margin_and_seeds_to_detect_one_point():
    base = [judged_row("base", s, 80.0 + s, 60.0 + s) for s in range(3)]
    close = [judged_row("close", s, 80.0 + s + d, 60.0 + s + d) for s, d in enumerate((-0.2, 0.0, 0.2))]
    worse = [judged_row("worse", s, 80.0 + s + d, 60.0 + s + d) for s, d in enumerate((-3.0, -3.5, -2.5))]
    wide = [judged_row("wide", s, 80.0 + s + d, 60.0 + s + d) for s, d in enumerate((-4.0, 0.0, 4.0))]
    better = [judged_row("better", s, 80.0 + s + d, 60.0 + s + d) for s, d in enumerate((3.0, 3.5, 2.5))]
    md = noninferiority_md(pd.DataFrame(base + close + worse + wide + better + [judged_row("one", 0, 90.0, 70.0)]),
                           "base", margin=1.0)
    close_cells, worse_cells, wide_cells = cells(md, "close"), cells(md, "worse"), cells(md, "wide")
    assert cells(md, "better")[3].startswith("+3.00 [+1.76, +4.24]: non-inferior, better (")
    assert close_cells[2] == "0, 1, 2"
    assert close_cells[3].startswith("+0.00 [-0.50, +0.50]: non-inferior (")  # t(2) 4.30 * 0.2 / sqrt(3)
    assert "1 point: 3 seeds" in close_cells[3]
    assert worse_cells[3].startswith("-3.00 [-4.24, -1.76]: worse")
    assert wide_cells[3].startswith("+0.00 [-9.94, +9.94]: undetermined")
    assert all(c.startswith("+0.00") for c in close_cells[3:7])  # both encoders, linear and k-NN
    assert "| one |" not in md and "| base |" not in md  # one seed: no interval; the baseline itself: no row


def test_non_inferiority_needs_the_baseline_trial():
    with pytest.raises(PipelineError, match="no rows of the baseline trial 'jepa'"):
        noninferiority_md(pd.DataFrame([judged_row("a", 0, 80.0, 60.0)]), "jepa", margin=1.0)


def test_a_ladder_step_is_judged_against_the_rung_below_not_the_baseline():
    base = [judged_row("base", s, 80.0 + s, 60.0 + s) for s in range(3)]
    maps = [judged_row("maps", s, 80.0 + s + d, 60.0 + s + d) for s, d in enumerate((-3.0, -3.5, -2.5))]
    lasso = [judged_row("lasso", s, 80.0 + s + d, 60.0 + s + d) for s, d in enumerate((-3.2, -3.5, -2.3))]
    md = steps_md(pd.DataFrame(base + maps + lasso), [("maps", "base"), ("lasso", "maps")], margin=1.0)
    assert cells(md, "maps")[1] == "base" and cells(md, "maps")[3].startswith("-3.00 [-4.24, -1.76]: worse")
    step = cells(md, "lasso")
    assert step[1] == "maps" and step[2] == "0, 1, 2"
    assert step[3].startswith("+0.00 [-0.50, +0.50]: non-inferior")  # diffs -0.2, 0, +0.2 to the rung below


def test_a_ladder_step_needs_both_trials_on_shared_seeds():
    frame = pd.DataFrame([judged_row("a", 0, 80.0, 60.0), judged_row("a", 1, 81.0, 61.0),
                          judged_row("b", 1, 80.0, 60.0), judged_row("b", 2, 80.0, 60.0)])
    with pytest.raises(PipelineError, match="share fewer than two seeds"):
        steps_md(frame, [("a", "b")], margin=1.0)
    with pytest.raises(PipelineError, match="no rows of the trial 'c'"):
        steps_md(frame, [("a", "c")], margin=1.0)


def test_steps_are_read_as_colon_pairs():
    assert parse_steps("a:b,c:d") == [("a", "b"), ("c", "d")]
    for bad in ("a", "a:b:c", "a:", ""):
        with pytest.raises(PipelineError, match="is not a:b"):
            parse_steps(bad)
