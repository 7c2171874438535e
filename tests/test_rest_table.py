"""The rest table: whether a run's support had stopped changing when pretraining ended, from its records."""
import json

import numpy as np
import pandas as pd
import pytest

from pipeline.bench.rest_figure import flip_rate
from pipeline.bench.rest_figure import main as rest_figure_main
from pipeline.bench.rest_table import main as rest_main
from pipeline.bench.rest_table import table_md
from pipeline.core.errors import PipelineError


def write_run(tmp_path, trial, zero, flips, **last):
    steps = list(range(10, 10 * len(zero) + 1, 10))
    history = pd.DataFrame({"step": steps, "zero_fraction": zero, "support_flips": flips,
                            "support_stable_steps": [0] * (len(zero) - 1) + [last.get("stable", 0)],
                            "kkt_live_mean": [1.0] * (len(zero) - 1) + [last.get("live", 1.0)],
                            "kkt_zero_max": [0.5] * len(zero),
                            "columns_moved_last_quarter": [float("nan")] * (len(zero) - 1) + [last.get("moved")],
                            "moved_norm_share": [float("nan")] * (len(zero) - 1) + [last.get("share")],
                            "loss_jepa": [0.4 - 0.01 * i for i in range(len(zero))]})
    (tmp_path / "history").mkdir(exist_ok=True)
    history.to_csv(tmp_path / "history" / f"{trial}_sparse_jepa_s0.csv", index=False)
    return {"trial": trial, "method": "sparse_jepa", "seed": 0,
            "overrides": json.dumps({"sparsity.map_optimizer": "dual_averaging",
                                     "sparsity.lambda": last.get("lam", 0.01)}),
            "groups_per_latent": last.get("groups"), "init_survival_r": last.get("r")}


def test_a_run_still_cutting_and_a_run_at_rest_read_apart(tmp_path):
    # 8 logged steps (10..80): the last quarter starts at the row nearest step 60
    cutting = write_run(tmp_path, "cutting", [0, 0, 0, 0, .1, .3, .5, .7], [0, 0, 0, 0, 6, 19, 32, 45], live=0.8,
                        moved=7, share=0.0123)
    resting = write_run(tmp_path, "resting", [0, .2, .4, .5, .5, .5, .5, .5], [0, 13, 26, 32, 32, 32, 32, 32],
                        stable=40, moved=0, lam=0.02, groups=2.0, r=-0.031)
    records = tmp_path / "runs.csv"
    pd.DataFrame([cutting, resting]).to_csv(records, index=False)
    lines = table_md(records).splitlines()
    assert lines[0] == "Every run: `sparsity.map_optimizer: dual_averaging`."  # said once; lambda differs by row
    cells = {line.split(" | ")[0].strip("| "): line.split(" | ") for line in lines[4:]}
    assert cells["cutting"][1] == "`sparsity.lambda: 0.01`" and cells["resting"][1] == "`sparsity.lambda: 0.02`"
    assert cells["cutting"][3:8] == ["80", "0.0%", "0.0%", "30.0%", "70.0%"]  # steps, 25/50/75%, end
    assert cells["cutting"][8:11] == ["26", "7", "1.2%"]  # flips after step 60, from 7 columns with 1.2% of the norm
    assert cells["cutting"][12] == "0.80"  # live grad ratio
    assert cells["resting"][8:12] == ["0", "0", "—", "40"]
    assert cells["resting"][-2:] == ["2.00", "-0.03 |"] and cells["cutting"][-2:] == ["—", "— |"]  # facts of the record


def test_a_run_without_its_history_is_a_one_line_error(tmp_path, capsys):
    records = tmp_path / "runs.csv"
    pd.DataFrame([{"trial": "t", "method": "sparse_jepa", "seed": 0, "overrides": "{}"}]).to_csv(records, index=False)
    with pytest.raises(PipelineError, match="pretrain.monitor_every"):
        table_md(records)
    with pytest.raises(PipelineError, match="not found"):
        rest_main([str(tmp_path / "missing.csv")])


def test_the_flip_rate_is_changes_per_100_steps_over_the_window_before_each_step():
    steps = np.array([0, 50, 100, 150, 200, 300])
    flips = np.array([0, 10, 40, 40, 40, 40])  # 40 changes in the first 100 steps, none after
    x, rate = flip_rate(steps, flips, window=100)
    assert x.tolist() == [100, 150, 200, 300]
    assert rate.tolist() == [40.0, 30.0, 0.0, 0.0]  # at 150: 40 - 10 over steps 50-150


def test_the_rest_figure_draws_every_run_and_names_a_missing_history(tmp_path):
    runs = [write_run(tmp_path, "a", [0, 0, .1, .3, .5, .5, .5, .5], [0, 0, 6, 19, 32, 33, 33, 33])]
    records = tmp_path / "runs.csv"
    pd.DataFrame(runs).to_csv(records, index=False)
    out = tmp_path / "rest.png"
    rest_figure_main([str(records), str(out)])
    assert out.read_bytes()[:4] == b"\x89PNG"
    pd.DataFrame(runs + [{**runs[0], "trial": "gone"}]).to_csv(records, index=False)
    with pytest.raises(PipelineError, match="gone_sparse_jepa_s0.csv not found"):
        rest_figure_main([str(records), str(tmp_path / "other.png")])
    assert not (tmp_path / "other.png").exists()
