"""The rest table: whether a run's support had stopped changing when pretraining ended, from its records."""
import json

import pandas as pd
import pytest

from pipeline.bench.rest_table import main as rest_main
from pipeline.bench.rest_table import table_md
from pipeline.core.errors import PipelineError


def write_run(tmp_path, trial, zero, flips, **last):
    steps = list(range(10, 10 * len(zero) + 1, 10))
    history = pd.DataFrame({"step": steps, "zero_fraction": zero, "support_flips": flips,
                            "support_stable_steps": [0] * (len(zero) - 1) + [last.get("stable", 0)],
                            "kkt_live_mean": [1.0] * (len(zero) - 1) + [last.get("live", 1.0)],
                            "kkt_zero_max": [0.5] * len(zero), "loss_jepa": [0.4 - 0.01 * i for i in range(len(zero))]})
    (tmp_path / "history").mkdir(exist_ok=True)
    history.to_csv(tmp_path / "history" / f"{trial}_sparse_jepa_s0.csv", index=False)
    return {"trial": trial, "method": "sparse_jepa", "seed": 0,
            "overrides": json.dumps({"sparsity.map_optimizer": "dual_averaging",
                                     "sparsity.lambda": last.get("lam", 0.01)}),
            "groups_per_latent": last.get("groups"), "init_survival_r": last.get("r")}


def test_a_run_still_cutting_and_a_run_at_rest_read_apart(tmp_path):
    # 8 logged steps (10..80): the last quarter starts at the row nearest step 60
    cutting = write_run(tmp_path, "cutting", [0, 0, 0, 0, .1, .3, .5, .7], [0, 0, 0, 0, 6, 19, 32, 45], live=0.8)
    resting = write_run(tmp_path, "resting", [0, .2, .4, .5, .5, .5, .5, .5], [0, 13, 26, 32, 32, 32, 32, 32],
                        stable=40, lam=0.02, groups=2.0, r=-0.031)
    records = tmp_path / "runs.csv"
    pd.DataFrame([cutting, resting]).to_csv(records, index=False)
    lines = table_md(records).splitlines()
    assert lines[0] == "Every run: `sparsity.map_optimizer: dual_averaging`."  # said once; lambda differs by row
    cells = {line.split(" | ")[0].strip("| "): line.split(" | ") for line in lines[4:]}
    assert cells["cutting"][1] == "`sparsity.lambda: 0.01`" and cells["resting"][1] == "`sparsity.lambda: 0.02`"
    assert cells["cutting"][3:8] == ["80", "0.0%", "0.0%", "30.0%", "70.0%"]  # steps, 25/50/75%, end
    assert cells["cutting"][8] == "26" and cells["cutting"][10] == "0.80"  # flips after step 60; live grad ratio
    assert cells["resting"][8] == "0" and cells["resting"][9] == "40"
    assert cells["resting"][-2:] == ["2.00", "-0.03 |"] and cells["cutting"][-2:] == ["—", "— |"]  # facts of the record


def test_a_run_without_its_history_is_a_one_line_error(tmp_path, capsys):
    records = tmp_path / "runs.csv"
    pd.DataFrame([{"trial": "t", "method": "sparse_jepa", "seed": 0, "overrides": "{}"}]).to_csv(records, index=False)
    with pytest.raises(PipelineError, match="pretrain.monitor_every"):
        table_md(records)
    with pytest.raises(PipelineError, match="not found"):
        rest_main([str(tmp_path / "missing.csv")])
