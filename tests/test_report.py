"""Results tables, seed statistics, figures and README sync on a small fixture written into tmp_path.

The fixture follows artifacts' layout: 3 seeds x (random target, JEPA and SparseJEPA target + context)
x 2 datasets, one raw-pixel record per dataset, and pretraining summaries/histories per seed. The top-1s
are chosen so every cell's mean +- std and every paired interval is known in advance.
"""
from __future__ import annotations

import dataclasses
import json
import math
import shutil
import statistics
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from conftest import repo_params

from pipeline import artifacts, methods
from pipeline.artifacts.records import ProbeRecord, write_outputs
from pipeline.config.extract import ENCODERS
from pipeline.config.report import GainGoal, ReportConfig, gain_goal
from pipeline.core.errors import PipelineError
from pipeline.report import Setting, build_report, environment, stats
from pipeline.report.figures import pick_latents, plot_groups, sort_latents_by_group, zero_fraction
from pipeline.report.readme import MARKER_END, MARKER_START
from pipeline.report.readme import main as report_main
from pipeline.report.readme import readme_in_sync, sync_readme
from pipeline.methods import Goal
from pipeline.report.goals import bounds, gain_goal_lines, method_goals_md
from pipeline.report.tables import (RESULTS_COLUMNS, SUMMARY_COLUMNS, Row, data_table_md, fmt_mean_std, fmt_points,
                                    probe_check_md)

MODELS = ["random", "jepa", "sparse_jepa"]  # registry order, as stages.report passes them
METHODS = [methods.get(k) for k in MODELS]
SEEDS = [0, 1, 2]
DATASETS = ["cifar100", "fashion_mnist"]
REPORT = ReportConfig(goals={"over_untrained": {"of": "baseline", "probe": "linear", "over": "untrained",
                                                   "points": 5.0},
                             "over_raw": {"of": "best", "probe": "linear", "over": "raw", "points": 0.0}},
                      goal_min_seeds=3, non_inferiority_margin=1.0, min_zero_fraction=0.25,
                      max_zero_fraction=0.9, min_groups_per_latent=1.0, max_groups_per_latent=3.0)
SETTING = Setting(SEEDS, DATASETS, "fashion_mnist", REPORT, repo_params(sections=["probe"]).probe, ENCODERS)
# Two-sided 95% Student-t critical value for 2 degrees of freedom (3 seeds), from the tables.
T95_2DOF = 4.302652729911275

# Per-seed top-1 of every (method, encoder, dataset); the raw pixels and their PCA have one run, the random
# projection one per seed.
CONTROLS_TOP1 = {
    ("raw", "cifar100"): [20.0], ("pca", "cifar100"): [18.0], ("gaussian", "cifar100"): [15.0, 16.0, 17.0],
    ("raw", "fashion_mnist"): [84.0], ("pca", "fashion_mnist"): [82.0], ("gaussian", "fashion_mnist"): [80.0, 80.5, 81.0],
}
TOP1 = {
    ("random", "target", "cifar100"): [12.0, 13.0, 14.0],
    ("jepa", "target", "cifar100"): [40.0, 41.0, 43.0],
    ("jepa", "context", "cifar100"): [38.0, 39.0, 40.0],
    ("sparse_jepa", "target", "cifar100"): [41.0, 43.0, 46.0],     # JEPA target + [1, 2, 3]: within noise
    ("sparse_jepa", "context", "cifar100"): [43.0, 45.0, 47.0],    # JEPA context + [5, 6, 7]: higher
    ("random", "target", "fashion_mnist"): [78.0, 79.0, 80.0],
    ("jepa", "target", "fashion_mnist"): [85.0, 85.5, 86.0],
    ("jepa", "context", "fashion_mnist"): [86.0, 87.0, 88.0],
    ("sparse_jepa", "target", "fashion_mnist"): [82.0, 81.5, 81.0],  # JEPA target - [3, 4, 5]: lower
    ("sparse_jepa", "context", "fashion_mnist"): [88.0, 89.0, math.nan],  # a failed probe run
}
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
CIFAR_DATA = {"display_name": "CIFAR-100", "train_per_class": 100, "test_per_class": 0,
              "listed": {"train": 50000, "test": 200},
              "source": [{"file": "cifar-100-python.tar.gz", "md5": "eb9058c3a382ffc7106e4002c42a8d85",
                          "url": "https://www.cs.toronto.edu/~kriz/cifar-100-python.tar.gz"}]}


def _write_probe(path: Path, model: str, dataset: str, top1: float, seed: int | None = None,
                 encoder: str | None = None) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    probe = {"method": model, "seed": seed, "encoder": encoder, "dataset": dataset, "top1": top1, "val_top1": top1 - 0.5,
             "l2": 1e-4, "on_edge": False, "converged": True, "iterations": 300, "n_train": 900, "n_val": 100,
             "n_test": 200, "num_classes": 10, "feature_dim": 64,
             "multi_information": 3.0 + 0.25 * (seed or 0), "knn_top1": top1 - 2.0, "knn_val_top1": top1 - 1.0,
             # Two draws at 10 per class: their mean is top1 - 10.
             "low_label": {"10": {"top1": [top1 - 11.0, top1 - 9.0], "val_top1": [50.0, 50.0], "l2": [0.1, 0.1]}}}
    if dataset == "cifar100":  # what the probe stage records of the prepared data; fashion_mnist's lacks it
        probe["data"] = CIFAR_DATA
    path.write_text(json.dumps(probe))  # json writes NaN as the bare token NaN, as the probe stage does


def _write_probes(reports: Path, models: list[str] = MODELS) -> None:
    for (control, dataset), values in CONTROLS_TOP1.items():
        for seed, top1 in zip(artifacts.control_seeds(control, tuple(SEEDS)), values):
            _write_probe(artifacts.probe_path(artifacts.PIXELS, dataset, seed, control, reports), artifacts.PIXELS,
                         dataset, top1, seed, control)
    for (model, encoder, dataset), values in TOP1.items():
        if model in models:
            for seed, top1 in zip(SEEDS, values):
                _write_probe(artifacts.probe_path(model, dataset, seed, encoder, reports), model, dataset, top1,
                             seed, encoder)


def _write_history(reports: Path, model: str, seed: int, steps: int = 120) -> None:
    step = np.arange(steps)
    # Methods and seeds differ a little, as real runs do, so every line of the curves is distinguishable.
    scale = (0.9 if model == "jepa" else 1.2) + 0.1 * seed
    frame = pd.DataFrame({
        "step": step, "epoch": step // 40, "images": step * 64,
        "objective": scale / (1 + 0.05 * step), "autograd_loss": scale / (1 + 0.05 * step),
        "loss_jepa": scale / (1 + 0.05 * step),
        "lr": 1e-3, "wd": 0.05, "ema": 0.996, "img_per_s": 500.0,
        # Monitor-only column: empty except every 40 steps, as the trainer writes it.
        "online_top1": np.where(step % 40 == 0, 30.0, np.nan),
    })
    if model == "sparse_jepa":  # only SparseJEPA logs its regularisers and pruning (JEPA's log has no such column)
        frame["penalty"] = (0.1 + 0.02 * seed) * np.exp(-step / 50)
        frame["kl"] = 0.02 + 0.001 * step
        frame["autograd_loss"] += 0.001 * frame["kl"]
        frame["objective"] = frame["autograd_loss"] + frame["penalty"]
        frame["zero_fraction"] = np.linspace(0, 0.25 + 0.125 * seed, steps)
    path = artifacts.history_path(model, seed, reports)
    path.parent.mkdir(parents=True, exist_ok=True)
    frame.to_csv(path, index=False)


def _write_summary(reports: Path, model: str, seed: int) -> None:
    signals = {"feature_std": 0.11 + 0.01 * seed, "effective_rank": 7.46, "position_share": 0.8,
               "position_loss": 0.15}
    if model == "random":  # what pretrain_method writes for an untrained reference
        summary = {"method": model, "seed": seed, "steps": 0, **signals}
    else:
        summary = {"method": model, "seed": seed, "wall_s": 80.0 + 10 * seed, "img_per_s": 512.5, "steps": 120,
                   "epochs": 3, "final_loss_jepa": 0.1234, "device": "cpu", "ema_init_share": 0.31, **signals}
    if model == "sparse_jepa":
        summary["zero_fraction"] = 0.25 + 0.125 * seed  # mean 37.5%
        summary["groups_per_latent"] = 2.0 + seed        # mean 3.0
        summary["groups_per_used_latent"] = 2.5 + seed   # mean 3.5
    path = artifacts.summary_path(model, seed, reports)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(summary))


def _norms() -> np.ndarray:
    rng = np.random.default_rng(0)
    norms = rng.uniform(0.1, 1.0, size=(4, 16))
    norms[:, ::3] = 0.0  # exact zeros the heatmap must count
    return norms


def _write_fixture(reports: Path, models: list[str] = MODELS) -> Path:
    _write_probes(reports, models)
    for model in models:
        for seed in SEEDS:
            _write_summary(reports, model, seed)
            if model != "random":
                _write_history(reports, model, seed)
    if "sparse_jepa" in models:
        write_outputs(artifacts.outputs_path("sparse_jepa", 0, reports), {"column_norms": _norms()})
    return reports


ENV = {"setting": "quick", "device": "cpu (test)", "torch": "2.x", "pretrain_dataset": "fashion_mnist",
       "wall_s": {"jepa": 90.0, "sparse_jepa": 3600.0}}


@pytest.fixture
def reports(tmp_path: Path) -> Path:
    return _write_fixture(tmp_path / "reports")


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> dict:
    # Built once per module: plotting dominates the run time and no test modifies the outputs.
    return build_report(_write_fixture(tmp_path_factory.mktemp("built") / "reports"), METHODS, SETTING, ENV)


@pytest.fixture(scope="module")
def md(built: dict) -> str:
    return built["written"]["results_md"].read_text()


def _tables(md: str) -> list[list[list[str]]]:
    """Every Markdown table in `md` as rows of cells, header included."""
    out = []
    for block in md.split("\n\n"):
        lines = [line for line in block.splitlines() if line.startswith("|")]
        if len(lines) >= 2 and lines[1].startswith("| ---"):
            out.append([[c.strip() for c in line.strip().strip("|").split("|")] for line in lines
                        if not line.startswith("| ---")])
    return out


def _table(md: str, *header: str) -> list[list[str]]:
    """The first table whose header starts with `header`."""
    return next(t for t in _tables(md) if t[0][:len(header)] == list(header))


def _row(table: list[list[str]], *start: str) -> list[str]:
    """The one row whose first cells are `start`."""
    found = [r for r in table if r[:len(start)] == list(start)]
    assert len(found) == 1, f"{start} matches {len(found)} rows of {table}"
    return found[0]


def _mean_std(values: list[float]) -> str:
    """The expected cell text, computed with the statistics module (not the code under test)."""
    return f"{statistics.mean(values):.2f} ± {statistics.stdev(values):.2f}"


# ------------------------------------------------------------------------------ the results table

def test_results_md_starts_at_level_3(md: str) -> None:
    assert md.startswith("### Results")
    assert not any(line.startswith("# ") or line.startswith("## ") for line in md.splitlines())
    assert "mean ± std over 3 seeds (0, 1, 2;" in md


def test_results_table_rows_and_order(md: str) -> None:
    table = _table(md, "Model", "encoder", "CIFAR-100")
    # Model | encoder | CIFAR-100 | CIFAR-100 paper | fashion_mnist | fashion_mnist paper
    # A dataset without a recorded display name shows its key; column order follows `datasets`.
    assert table[0] == ["Model", "encoder", "CIFAR-100", "CIFAR-100 paper", "fashion_mnist", "fashion_mnist paper"]
    assert [r[:2] for r in table[1:]] == [["Raw pixels", "—"], ["PCA of pixels", "—"],
                                          ["Random projection of pixels", "—"], ["Random encoder", "—"], ["JEPA", "target"],
                                          ["JEPA", "context"], ["SparseJEPA", "target"], ["SparseJEPA", "context"]]


def test_results_table_cells_are_mean_and_std_over_seeds(md: str) -> None:
    table = _table(md, "Model", "encoder", "CIFAR-100")
    jepa = _row(table, "JEPA", "target")
    assert jepa[2] == _mean_std(TOP1[("jepa", "target", "cifar100")]) == "41.33 ± 1.53"
    assert jepa[3] == "40.01"  # the paper probes the target encoder
    assert jepa[4:] == ["85.50 ± 0.50", "—"]  # no paper number on FashionMNIST
    assert _row(table, "JEPA", "context")[2:4] == ["39.00 ± 1.00", "—"]  # no paper number for the context encoder
    assert _row(table, "SparseJEPA", "target")[2:4] == [_mean_std(TOP1[("sparse_jepa", "target", "cifar100")]),
                                                         "45.40"]
    assert _row(table, "SparseJEPA", "context")[4] == "NaN"  # one failed seed poisons the cell, visibly
    assert _row(table, "Raw pixels")[2:] == ["20.00", "—", "84.00", "—"]  # one run: no std
    assert _row(table, "PCA of pixels")[2:] == ["18.00", "—", "82.00", "—"]
    assert _row(table, "Random projection of pixels")[2:] == ["16.00 ± 1.00", "—", "80.50 ± 0.50", "—"]
    assert _row(table, "Random encoder")[2:4] == ["13.00 ± 1.00", "—"]


def test_probes_table_puts_every_probe_side_by_side(md: str) -> None:
    table = _table(md, "Model", "encoder", "CIFAR-100 linear")
    assert table[0] == ["Model", "encoder", "CIFAR-100 linear", "CIFAR-100 k-NN", "CIFAR-100 10/class",
                        "fashion_mnist linear", "fashion_mnist k-NN", "fashion_mnist 10/class"]
    assert len(table) == 1 + 8
    values = TOP1[("jepa", "target", "cifar100")]
    assert _row(table, "JEPA", "target")[2:5] == [_mean_std(values), _mean_std([v - 2 for v in values]),
                                                   _mean_std([v - 10 for v in values])]
    assert _row(table, "Raw pixels")[2:5] == ["20.00", "18.00", "10.00"]


def test_mean_std_and_points_formatting() -> None:
    assert fmt_mean_std(41.3333, 1.5275) == "41.33 ± 1.53"
    assert fmt_mean_std(20.0, math.nan) == "20.00"
    assert fmt_mean_std(math.nan, 1.0) == "NaN"
    assert fmt_points(2.0) == "+2.00" and fmt_points(-0.001) == "+0.00"  # never "-0.00"
    assert fmt_points(-4.0) == "-4.00" and fmt_points(math.nan) == "NaN"


# ------------------------------------------------------------------------------ paired differences

def _interval(diffs: list[float]) -> str:
    """Expected '+m [lo, hi]' text of a paired difference, computed independently of pipeline.report.stats."""
    mean = statistics.mean(diffs)
    half = T95_2DOF * statistics.stdev(diffs) / math.sqrt(len(diffs))
    return f"{mean:+.2f} [{mean - half:+.2f}, {mean + half:+.2f}]"


def test_paired_difference_within_noise(md: str) -> None:
    table = _table(md, "Comparison (a − b)")
    assert table[0] == ["Comparison (a − b)", "CIFAR-100", "fashion_mnist"]
    cell = _row(table, "SparseJEPA target − JEPA target")[1]
    # Within noise, with the smallest difference 3 seeds of this spread detect at 80% power:
    # (t_0.975,2 + t_0.8,2) * std / sqrt(3) = (4.303 + 1.061) * 1 / 1.732 = 3.10.
    assert cell == f"{_interval([1.0, 2.0, 3.0])}, within noise (detectable ±3.10)" == (
        "+2.00 [-0.48, +4.48], within noise (detectable ±3.10)")


def test_paired_difference_higher_and_lower(md: str) -> None:
    table = _table(md, "Comparison (a − b)")
    assert _row(table, "SparseJEPA context − JEPA context")[1] == f"{_interval([5.0, 6.0, 7.0])}, higher"
    assert _row(table, "SparseJEPA target − JEPA target")[2] == f"{_interval([-3.0, -4.0, -5.0])}, lower"
    assert _row(table, "SparseJEPA context − JEPA context")[2] == "NaN"  # the failed seed


def test_comparisons_pair_encoders_with_the_baseline_the_untrained_reference_and_the_controls(md: str) -> None:
    labels = [r[0] for r in _table(md, "Comparison (a − b)")[1:]]
    assert labels == ["SparseJEPA target − JEPA target", "SparseJEPA context − JEPA context",
                      "JEPA target − Random encoder", "JEPA context − Random encoder",
                      "SparseJEPA target − Random encoder", "SparseJEPA context − Random encoder",
                      "JEPA target − Raw pixels", "JEPA target − PCA of pixels",
                      "JEPA target − Random projection of pixels", "SparseJEPA target − Raw pixels",
                      "SparseJEPA target − PCA of pixels", "SparseJEPA target − Random projection of pixels"]
    table = _table(md, "Comparison (a − b)")
    # A control probed once is the same number for every seed: the interval is the seeds' spread about it.
    assert _row(table, "JEPA target − PCA of pixels")[1].startswith(_interval([22.0, 23.0, 25.0]))
    # The random projection has a run per seed: paired by seed.
    assert _row(table, "JEPA target − Random projection of pixels")[1].startswith(_interval([25.0, 25.0, 26.0]))
    jepa_over_random = [a - b for a, b in zip(TOP1[("jepa", "target", "cifar100")],
                                              TOP1[("random", "target", "cifar100")])]
    assert _row(_table(md, "Comparison (a − b)"), "JEPA target − Random encoder")[1].startswith(
        _interval(jepa_over_random))


def test_paired_differences_under_every_probe_on_the_pretraining_data(md: str) -> None:
    table = _table(md, "Comparison (a − b)", "linear")
    assert table[0] == ["Comparison (a − b)", "linear", "k-NN", "10/class"]
    jepa = [a - b for a, b in zip(TOP1[("jepa", "target", "fashion_mnist")], TOP1[("random", "target", "fashion_mnist")])]
    # The fixture's k-NN and 10/class scores are top-1 minus a constant: the same paired differences.
    assert _row(table, "JEPA target − Random encoder")[1:] == [f"{_interval(jepa)}, higher"] * 3
    assert len(table) == len(_table(md, "Comparison (a − b)", "CIFAR-100"))


def test_goals_on_the_pretraining_data(md: str) -> None:
    assert "Goals on fashion_mnist (the pretraining data; params.yaml `report`), test top-1 gain" in md
    lines = {line.split(":")[0][3:-1]: line for line in md.splitlines() if line.startswith("- `")}
    assert set(lines) == {"over_untrained", "over_raw"}
    # The baseline JEPA target over random, paired [7, 6.5, 6] -> +6.50, interval above 0: the +5 goal is met.
    assert lines["over_untrained"] == (
        f"- `over_untrained`: JEPA target − random encoder, linear probe: {_interval([7.0, 6.5, 6.0])}, higher "
        f"(goal: ≥ +5.00 with its 95% interval above 0 over ≥ 3 seeds: met)")
    # The best target on validation (JEPA: validation = test - 0.5 in the fixture) over the raw pixels (84, one run).
    assert lines["over_raw"] == (
        f"- `over_raw`: JEPA target (best on validation) − raw pixels, linear probe: {_interval([1.0, 1.5, 2.0])}, "
        f"higher (goal: ≥ +0.00 with its 95% interval above 0 over ≥ 3 seeds: met)")


def _goal_runs(val: dict[str, float], test: dict[str, list[float]]) -> dict:
    runs = {(f"{m}/target", "d"): {s: _record(method=m, seed=s, top1=t, val_top1=val[m], low_label={})
                                   for s, t in enumerate(scores)} for m, scores in test.items()}
    runs[("pixels/raw", "d")] = {None: _record(method="pixels", encoder="raw", seed=None, top1=80.0)}
    return runs


def test_best_is_chosen_on_validation_and_a_goal_needs_its_interval_above_zero() -> None:
    rows = [Row("pixels", "raw"), Row("jepa", "target"), Row("sparse_jepa", "target")]
    goal = GainGoal("g", "best", "linear", "raw", 1.0)
    # SparseJEPA is better on test, JEPA on validation: the goal holds JEPA.
    runs = _goal_runs({"jepa": 90.0, "sparse_jepa": 85.0}, {"jepa": [83.0, 83.5, 83.5], "sparse_jepa": [90.0] * 3})
    line, = gain_goal_lines(runs, rows, goal, "d", "jepa", 3, 1.0)
    assert line.startswith("- `g`: JEPA target (best on validation) − raw pixels, linear probe: +3.33 [")
    assert line.endswith(": met)")
    # A mean above the bound whose interval reaches below 0 is not met.
    noisy = _goal_runs({"jepa": 90.0, "sparse_jepa": 85.0}, {"jepa": [70.0, 90.0, 96.0], "sparse_jepa": [90.0] * 3})
    line, = gain_goal_lines(noisy, rows, goal, "d", "jepa", 3, 1.0)
    # ... and says how many seeds that spread of the differences would need to detect the 1-point effect.
    n = stats.seeds_to_detect(statistics.stdev([70.0, 90.0, 96.0]), 1.0)
    assert "within noise" in line and n > 3 and line.endswith(f": not met); {n} seeds would detect ±1.00 at this "
                                                               f"spread")
    # Two seeds cannot meet a 3-seed goal, however large the gain.
    two = _goal_runs({"jepa": 90.0, "sparse_jepa": 85.0}, {"jepa": [90.0, 91.0], "sparse_jepa": [90.0] * 2})
    assert gain_goal_lines(two, rows, goal, "d", "jepa", 3, 1.0)[0].endswith(": not met)")


def test_a_malformed_goal_is_a_clear_error() -> None:
    with pytest.raises(PipelineError, match=r"report.goals.g.over = 'pixels' is invalid; it must be one of raw"):
        gain_goal("g", {"of": "best", "probe": "linear", "over": "pixels", "points": 1.0})
    with pytest.raises(PipelineError, match=r"report.goals.g must be a mapping with exactly the keys"):
        gain_goal("g", {"of": "best", "probe": "linear", "over": "raw"})
    with pytest.raises(PipelineError, match=r"report.goals.g.probe = 'low_label_0'"):
        gain_goal("g", {"of": "best", "probe": "low_label_0", "over": "raw", "points": 1.0})


# ------------------------------------------------------------------------------ CSVs

def test_results_csv_has_one_row_per_probe_run(built: dict) -> None:
    frame = pd.read_csv(built["written"]["results_csv"])
    assert list(frame.columns) == RESULTS_COLUMNS + ["low_label_10_top1"]
    # 2 x 2 runs of the controls drawn once + 3 seeds x (1 random projection + 1 random + 2 JEPA + 2 SparseJEPA
    # encoders) x 2 datasets.
    assert len(frame) == 4 + 3 * 6 * 2
    assert not frame.duplicated(["method", "encoder", "seed", "dataset"]).any()
    runs = frame[frame["method"] != artifacts.PIXELS]
    assert sorted(set(runs["seed"].astype(int))) == SEEDS
    once = frame[(frame["method"] == artifacts.PIXELS) & (frame["encoder"] != "gaussian")]
    assert len(once) == 4 and once["seed"].isna().all()  # the raw pixels and their PCA have no seed
    lines = built["written"]["results_csv"].read_text().splitlines()
    assert lines[5].startswith("pixels,gaussian,0,cifar100,")  # a seed is an integer, not "0.0"
    one = frame.set_index(["method", "encoder", "seed", "dataset"]).loc[("jepa", "context", 2, "cifar100")]
    assert one["top1"] == 40.0 and one["method_name"] == "JEPA" and one["dataset_name"] == "CIFAR-100"
    assert one["multi_information"] == pytest.approx(3.5) and one["converged"]
    assert one["knn_top1"] == 38.0 and one["low_label_10_top1"] == 30.0  # the mean over its draws
    failed = frame.set_index(["method", "encoder", "seed", "dataset"]).loc[("sparse_jepa", "context", 2,
                                                                           "fashion_mnist")]
    assert math.isnan(failed["top1"])


def test_results_summary_csv_has_the_means(built: dict) -> None:
    frame = pd.read_csv(built["written"]["results_summary_csv"])
    assert list(frame.columns) == SUMMARY_COLUMNS + ["low_label_10_mean", "low_label_10_std"]
    assert len(frame) == 8 * 2  # one per (results row, dataset)
    cells = frame.set_index(["method", "encoder", "dataset"])
    for (model, encoder, dataset), values in TOP1.items():
        cell = cells.loc[(model, encoder, dataset)]
        assert cell["seeds"] == 3
        if any(math.isnan(v) for v in values):
            assert math.isnan(cell["top1_mean"])
        else:
            assert cell["top1_mean"] == pytest.approx(statistics.mean(values))
            assert cell["top1_std"] == pytest.approx(statistics.stdev(values))
    pixels = cells.loc[(artifacts.PIXELS, "raw", "cifar100")]
    assert pixels["seeds"] == 1 and pixels["top1_mean"] == 20.0 and math.isnan(pixels["top1_std"])
    gaussian = cells.loc[(artifacts.PIXELS, "gaussian", "cifar100")]
    assert gaussian["seeds"] == 3 and gaussian["top1_mean"] == 16.0 and gaussian["knn_mean"] == 14.0
    jepa = cells.loc[("jepa", "target", "cifar100")]
    assert jepa["low_label_10_mean"] == pytest.approx(statistics.mean(TOP1[("jepa", "target", "cifar100")]) - 10)
    assert jepa["knn_std"] == pytest.approx(statistics.stdev(TOP1[("jepa", "target", "cifar100")]))
    assert cells.loc[("jepa", "target", "cifar100"), "paper_top1"] == pytest.approx(40.01)
    assert math.isnan(cells.loc[("jepa", "context", "cifar100"), "paper_top1"])
    assert built["summary"].shape == frame.shape


# ------------------------------------------------------------------------------ the other tables

def test_results_md_probe_data_table(md: str) -> None:
    table = _table(md, "Dataset")
    # Dataset | test split | source | train images | test images | classes
    assert _row(table, "CIFAR-100") == ["CIFAR-100", "official test", "`cifar-100-python.tar.gz` (md5 checked)",
                                        "1,000 (100 per class of 50,000)", "200 (all)", "10"]
    assert _row(table, "fashion_mnist")[3:5] == ["1,000 (all)", "200 (all)"]  # records without data facts


def _record(**fields) -> ProbeRecord:
    """A probe record as the report reads it; what was probed matters only through the runs' keys here."""
    return ProbeRecord(**{"method": "m", "seed": 0, "encoder": "target", "dataset": "d", **fields})


def test_data_table_names_extracted_trees_and_unchecked_files() -> None:
    tree = "$SPARSEJEPA_DATA_MIRROR/clevr-mini/CLEVR_v1.0"
    runs = {("random/target", "clevr_count"): {0: _record(
                n_train=180, n_val=20, n_test=67, num_classes=8, data={
                    "display_name": "CLEVR/Count", "test_split": "official val", "listed": {"train": 200, "test": 67},
                    "source": [{"extracted_tree": tree}]})},
            ("random/target", "places205"): {0: _record(n_train=9, n_val=1, n_test=4, num_classes=2, data={
                "display_name": "Places205", "train_per_class": 5, "listed": {"train": 30, "test": 4},
                "source": [{"file": "a.tar.gz", "md5": "1", "official_md5": None, "url": "u"}]})}}
    table = _table(data_table_md(runs, ["clevr_count", "places205"]), "Dataset")
    assert _row(table, "CLEVR/Count") == ["CLEVR/Count", "official val", f"extracted tree `{tree}`",
                                          "200 (all)", "67 (all)", "8"]
    assert _row(table, "Places205")[2:4] == ["`a.tar.gz` (no official checksum)", "10 (5 per class of 30)"]


def test_results_md_environment_and_pretrain_facts(md: str) -> None:
    assert "- Hardware: cpu (test)" in md
    assert "- Pretraining data: fashion_mnist" in md  # its probe records name no display name
    assert "JEPA 90 s" in md and "SparseJEPA 60.0 min" in md
    # Model | encoder | images/s | wall time per seed | steps | zero columns | MI per dataset (mean over seeds)
    pretrain = _table(md, "Model", "encoder", "images/s")
    assert _row(pretrain, "SparseJEPA", "target") == ["SparseJEPA", "target", "512", "90 s", "120", "37.5%", "3.50",
                                                      "—", "—", "3.25", "3.25"]
    assert _row(pretrain, "SparseJEPA", "context")[2:6] == ["512", "90 s", "120", "37.5%"]
    assert _row(pretrain, "JEPA", "target")[5] == "—"  # no group maps
    assert _row(pretrain, "Random encoder") == ["Random encoder", "—", "—", "—", "0", "—", "—", "—", "—", "3.25",
                                                "3.25"]
    assert not any(r[0] == "Raw pixels" for r in pretrain)


def test_environment_wall_time_is_the_mean_per_seed(reports: Path) -> None:
    summary = artifacts.summary_path("sparse_jepa", 1, reports)
    summary.write_text(json.dumps({k: v for k, v in json.loads(summary.read_text()).items() if k != "wall_s"}))
    env = environment("fashion_mnist", MODELS, SEEDS, reports)
    assert env["device"] == "cpu" and env["pretrain_dataset"] == "fashion_mnist"
    # JEPA: (80 + 90 + 100) / 3; SparseJEPA: seed 1 records no wall time, so (80 + 100) / 2, not (80 + 0 + 100) / 3.
    # The untrained reference has no wall time.
    assert env["wall_s"] == {"jepa": pytest.approx(90.0), "sparse_jepa": pytest.approx(90.0)}


def test_results_md_diagnostics(md: str) -> None:
    diagnostics = _table(md, "Model", "feature std")
    # Model | feature std | effective rank | position share | position-mean loss | final JEPA loss | EMA init share
    # Seed-varying values show mean ± std; values every seed shares show once.
    assert _row(diagnostics, "SparseJEPA") == ["SparseJEPA", "0.120 ± 0.010", "7.5", "80.0%", "0.1500", "0.1234",
                                               "31.0%"]
    assert _row(diagnostics, "Random encoder")[1:] == ["0.120 ± 0.010", "7.5", "80.0%", "0.1500", "—", "—"]
    assert [r[0] for r in diagnostics[1:]] == ["Random encoder", "JEPA", "SparseJEPA"]


def test_probe_check_line_in_report_names_the_failed_run(md: str) -> None:
    # The fixture's one NaN run (a converged fit whose top-1 is NaN) is named, not hidden behind "every fit".
    line = next(l for l in md.splitlines() if "Probe check" in l)
    assert line.startswith("**Probe check failed**") and "top-1 is NaN" in line and "SparseJEPA context" in line


def test_probe_check_flags_an_edge_penalty_or_an_unconverged_fit() -> None:
    def record(**check):
        return _record(**{"top1": 50.0, "data": {"display_name": "CIFAR-100"}, **check})

    jepa, random = Row("jepa", "target"), Row("random", "target")
    ok = {("jepa/target", "cifar100"): {0: record(on_edge=False, converged=True),
                                        1: record(on_edge=False, converged=True)}}
    assert probe_check_md(ok, [jepa], ["cifar100"]).startswith("Probe check: every chosen fit")
    bad = {**ok, ("random/target", "cifar100"): {0: record(on_edge=False, converged=True),
                                                 1: record(on_edge=True, converged=False)}}
    line = probe_check_md(bad, [jepa, random], ["cifar100"])
    assert line.startswith("**Probe check failed**") and "Random encoder seed 1 on CIFAR-100" in line
    assert "edge of the searched grid and fit not converged" in line
    assert "JEPA target" not in line and "seed 0" not in line  # only the failing run is named
    pixels = {("pixels/raw", "cifar100"): {None: record(on_edge=True, converged=True)}}
    line = probe_check_md(pixels, [Row("pixels", "raw")], ["cifar100"])
    assert "Raw pixels on CIFAR-100: penalty on an edge" in line  # no seed to name
    old = {("jepa/target", "cifar100"): {0: record()}}
    assert "without a convergence check" in probe_check_md(old, [jepa], ["cifar100"])
    nan = {("jepa/target", "cifar100"): {0: record(on_edge=False, converged=True, top1=math.nan)}}
    assert "JEPA target seed 0 on CIFAR-100: top-1 is NaN" in probe_check_md(nan, [jepa], ["cifar100"])
    few = {"top1": [50.0, 51.0, 52.0], "val_top1": [50.0] * 3, "l2": [1e-3] * 3}
    few_bad = {("jepa/target", "cifar100"): {0: record(on_edge=False, converged=True,
                                                       low_label={"10": {**few, "converged": [True, False, True]}})}}
    line = probe_check_md(few_bad, [jepa], ["cifar100"])
    assert line.startswith("**Probe check failed**") and "10-labels-per-class fit not converged in 1 of 3 draws" in line
    few_old = {("jepa/target", "cifar100"): {0: record(on_edge=False, converged=True, low_label={"10": few})}}
    assert "(10 labels per class)" in probe_check_md(few_old, [jepa], ["cifar100"])
    assert "JEPA target seed 0 on CIFAR-100: top-1 is NaN" in probe_check_md(nan, [jepa], ["cifar100"])


# ------------------------------------------------------------------------------ figures

def _assert_png_not_blank(path: Path) -> None:
    from matplotlib.image import imread

    data = path.read_bytes()
    assert path.parent.name == "figures" and data[:8] == PNG_MAGIC
    assert len(data) > 10_000, f"{path.name} looks blank ({len(data)} bytes)"
    pixels = imread(path)[..., :3]
    # Plotted content: more than a few distinct colours, not only white background.
    assert (pixels < 0.9).mean() > 0.01, f"{path.name} is almost all white"
    assert len(np.unique(pixels.reshape(-1, 3), axis=0)) > 20


def test_figures_are_valid_pngs(built: dict) -> None:
    assert built["skipped"] == {}
    assert set(built["written"]) == {"probe_seeds", "pretrain_curves", "column_norms_sparse_jepa", "results_csv",
                                     "results_summary_csv", "results_md", "metrics_json", "pretrain_curves_csv"}
    for name in ("probe_seeds", "pretrain_curves", "column_norms_sparse_jepa"):
        _assert_png_not_blank(built["written"][name])


def test_dvcs_metrics_and_plot_table_come_from_the_same_records(built: dict) -> None:
    metrics = json.loads(built["written"]["metrics_json"].read_text())
    summary = pd.read_csv(built["written"]["results_summary_csv"])
    jepa = summary[(summary.method == "jepa") & (summary.encoder == "target") & (summary.dataset == "fashion_mnist")]
    assert metrics["top1"]["fashion_mnist"]["jepa"] == round(float(jepa.top1_mean.iloc[0]), 2)
    curves = pd.read_csv(built["written"]["pretrain_curves_csv"])
    assert list(curves.columns) == ["step", *(m.key for m in METHODS if m.pretrained)]


def test_another_pipelines_metrics_sit_under_its_name(tmp_path) -> None:
    out = build_report(_write_fixture(tmp_path / "reports"), METHODS, SETTING, ENV, pipeline="ladder")
    assert list(json.loads(out["written"]["metrics_json"].read_text())) == ["ladder"]


def test_the_group_figure_draws_each_latents_regions_and_images(tmp_path) -> None:
    rng = np.random.default_rng(0)
    norms = rng.uniform(0.1, 1.0, (4, 16))
    norms[:, 3] = [0.0, 0.9, 0.0, 0.0]  # latent 3 serves one region of four
    images = rng.integers(0, 256, (50, 28, 28, 3), dtype=np.uint8)
    path = tmp_path / "figures" / "groups.png"
    plot_groups(norms, np.array([3.0, 0.0]), rng.integers(0, 50, (2, 8)).astype(float), images, (2, 2), path,
                "sparse_jepa")
    _assert_png_not_blank(path)


def test_results_md_lists_the_figures(md: str) -> None:
    figures = md.strip().splitlines()[-1]
    assert figures.startswith("Figures: ")
    for name in ("probe_seeds", "pretrain_curves", "column_norms_sparse_jepa"):
        assert f"`reports/figures/{name}.png`" in figures
    assert "seed 0" in figures  # the column-norm map is one seed's


def test_missing_sparse_outputs_skip_the_column_norm_figure(tmp_path: Path) -> None:
    reports = tmp_path / "reports"
    stale = reports / "figures" / "column_norms_sparse_jepa.png"
    stale.parent.mkdir(parents=True)
    stale.write_bytes(b"old")
    _write_fixture(reports, ["random", "jepa"])
    out = build_report(reports, [methods.get("random"), methods.get("jepa")], SETTING, {})
    assert not any(name.startswith("column_norms") for name in out["written"])
    assert not stale.exists(), "a figure from an earlier run must not outlive its data"
    assert out["written"]["pretrain_curves"].read_bytes()[:8] == PNG_MAGIC
    md = out["written"]["results_md"].read_text()
    # No environment given: the Run list holds only what the report knows itself, the pretraining data.
    run = md.split("Run:\n\n")[1].split("\n\n")[0]
    assert run == "- Pretraining data: fashion_mnist"
    assert "| SparseJEPA |" not in md  # rows only for the methods asked for


def test_a_target_only_setting_needs_and_shows_no_context_rows(tmp_path: Path) -> None:
    # extract.encoders: [target] (the quick setting) probes no context encoder: the report must not ask for those
    # records, and must not show their rows.
    reports = _write_fixture(tmp_path / "reports")
    for path in reports.glob("probe/*/seed*/context"):
        shutil.rmtree(path)
    out = build_report(reports, METHODS, dataclasses.replace(SETTING, encoders=("target",)), {})
    md = out["written"]["results_md"].read_text()
    assert "| JEPA | target |" in md and "| context |" not in md and "leaves the context encoder unprobed" in md
    with pytest.raises(PipelineError, match="context"):
        build_report(reports, METHODS, SETTING, {})


def test_missing_probe_is_a_pipeline_error(reports: Path) -> None:
    with pytest.raises(PipelineError, match="places205"):
        build_report(reports, METHODS, dataclasses.replace(SETTING, datasets=["cifar100", "places205"]), {})


def test_missing_seed_is_a_pipeline_error(reports: Path) -> None:
    # A seed in params.yaml that the probe stages have not run must not shrink the mean silently.
    with pytest.raises(PipelineError, match="seed3"):
        build_report(reports, METHODS, dataclasses.replace(SETTING, seeds=[*SEEDS, 3]), {})


def test_zero_fraction_counts_exact_zeros_only() -> None:
    norms = _norms()
    assert zero_fraction(norms) == pytest.approx(6 / 16)
    assert zero_fraction(norms + 1e-12) == 0.0


def test_latents_sorted_by_dominant_group() -> None:
    norms = np.array([[0.0, 0.9, 0.0, 0.2, 0.5],
                      [0.0, 0.1, 0.8, 0.7, 0.0]])
    # group 0 dominates latents 1 and 4 (strongest first), group 1 latents 2 and 3, latent 0 is dead.
    assert sort_latents_by_group(norms).tolist() == [1, 4, 2, 3, 0]


# ------------------------------------------------------------------------------ README sync

def test_readme_sync_round_trip(built: dict, tmp_path: Path) -> None:
    results_md = built["written"]["results_md"]
    readme = tmp_path / "README.md"
    readme.write_text(f"# Project\n\n## Results\n\n{MARKER_START}\nold table\n{MARKER_END}\n\n## Usage\n")
    assert not readme_in_sync(readme, results_md)
    assert sync_readme(readme, results_md) is True
    text = readme.read_text()
    assert readme_in_sync(readme, results_md)
    assert "old table" not in text and results_md.read_text().strip() in text
    assert text.startswith("# Project\n") and text.endswith("## Usage\n")
    assert sync_readme(readme, results_md) is False  # idempotent
    assert readme.read_text() == text


def test_readme_without_markers_is_a_pipeline_error(built: dict, tmp_path: Path) -> None:
    readme = tmp_path / "README.md"
    readme.write_text("# Project\n")
    with pytest.raises(PipelineError, match="results:start"):
        sync_readme(readme, built["written"]["results_md"])
    assert readme.read_text() == "# Project\n"


def test_sync_readme_cli(built: dict, tmp_path: Path, capsys) -> None:
    readme = tmp_path / "README.md"
    readme.write_text(f"{MARKER_START}\n{MARKER_END}\n")
    results_md = built["written"]["results_md"]
    args = ["--readme", str(readme), "--results-md", str(results_md)]
    with pytest.raises(PipelineError, match="--sync-readme"):
        report_main([*args, "--check"])
    report_main([*args, "--sync-readme"])
    assert "updated" in capsys.readouterr().out
    assert readme_in_sync(readme, results_md)
    report_main([*args, "--check"])


def test_method_goals_read_the_registry_goals_bounds_and_the_paired_difference_to_the_baseline() -> None:
    runs = {("jepa/target", "d"): {0: _record(top1=80.0), 1: _record(top1=81.0), 2: _record(top1=80.5)},
            ("sparse_jepa/target", "d"): {0: _record(top1=79.0), 1: _record(top1=79.5), 2: _record(top1=79.6)}}
    method_list = [methods.get("jepa"), methods.get("sparse_jepa")]
    facts = {"sparse_jepa": {s: {"zero_fraction": z, "groups_per_latent": g}
                             for s, z, g in ((0, 0.3, 2.5), (1, 0.2, 3.5), (2, 0.4, 2.0))}}
    md = method_goals_md(facts, runs, method_list, "d", "jepa", REPORT)
    assert md.startswith("- SparseJEPA: 30.0% of latent-to-group columns exactly zero (goal 25%-90%: met); "
                         "2.67 groups per latent (goal 1-3: met); target top-1 -1.13 [")
    assert md.endswith("lower against JEPA target (goal: non-inferior, 95% interval above -1.00: not met, worse)")
    close = {**runs, ("sparse_jepa/target", "d"): {0: _record(top1=80.5), 1: _record(top1=80.0), 2: _record(top1=81.2)}}
    facts["sparse_jepa"][2]["zero_fraction"] = 0.0
    md = method_goals_md(facts, close, method_list, "d", "jepa", REPORT)
    assert "16.7% of latent-to-group columns exactly zero (goal 25%-90%: not met)" in md
    # Undetermined: it says how many seeds the differences' spread would need to detect the margin.
    n = stats.seeds_to_detect(statistics.stdev([0.5, -1.0, 0.7]), 1.0)
    assert n > 3 and md.endswith(") against JEPA target (goal: non-inferior, 95% interval above -1.00: not met, "
                                 f"undetermined); {n} seeds would detect ±1.00 at this spread")
    assert "within noise (detectable ±" in md  # within noise, yet its interval reaches below -1: not "as good"
    tight = {**runs, ("sparse_jepa/target", "d"): {0: _record(top1=80.1), 1: _record(top1=81.0), 2: _record(top1=80.6)}}
    assert method_goals_md(facts, tight, method_list, "d", "jepa", REPORT).endswith(
        "(goal: non-inferior, 95% interval above -1.00: met)")
    above = {**runs, ("sparse_jepa/target", "d"): {0: _record(top1=81.0), 1: _record(top1=82.1), 2: _record(top1=81.4)}}
    assert method_goals_md(facts, above, method_list, "d", "jepa", REPORT).endswith(
        "(goal: non-inferior, 95% interval above -1.00: met, better)")
    # The bounds are the `report` block's, by the name each goal gives.
    strict = ReportConfig({}, 3, 1.0, min_zero_fraction=0.1, max_zero_fraction=0.15, min_groups_per_latent=0.0,
                          max_groups_per_latent=2.0)
    assert "(goal 10%-15%: not met); 2.67 groups per latent (goal 0-2: not met)" in method_goals_md(
        facts, close, method_list, "d", "jepa", strict)
    loose = ReportConfig({}, 3, 1.0, min_zero_fraction=0.1, max_zero_fraction=0.2, min_groups_per_latent=2.6,
                         max_groups_per_latent=2.7)
    assert "(goal 10%-20%: met); 2.67 groups per latent (goal 2.6-2.7: met)" in method_goals_md(
        facts, close, method_list, "d", "jepa", loose)
    # A method without goals (JEPA itself, the ladder's unpenalised rung) or whose facts were not logged: no line.
    assert method_goals_md({}, runs, method_list, "d", "jepa", REPORT) == ""
    assert methods.get("jepa_regions").goals == ()
    regions = {**runs, ("jepa_regions/target", "d"): runs[("sparse_jepa/target", "d")]}
    assert method_goals_md({"jepa_regions": facts["sparse_jepa"]}, regions,
                           [methods.get("jepa"), methods.get("jepa_regions")], "d", "jepa", REPORT) == ""


def test_the_report_holds_the_methods_to_their_registry_goals(md: str) -> None:
    line = next(l for l in md.splitlines() if l.startswith("- SparseJEPA: "))
    # zero fraction over seeds 25%, 37.5%, 50% -> 37.5%; groups per latent 2, 3, 4 -> 3.00 (<= 3: met).
    assert line.startswith("- SparseJEPA: 37.5% of latent-to-group columns exactly zero (goal 25%-90%: met); "
                           "3.00 groups per latent (goal 1-3: met); target top-1 ")
    # On fashion_mnist (the pretraining data) SparseJEPA target is JEPA target - [3, 4, 5].
    assert line.endswith(f"{_interval([-3.0, -4.0, -5.0])}, lower against JEPA target (goal: non-inferior, 95% "
                         "interval above -1.00: not met, worse)")


def test_a_method_without_figures_goals_or_facts_in_its_entry_gets_none(tmp_path: Path) -> None:
    reports = _write_fixture(tmp_path / "reports")
    write_outputs(artifacts.outputs_path("sparse_jepa", 0, reports),
                  {"column_norms": _norms(), "top_images": np.zeros((16, 8), dtype=int)})
    figures = artifacts.figures_dir(reports)
    figures.mkdir(parents=True)
    for stale in ("column_norms_sparse_jepa.png", "groups_sparse_jepa.png"):
        (figures / stale).write_bytes(b"old")
    plain = dataclasses.replace(methods.get("sparse_jepa"), figures=(), goals=(), facts={})
    out = build_report(reports, [methods.get("random"), methods.get("jepa"), plain], SETTING, ENV)
    assert not any(n.startswith(("column_norms", "groups")) for n in out["written"]) and out["skipped"] == {}
    assert not list(figures.glob("*_sparse_jepa.png")), "a figure its entry does not list must not linger"
    md = out["written"]["results_md"].read_text()
    assert not any(line.startswith("- SparseJEPA: ") for line in md.splitlines())  # no goals line
    assert _table(md, "Model", "encoder", "images/s")[0][5] == "MI CIFAR-100 (nats)"  # no fact column
    # A method draws the figures its entry lists, and only those.
    maps_only = dataclasses.replace(methods.get("sparse_jepa"), figures=("column_norms",))
    out = build_report(reports, [methods.get("random"), methods.get("jepa"), maps_only], SETTING, ENV)
    assert "column_norms_sparse_jepa" in out["written"] and "groups_sparse_jepa" not in out["written"]


def test_the_group_figure_shows_each_regions_strongest_specialist_then_the_largest_maps() -> None:
    norms = np.zeros((4, 8))
    norms[:, 0] = [1.0, 1.0, 1.0, 1.0]   # serves every region: largest total
    norms[1, 2], norms[1, 5] = 0.3, 0.5  # two specialists of region 1: 5 is the stronger
    norms[3, 6] = 0.2                    # region 3's only specialist
    norms[:2, 7] = [0.4, 0.4]            # two regions
    # latents 1, 3, 4 are unused: never shown
    assert list(pick_latents(norms, 8)) == [5, 6, 0, 7, 2]
    assert list(pick_latents(norms, 3)) == [5, 6, 0]
    assert list(pick_latents(np.zeros((4, 8)), 8)) == []


def test_the_ladders_rungs_are_pretrained_rows_with_both_encoders() -> None:
    from pipeline import methods
    from pipeline.report.tables import report_rows

    rows = {(r.method, r.encoder) for r in report_rows([methods.get(k) for k in methods.pipeline_keys("ladder")],
                                                       ENCODERS)}
    assert {("jepa_regions", "target"), ("jepa_regions", "context"), ("sparse_jepa_kl", "context")} <= rows
    assert Row("sparse_jepa_kl", "target").pretrained and not Row("random", "target").pretrained
    assert not Row("pixels", "raw").pretrained and Row("pixels", "raw").control


def test_a_lasso_that_cut_every_column_skips_the_group_figure_but_not_the_report(tmp_path: Path) -> None:
    reports = _write_fixture(tmp_path / "reports")
    norms = np.zeros((4, 16))
    write_outputs(artifacts.outputs_path("sparse_jepa", 0, reports),
                  {"column_norms": norms, "top_images": np.zeros((16, 8), dtype=int)})
    out = build_report(reports, METHODS, SETTING, ENV)
    assert out["skipped"]["groups_sparse_jepa"] == "every latent-to-group column is zero"
    assert "column_norms_sparse_jepa" in out["written"] and "groups_sparse_jepa" not in out["written"]


def test_a_registry_goal_bounds_a_fact_from_below_above_or_both_and_names_report_keys() -> None:
    from pipeline.methods import _goal
    zero = methods.get("sparse_jepa").goals[0]
    assert (zero.at_least, zero.at_most) == ("report.min_zero_fraction", "report.max_zero_fraction")
    assert zero.met(0.5, 0.25, 0.9) and not zero.met(0.95, 0.25, 0.9) and not zero.met(0.1, 0.25, 0.9)
    only = _goal({"fact": "f", "at_most": "report.max_groups_per_latent", "says": "{value}", "bound": "{:g}"}, "x", "")
    assert only.at_least is None and only.met(-1e9, None, 3.0) and not only.met(3.5, None, 3.0)
    with pytest.raises(PipelineError, match="each goal is"):
        _goal({"fact": "f", "says": "{value}", "bound": "{:g}"}, "x", "")  # no bound at all
    with pytest.raises(PipelineError, match="names a params.yaml `report` key"):
        _goal({"fact": "f", "at_least": "0.25", "at_most": "report.max_zero_fraction", "says": "", "bound": ""}, "x", "")
    missing = Goal("f", "report.min_nothing", None, "{value}", "{:g}")
    with pytest.raises(PipelineError, match="names report.min_nothing, which the `report` block does not have"):
        bounds(REPORT, missing)
