"""Results table, figures and README sync on a small fixture written into tmp_path."""
from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from pipeline.artifacts.records import write_outputs
from pipeline.core.errors import PipelineError
from pipeline.report import build_report
from pipeline.report.figures import sort_latents_by_group, zero_fraction
from pipeline.report.readme import MARKER_END, MARKER_START
from pipeline.report.readme import main as report_main
from pipeline.report.readme import readme_in_sync, sync_readme
from pipeline.report.tables import RESULTS_COLUMNS, data_table_md, fmt_delta

MODELS = ["jepa", "sparse_jepa", "random"]
DATASETS = ["cifar100", "fashion_mnist"]
TOP1 = {
    ("jepa", "cifar100"): 42.01,
    ("jepa", "fashion_mnist"): 85.5,
    ("sparse_jepa", "cifar100"): 44.4,
    ("sparse_jepa", "fashion_mnist"): math.nan,
    ("random", "cifar100"): 12.3,
    ("random", "fashion_mnist"): 70.25,
}
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _write_probe(reports: Path, model: str, dataset: str, top1: float) -> None:
    path = reports / "probe" / model / f"{dataset}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    probe = {"model": model, "dataset": dataset, "top1": top1, "val_top1": 50.0, "lr": 0.1,
             "weight_decay": 0.0, "n_train": 900, "n_val": 100, "n_test": 200, "num_classes": 10,
             "feature_dim": 64, "multi_information": 3.25}
    if dataset == "cifar100":  # what the probe stage records of the prepared data; fashion_mnist's lacks it
        probe["data"] = {"display_name": "CIFAR-100", "train_per_class": 100, "test_per_class": 0, "listed": {"train": 50000, "test": 200},
                         "source": [{"file": "cifar-100-python.tar.gz", "md5": "eb9058c3a382ffc7106e4002c42a8d85",
                                     "url": "https://www.cs.toronto.edu/~kriz/cifar-100-python.tar.gz"}]}
    path.write_text(json.dumps(probe))  # json writes NaN as the bare token NaN, as the probe stage does


def _write_history(reports: Path, model: str, steps: int = 120) -> None:
    step = np.arange(steps)
    frame = pd.DataFrame({
        "step": step, "epoch": step // 40, "images": step * 64,
        "loss": 1.0 / (1 + 0.05 * step), "loss_jepa": 0.9 / (1 + 0.05 * step),
        "penalty": 0.1 * np.exp(-step / 50), "kl": 0.02 + 0.001 * step,
        "lr": 1e-3, "wd": 0.05, "ema": 0.996, "img_per_s": 500.0,
        # Monitor-only column: empty except every 40 steps, as the trainer writes it.
        "online_top1": np.where(step % 40 == 0, 30.0, np.nan),
    })
    if model == "sparse_jepa":
        frame["zero_fraction"] = np.linspace(0, 0.4, steps)
    path = reports / "pretrain" / model / "history.csv"
    path.parent.mkdir(parents=True, exist_ok=True)
    frame.to_csv(path, index=False)
    summary = {"wall_s": 90.0, "img_per_s": 512.5, "steps": steps, "epochs": 3, "final_loss_jepa": 0.1234,
               "device": "cpu", "feature_std": 0.12, "effective_rank": 7.46, "position_share": 0.8,
               "position_loss": 0.15, "ema_init_share": 0.31}
    if model == "sparse_jepa":
        summary["zero_fraction"] = 0.375
    (path.parent / "summary.json").write_text(json.dumps(summary))


def _norms() -> np.ndarray:
    rng = np.random.default_rng(0)
    norms = rng.uniform(0.1, 1.0, size=(4, 16))
    norms[:, ::3] = 0.0  # exact zeros the heatmap must count
    return norms


def _write_fixture(reports: Path) -> Path:
    for (model, dataset), top1 in TOP1.items():
        _write_probe(reports, model, dataset, top1)
    for model in ("jepa", "sparse_jepa"):
        _write_history(reports, model)
    write_outputs(reports / "pretrain" / "sparse_jepa" / "outputs.json", {"column_norms": _norms()})
    return reports


ENV = {"setting": "quick", "device": "cpu (test)", "torch": "2.x", "pretrain_dataset": "fashion_mnist",
       "wall_s": {"jepa": 90.0, "sparse_jepa": 3600.0}}


@pytest.fixture
def reports(tmp_path: Path) -> Path:
    return _write_fixture(tmp_path / "reports")


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> dict:
    # Built once per module: plotting dominates the run time and no test modifies the outputs.
    return build_report(_write_fixture(tmp_path_factory.mktemp("built") / "reports"), MODELS, DATASETS, ENV)


def _md_row(md: str, name: str) -> list[str]:
    line = next(l for l in md.splitlines() if l.startswith(f"| {name} |"))
    return [c.strip() for c in line.strip("|").split("|")]


def test_results_csv_numbers_and_deltas(built: dict) -> None:
    frame = pd.read_csv(built["written"]["results_csv"])
    assert list(frame.columns) == RESULTS_COLUMNS
    row = frame.set_index(["model", "dataset"]).loc[("jepa", "cifar100")]
    assert row["top1"] == pytest.approx(42.01)
    assert row["paper_top1"] == pytest.approx(40.01)
    assert row["delta"] == pytest.approx(2.0)
    sparse = frame.set_index(["model", "dataset"]).loc[("sparse_jepa", "cifar100")]
    assert sparse["delta"] == pytest.approx(44.4 - 45.4)
    no_paper = frame.set_index(["model", "dataset"]).loc[("jepa", "fashion_mnist")]
    assert math.isnan(no_paper["paper_top1"]) and math.isnan(no_paper["delta"])
    assert math.isnan(frame.set_index(["model", "dataset"]).loc[("sparse_jepa", "fashion_mnist"), "top1"])


def test_results_md_table(built: dict) -> None:
    md = built["written"]["results_md"].read_text()
    assert md.startswith("### ")
    assert not any(line.startswith("# ") or line.startswith("## ") for line in md.splitlines())
    # Model | CIFAR-100 ours | paper | Δ | FashionMNIST ours | paper | Δ
    # Method names from the registry; a dataset without a recorded display name shows its key.
    assert _md_row(md, "JEPA") == ["JEPA", "42.01", "40.01", "+2.00", "85.50", "—", "—"]
    assert _md_row(md, "SparseJEPA") == ["SparseJEPA", "44.40", "45.40", "-1.00", "NaN", "—", "—"]
    assert _md_row(md, "Random encoder")[1:4] == ["12.30", "—", "—"]
    # Row order follows `models`; column order follows `datasets`.
    assert md.index("| JEPA |") < md.index("| SparseJEPA |") < md.index("| Random encoder |")
    assert md.index("CIFAR-100 ours") < md.index("fashion_mnist ours")


def test_results_md_probe_data_table(built: dict) -> None:
    md = built["written"]["results_md"].read_text()
    # Dataset | test split | source | train images | test images | classes
    assert _md_row(md, "CIFAR-100") == ["CIFAR-100", "official test", "`cifar-100-python.tar.gz` (md5 checked)",
                                        "1,000 (100 per class of 50,000)", "200 (all)", "10"]
    assert _md_row(md, "fashion_mnist")[3:5] == ["1,000 (all)", "200 (all)"]  # a record without data facts


def test_data_table_names_extracted_trees_and_unchecked_files() -> None:
    probes = {("random", "clevr_count"): {"n_train": 180, "n_val": 20, "n_test": 67, "num_classes": 8, "data": {
        "display_name": "CLEVR/Count", "test_split": "official val", "listed": {"train": 200, "test": 67},
        "source": [{"extracted_tree": "$SPARSEJEPA_DATA_MIRROR/clevr-mini/CLEVR_v1.0"}]}},
        ("random", "places205"): {"n_train": 9, "n_val": 1, "n_test": 4, "num_classes": 2, "data": {
            "display_name": "Places205", "train_per_class": 5, "listed": {"train": 30, "test": 4},
            "source": [{"file": "a.tar.gz", "md5": "1", "official_md5": None, "url": "u"}]}}}
    md = data_table_md(probes, ["random"], ["clevr_count", "places205"])
    assert _md_row(md, "CLEVR/Count") == ["CLEVR/Count", "official val",
                                          "extracted tree `$SPARSEJEPA_DATA_MIRROR/clevr-mini/CLEVR_v1.0`",
                                          "200 (all)", "67 (all)", "8"]
    assert _md_row(md, "Places205")[2:4] == ["`a.tar.gz` (no official checksum)", "10 (5 per class of 30)"]


def test_results_md_environment_and_pretrain_facts(built: dict) -> None:
    md = built["written"]["results_md"].read_text()
    assert "- Hardware: cpu (test)" in md
    assert "- Pretraining data: fashion_mnist" in md  # its probe records name no display name
    assert "JEPA 90 s" in md and "SparseJEPA 60.0 min" in md
    # Second table: Model | images/s | wall time | steps | final loss | zero columns | MI per dataset
    facts = [l for l in md.splitlines() if l.startswith("| SparseJEPA |")][1]
    cells = [c.strip() for c in facts.strip("|").split("|")]
    assert cells == ["SparseJEPA", "512", "90 s", "120", "37.5%", "3.25", "3.25"]
    random_facts = [l for l in md.splitlines() if l.startswith("| Random encoder |")][1]
    assert "| — | — | — | — |" in random_facts
    # Third table: Model | feature std | effective rank | position share | position-mean loss | final JEPA loss |
    # EMA init share
    diagnostics = [l for l in md.splitlines() if l.startswith("| SparseJEPA |")][2]
    assert [c.strip() for c in diagnostics.strip("|").split("|")] == [
        "SparseJEPA", "0.120", "7.5", "80.0%", "0.1500", "0.1234", "31.0%"]


def test_figures_are_valid_pngs(built: dict) -> None:
    assert built["skipped"] == {}
    assert set(built["written"]) == {"pretrain_curves", "column_norms_sparse_jepa", "results_csv", "results_md"}
    for name in ("pretrain_curves", "column_norms_sparse_jepa"):
        path = built["written"][name]
        data = path.read_bytes()
        assert path.parent.name == "figures"
        assert data[:8] == PNG_MAGIC
        assert len(data) > 10_000, f"{name} looks blank ({len(data)} bytes)"


def test_missing_sparse_outputs_skip_the_column_norm_figure(tmp_path: Path) -> None:
    reports = tmp_path / "reports"
    stale = reports / "figures" / "column_norms_sparse_jepa.png"
    stale.parent.mkdir(parents=True)
    stale.write_bytes(b"old")
    for dataset in DATASETS:
        for model in ("random", "jepa"):
            _write_probe(reports, model, dataset, 50.0)
    _write_history(reports, "jepa")
    out = build_report(reports, ["jepa", "random"], DATASETS, {})
    assert not any(name.startswith("column_norms") for name in out["written"])
    assert not stale.exists(), "a figure from an earlier run must not outlive its data"
    assert out["written"]["pretrain_curves"].read_bytes()[:8] == PNG_MAGIC
    assert "Run:" not in out["written"]["results_md"].read_text()


def test_missing_probe_is_a_pipeline_error(reports: Path) -> None:
    with pytest.raises(PipelineError, match="places205"):
        build_report(reports, MODELS, ["cifar100", "places205"], {})


def test_zero_fraction_counts_exact_zeros_only() -> None:
    norms = _norms()
    assert zero_fraction(norms) == pytest.approx(6 / 16)
    assert zero_fraction(norms + 1e-12) == 0.0


def test_latents_sorted_by_dominant_group() -> None:
    norms = np.array([[0.0, 0.9, 0.0, 0.2, 0.5],
                      [0.0, 0.1, 0.8, 0.7, 0.0]])
    # group 0 dominates latents 1 and 4 (strongest first), group 1 latents 2 and 3, latent 0 is dead.
    assert sort_latents_by_group(norms).tolist() == [1, 4, 2, 3, 0]


def test_delta_formatting() -> None:
    assert fmt_delta(42.01, 40.01) == "+2.00"
    assert fmt_delta(40.009, 40.01) == "+0.00"
    assert fmt_delta(math.nan, 40.01) == "NaN"
    assert fmt_delta(50.0, math.nan) == "—"


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


def test_probe_check_flags_an_edge_penalty_or_an_unconverged_fit() -> None:
    from pipeline.report.tables import probe_check_md

    def record(**check):
        return {"top1": 50.0, "data": {"display_name": "CIFAR-100"}, **check}

    ok = {("jepa", "cifar100"): record(on_edge=False, converged=True)}
    assert probe_check_md(ok, ["jepa"], ["cifar100"]).startswith("Probe check: every fit reached its optimum")
    bad = {**ok, ("random", "cifar100"): record(on_edge=True, converged=False)}
    line = probe_check_md(bad, ["jepa", "random"], ["cifar100"])
    assert line.startswith("**Probe check failed**") and "Random encoder on CIFAR-100" in line
    assert "edge of the searched grid and fit not converged" in line and "JEPA on" not in line
    old = {("jepa", "cifar100"): record()}
    assert "without a convergence check" in probe_check_md(old, ["jepa"], ["cifar100"])
