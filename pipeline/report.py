"""The paper's results table, the pretraining facts and the two figures, from the stage outputs.

Table logic (pure, pandas/strings) is kept apart from plotting (matplotlib, imported lazily);
`build_report` is the one entry point that reads `reports/` and writes:

    reports/results.md              README-ready Markdown (starts at a level-3 heading)
    reports/results.csv             one row per (model, dataset), see RESULTS_COLUMNS
    reports/figures/pretrain_curves.png
    reports/figures/column_norms.png   (only when SparseJEPA's column norms exist)

`python -m pipeline.report --sync-readme` copies reports/results.md into README.md between
the `<!-- results:start -->` and `<!-- results:end -->` markers; `--check` only verifies it.
"""
from __future__ import annotations

import argparse
import json
import math
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import pandas as pd

from pipeline.atomic import atomic_path
from pipeline.column_norms import read_column_norms
from pipeline.errors import PipelineError
from pipeline.names import dataset_name, model_name

# Linear-probe top-1 (%) reported in the SparseJEPA paper. Datasets missing here (e.g. our
# quick CPU setting on FashionMNIST) have no paper number and show "—".
PAPER_TOP1: dict[str, dict[str, float]] = {
    "jepa": {"cifar100": 40.01, "places205": 21.24, "clevr_count": 59.13, "inat18": 16.52},
    "sparse_jepa": {"cifar100": 45.4, "places205": 23.36, "clevr_count": 62.33, "inat18": 19.63},
}

# Only these models are pretrained; "random" is an untrained reference encoder.
PRETRAINED_MODELS = ("jepa", "sparse_jepa")

RESULTS_COLUMNS = [
    "model", "dataset", "model_name", "dataset_name",
    "top1", "paper_top1", "delta",
    "val_top1", "multi_information", "lr", "weight_decay",
    "n_train", "n_val", "n_test", "num_classes", "feature_dim",
]

MARKER_START = "<!-- results:start -->"
MARKER_END = "<!-- results:end -->"
DEFAULT_README = Path("README.md")
DEFAULT_RESULTS_MD = Path("reports/results.md")

DASH = "—"


# ---------------------------------------------------------------------------------------------
# Reading inputs
# ---------------------------------------------------------------------------------------------

def _read_json(path: Path) -> dict:
    try:
        obj = json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise PipelineError(f"{path} is not valid JSON ({e.msg} at line {e.lineno}); "
                            f"re-run the stage that writes it (dvc repro)") from None
    if not isinstance(obj, dict):
        raise PipelineError(f"{path} should hold a JSON object; re-run the stage that writes it (dvc repro)")
    return obj


def _as_float(value: Any) -> float:
    """Probe and summary values may be null or absent after a failed run; that reads as NaN."""
    try:
        return float(value)
    except (TypeError, ValueError):
        return math.nan


def load_probe(reports_dir: Path, model: str, dataset: str) -> dict:
    path = reports_dir / "probe" / model / f"{dataset}.json"
    if not path.exists():
        raise PipelineError(f"probe result {path} is missing; run `dvc repro` so the probe stage "
                            f"writes it, or drop {model!r}/{dataset!r} from the report")
    probe = _read_json(path)
    probe["top1"] = _as_float(probe.get("top1"))
    return probe


def load_summary(reports_dir: Path, model: str) -> dict:
    """The pretraining summary, or {} when this model was not pretrained in this run."""
    path = reports_dir / "pretrain" / model / "summary.json"
    return _read_json(path) if path.exists() else {}


def load_history(reports_dir: Path, model: str) -> pd.DataFrame | None:
    """The per-step pretraining log, or None when absent. Empty cells (monitor-only columns) become NaN."""
    path = reports_dir / "pretrain" / model / "history.csv"
    if not path.exists():
        return None
    try:
        frame = pd.read_csv(path)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as e:
        raise PipelineError(f"{path} is not a readable CSV ({type(e).__name__}); "
                            f"re-run pretraining for {model!r} (dvc repro)") from None
    # Coerce so a stray text cell cannot turn a whole column into strings and break the plots.
    return frame.apply(pd.to_numeric, errors="coerce")


# ---------------------------------------------------------------------------------------------
# Tables (pure)
# ---------------------------------------------------------------------------------------------

def paper_top1(model: str, dataset: str) -> float:
    return PAPER_TOP1.get(model, {}).get(dataset, math.nan)


def results_frame(probes: Mapping[tuple[str, str], dict], models: list[str], datasets: list[str]) -> pd.DataFrame:
    """Long table, one row per (model, dataset) in the given order; delta = ours - paper in points."""
    rows = []
    for model in models:
        for dataset in datasets:
            probe = probes[(model, dataset)]
            ours, paper = _as_float(probe.get("top1")), paper_top1(model, dataset)
            row = {key: probe.get(key, math.nan) for key in RESULTS_COLUMNS}
            row.update(model=model, dataset=dataset, model_name=model_name(model),
                       dataset_name=dataset_name(dataset), top1=ours, paper_top1=paper,
                       # Rounded so the CSV does not show float noise such as 1.9999999999999964.
                       delta=round(ours - paper, 4))
            rows.append(row)
    return pd.DataFrame(rows, columns=RESULTS_COLUMNS)


def fmt_top1(value: float) -> str:
    return "NaN" if math.isnan(value) else f"{value:.2f}"


def fmt_paper(value: float) -> str:
    return DASH if math.isnan(value) else f"{value:.2f}"


def fmt_delta(ours: float, paper: float) -> str:
    if math.isnan(paper):
        return DASH
    if math.isnan(ours):
        return "NaN"
    # + 0.0 turns a rounded -0.0 into 0.0 so a tiny deficit does not print as "-0.00".
    return f"{round(ours - paper, 2) + 0.0:+.2f}"


def fmt_duration(seconds: float) -> str:
    if math.isnan(seconds):
        return DASH
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.1f} h"


def markdown_table(header: list[str], rows: list[list[str]], align_right_from: int = 1) -> str:
    """A GitHub-Markdown pipe table; columns from `align_right_from` on are right-aligned numbers."""
    rule = ["---" if i < align_right_from else "---:" for i in range(len(header))]
    lines = [header, rule, *rows]
    return "\n".join("| " + " | ".join(cells) + " |" for cells in lines)


def results_table_md(frame: pd.DataFrame, models: list[str], datasets: list[str]) -> str:
    """Wide view of `results_frame`: per dataset our top-1, the paper's, and the difference."""
    header = ["Model"]
    for dataset in datasets:
        name = dataset_name(dataset)
        header += [f"{name} ours", f"{name} paper", f"{name} Δ"]
    by_key = frame.set_index(["model", "dataset"])
    rows = []
    for model in models:
        cells = [model_name(model)]
        for dataset in datasets:
            ours, paper = by_key.loc[(model, dataset), ["top1", "paper_top1"]]
            cells += [fmt_top1(ours), fmt_paper(paper), fmt_delta(ours, paper)]
        rows.append(cells)
    return markdown_table(header, rows)


def _count(n: int, per_class: int, listed: int | None) -> str:
    """"10,000 (1,000 per class of 60,000)" or "10,000 (all)"."""
    if not per_class:
        return f"{n:,} (all)"
    return f"{n:,} ({per_class:,} per class of {listed:,})" if listed else f"{n:,} ({per_class:,} per class)"


def data_table_md(probes: Mapping[tuple[str, str], dict], models: list[str], datasets: list[str]) -> str:
    """What each probed dataset held: images per split with its per-class subset, classes, test split, source."""
    header = ["Dataset", "test split", "source", "train images", "test images", "classes"]
    rows = []
    for dataset in datasets:
        # Every model is probed on the same prepared data; the first record that describes it will do.
        described = [probes[(m, dataset)] for m in models if probes[(m, dataset)].get("data")]
        probe = described[0] if described else probes[(models[0], dataset)]
        data = probe.get("data") or {}
        listed = data.get("listed") or {}
        n_train = int(_as_float(probe.get("n_train")) + _as_float(probe.get("n_val")))
        n_test = int(_as_float(probe.get("n_test")))
        rows.append([
            dataset_name(dataset),
            str(data.get("test_split", "official test")),
            _source_text(data.get("source", [])),
            _count(n_train, int(data.get("train_per_class", 0)), listed.get("train")),
            _count(n_test, int(data.get("test_per_class", 0)), listed.get("test")),
            str(probe.get("num_classes", DASH)),
        ])
    return markdown_table(header, rows, align_right_from=3)


def _source_text(source: list[dict]) -> str:
    if not source:
        return DASH
    trees = [entry["extracted_tree"] for entry in source if "extracted_tree" in entry]
    if trees:
        return "extracted tree " + ", ".join(f"`{t}`" for t in trees)
    # An entry carries "official_md5": None only where no checksum is published.
    checked = all("official_md5" not in entry for entry in source)
    files = ", ".join(f"`{entry['file']}`" for entry in source)
    return files + (" (md5 checked)" if checked else " (no official checksum)")


def pretrain_facts(summary: dict, history: pd.DataFrame | None) -> dict[str, float]:
    """Final pretraining scalars, from summary.json first and the history's last values as fallback."""
    def last(column: str) -> float:
        if history is None or column not in history:
            return math.nan
        values = history[column].dropna()
        return float(values.iloc[-1]) if len(values) else math.nan

    def pick(key: str, column: str) -> float:
        value = _as_float(summary.get(key))
        return last(column) if math.isnan(value) else value

    return {
        "img_per_s": pick("img_per_s", "img_per_s"),
        "wall_s": _as_float(summary.get("wall_s")),
        "steps": pick("steps", "step"),
        "final_loss": pick("final_loss_jepa", "loss_jepa"),
        "zero_fraction": pick("zero_fraction", "zero_fraction"),
    }


def pretrain_table_md(facts: Mapping[str, dict[str, float]], probes: Mapping[tuple[str, str], dict],
                      models: list[str], datasets: list[str]) -> str:
    """Per-model pretraining facts plus the features' multi-information on each probed dataset."""
    header = ["Model", "images/s", "wall time", "steps", "final JEPA loss", "zero columns"]
    header += [f"MI {dataset_name(d)} (nats)" for d in datasets]
    rows = []
    for model in models:
        f = facts.get(model, {})
        cells = [
            model_name(model),
            _fmt_or_dash(f.get("img_per_s", math.nan), "{:,.0f}"),
            fmt_duration(f.get("wall_s", math.nan)),
            _fmt_or_dash(f.get("steps", math.nan), "{:,.0f}"),
            _fmt_or_dash(f.get("final_loss", math.nan), "{:.4f}"),
            _fmt_or_dash(f.get("zero_fraction", math.nan), "{:.1%}"),
        ]
        cells += [_fmt_or_dash(_as_float(probes[(model, d)].get("multi_information")), "{:.2f}")
                  for d in datasets]
        rows.append(cells)
    return markdown_table(header, rows)


def _fmt_or_dash(value: float, spec: str) -> str:
    return DASH if math.isnan(value) else spec.format(value)


_ENV_LABELS = {
    "setting": "Setting",
    "pretrain_dataset": "Pretraining data",
    "device": "Hardware",
    "torch": "PyTorch",
    "date": "Date",
    "wall_s": "Pretraining wall time",
}


def environment_md(environment: Mapping[str, Any]) -> str:
    """Render whatever run facts the caller passes as a short bullet list, in the given order."""
    lines = []
    for key, value in environment.items():
        label = _ENV_LABELS.get(key, key)
        lines.append(f"- {label}: {_env_value(key, value)}")
    return "\n".join(lines)


def _env_value(key: str, value: Any) -> str:
    if isinstance(value, Mapping):
        return ", ".join(f"{model_name(str(k))} {_env_value(key, v)}" for k, v in value.items())
    if isinstance(value, (list, tuple)):
        return ", ".join(_env_value(key, v) for v in value)
    if key.endswith("wall_s") and isinstance(value, (int, float)):
        return fmt_duration(float(value))
    if key.endswith("dataset") and isinstance(value, str):
        return dataset_name(value)
    return str(value)


def results_markdown(results_table: str, data_table: str, pretrain_table: str, environment: Mapping[str, Any],
                     figures: Mapping[str, str]) -> str:
    """The README section: level-3 heading (never level 1, so it nests under any README heading)."""
    parts = [
        "### Results",
        "Linear-probe top-1 accuracy (%) on each dataset's test split (below). "
        "*paper* is the SparseJEPA paper's linear-probe number, Δ = ours − paper in points; "
        f"{DASH} means the paper reports no number for that dataset. Δ compares like with like only in the "
        "paper's setting (ViT-Tiny pretrained on CIFAR-100 for 300 epochs at 32 px); see *Run* below for this "
        "one's. The random encoder is an untrained reference.",
        results_table,
        "Probe data (per-class subsets are `subsets.<dataset>` in params.yaml; the probe's validation split "
        "is carved from the train images):",
        data_table,
    ]
    if environment:
        parts += ["Run:", environment_md(environment)]
    parts += [
        "#### Pretraining",
        "MI is the Gaussian multi-information (total correlation) of the probed features; "
        "zero columns is SparseJEPA's fraction of exactly-zero latent-to-group columns.",
        pretrain_table,
    ]
    if figures:
        parts.append("Figures: " + ", ".join(f"`{path}` ({what})" for what, path in figures.items()) + ".")
    return "\n\n".join(parts) + "\n"


# ---------------------------------------------------------------------------------------------
# Figure helpers (pure)
# ---------------------------------------------------------------------------------------------

def zero_fraction(norms: np.ndarray) -> float:
    """Fraction of latent-to-group columns whose norm is exactly zero (pruned, not merely small)."""
    return float(np.mean(norms == 0.0))


def sort_latents_by_group(norms: np.ndarray) -> np.ndarray:
    """Column order that groups latent dims by their dominant group, strongest first within a group.

    All-zero latents go last: argmax would otherwise file them under group 0 and blur its block.
    """
    dominant = np.argmax(norms, axis=0)
    strength = norms.max(axis=0)
    dominant = np.where(strength > 0, dominant, norms.shape[0])
    return np.lexsort((-strength, dominant))


def _smooth(values: np.ndarray, points: int = 60) -> np.ndarray:
    """Rolling mean so the trend shows through per-step noise; window scales with run length."""
    window = max(1, len(values) // points)
    return pd.Series(values).rolling(window, min_periods=1).mean().to_numpy()


def _series(history: pd.DataFrame, column: str) -> tuple[np.ndarray, np.ndarray] | None:
    if column not in history:
        return None
    x_col = "step" if "step" in history else None
    frame = history[[c for c in (x_col, column) if c]].dropna()
    if frame.empty:
        return None
    x = frame[x_col].to_numpy() if x_col else frame.index.to_numpy()
    return x, frame[column].to_numpy()


# ---------------------------------------------------------------------------------------------
# Plotting (matplotlib imported lazily: it costs about a second at startup)
# ---------------------------------------------------------------------------------------------

def _pyplot():
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


def _save(fig, path: Path) -> None:
    with atomic_path(path) as tmp:
        # The temporary name ends in .tmp, so the format must be given explicitly.
        fig.savefig(tmp, format="png", dpi=120, bbox_inches="tight")


def plot_pretrain_curves(histories: Mapping[str, pd.DataFrame], path: Path) -> None:
    """JEPA's loss vs SparseJEPA's prediction loss; SparseJEPA's penalty/KL and zero fraction beside it."""
    plt = _pyplot()
    sparse = histories.get("sparse_jepa")
    has_sparse_terms = sparse is not None and any(_series(sparse, c) for c in ("penalty", "kl"))
    has_zero = sparse is not None and _series(sparse, "zero_fraction") is not None
    n_panels = 1 + has_sparse_terms + has_zero
    fig, axes = plt.subplots(1, n_panels, figsize=(5.5 * n_panels, 4), squeeze=False)
    axes = list(axes[0])
    try:
        _plot_prediction_loss(axes.pop(0), histories)
        if has_sparse_terms:
            _plot_sparse_terms(axes.pop(0), sparse)
        if has_zero:
            _plot_zero_fraction(axes.pop(0), sparse)
        fig.tight_layout()
        _save(fig, path)
    finally:
        plt.close(fig)


def _plot_prediction_loss(ax, histories: Mapping[str, pd.DataFrame]) -> None:
    # JEPA's total loss is its prediction loss; for SparseJEPA only loss_jepa is comparable.
    for model, column, colour in (("jepa", "loss", "tab:blue"), ("sparse_jepa", "loss_jepa", "tab:orange")):
        history = histories.get(model)
        if history is None:
            continue
        if _series(history, column) is None:
            column = "loss"  # an older log without loss_jepa: its total loss is the best we have
        series = _series(history, column)
        if series is None:
            continue
        x, y = series
        ax.plot(x, y, color=colour, alpha=0.25, linewidth=0.8)
        ax.plot(x, _smooth(y), color=colour, linewidth=1.8, label=f"{model_name(model)} ({column})")
    ax.set_title("Prediction loss")
    ax.set_xlabel("step")
    ax.set_ylabel("loss")
    ax.grid(alpha=0.3)
    if ax.get_legend_handles_labels()[0]:
        ax.legend()


def _plot_sparse_terms(ax, sparse: pd.DataFrame) -> None:
    # Penalty and KL live on different scales, so each gets its own y axis.
    handles = []
    for axis, column, colour in ((ax, "penalty", "tab:green"), (ax.twinx(), "kl", "tab:red")):
        series = _series(sparse, column)
        axis.set_ylabel(column, color=colour)
        axis.tick_params(axis="y", colors=colour)
        if series is None:
            continue
        x, y = series
        handles += axis.plot(x, _smooth(y), color=colour, linewidth=1.8, label=column)
    ax.set_title("SparseJEPA regularisers")
    ax.set_xlabel("step")
    ax.grid(alpha=0.3)
    ax.legend(handles=handles, loc="best")


def _plot_zero_fraction(ax, sparse: pd.DataFrame) -> None:
    x, y = _series(sparse, "zero_fraction")
    ax.plot(x, y, color="tab:purple", linewidth=1.8)
    ax.set_ylim(0, 1)
    ax.set_title("SparseJEPA zero latent-to-group columns")
    ax.set_xlabel("step")
    ax.set_ylabel("fraction exactly zero")
    ax.grid(alpha=0.3)


def plot_column_norms(norms: np.ndarray, path: Path) -> None:
    """Heatmap of the G x K column-norm map, latents sorted by dominant group; exact zeros in white."""
    plt = _pyplot()
    ordered = norms[:, sort_latents_by_group(norms)]
    groups, latents = norms.shape
    cmap = plt.get_cmap("viridis").with_extremes(bad="white")
    fig, ax = plt.subplots(figsize=(10, min(8.0, 2.5 + 0.25 * groups)))
    try:
        image = ax.imshow(np.ma.masked_equal(ordered, 0.0), aspect="auto", interpolation="nearest",
                          cmap=cmap, vmin=0.0, vmax=max(float(norms.max()), 1e-12))
        fig.colorbar(image, ax=ax, label=r"$\|W^{(g)}[:, j]\|_2$")
        ax.set_xlabel(f"latent dimension j (sorted by dominant group; K = {latents})")
        ax.set_ylabel(f"group g (G = {groups})")
        ax.set_yticks(range(groups))
        ax.set_title(f"SparseJEPA latent-to-group column norms — exact zeros (white): "
                     f"{zero_fraction(norms):.1%}")
        fig.tight_layout()
        _save(fig, path)
    finally:
        plt.close(fig)


# ---------------------------------------------------------------------------------------------
# Entry point
# ---------------------------------------------------------------------------------------------

def build_report(reports_dir: Path, models: list[str], datasets: list[str], environment: dict) -> dict:
    """Read probe and pretraining outputs under `reports_dir`; write results.md/.csv and figures.

    Returns {"written": {name: Path}, "skipped": {name: reason}} where name is one of
    results_md, results_csv, pretrain_curves, column_norms.
    """
    reports_dir = Path(reports_dir)
    figures_dir = reports_dir / "figures"
    written: dict[str, Path] = {}
    skipped: dict[str, str] = {}

    probes = {(m, d): load_probe(reports_dir, m, d) for m in models for d in datasets}
    histories = {m: h for m in models if m in PRETRAINED_MODELS
                 if (h := load_history(reports_dir, m)) is not None}
    facts = {m: pretrain_facts(load_summary(reports_dir, m), histories.get(m)) for m in models}

    curves_path = figures_dir / "pretrain_curves.png"
    if histories:
        plot_pretrain_curves(histories, curves_path)
        written["pretrain_curves"] = curves_path
    else:
        skipped["pretrain_curves"] = "no reports/pretrain/<model>/history.csv for jepa or sparse_jepa"
        _remove_stale(curves_path)

    norms_csv = reports_dir / "pretrain" / "sparse_jepa" / "column_norms.csv"
    norms_path = figures_dir / "column_norms.png"
    if "sparse_jepa" in models and norms_csv.exists():
        plot_column_norms(read_column_norms(norms_csv), norms_path)
        written["column_norms"] = norms_path
    else:
        skipped["column_norms"] = f"{norms_csv} not found (SparseJEPA not pretrained in this run)"
        _remove_stale(norms_path)

    frame = results_frame(probes, models, datasets)
    csv_path = reports_dir / "results.csv"
    with atomic_path(csv_path) as tmp:
        frame.to_csv(tmp, index=False, na_rep="NaN")
    written["results_csv"] = csv_path

    figure_refs = {what: f"{reports_dir.name}/figures/{p.name}" for what, p in
                   (("pretraining curves", written.get("pretrain_curves")),
                    ("column-norm map", written.get("column_norms"))) if p is not None}
    md = results_markdown(results_table_md(frame, models, datasets), data_table_md(probes, models, datasets),
                          pretrain_table_md(facts, probes, models, datasets), environment, figure_refs)
    md_path = reports_dir / "results.md"
    with atomic_path(md_path) as tmp:
        tmp.write_text(md)
    written["results_md"] = md_path
    return {"written": written, "skipped": skipped}


def _remove_stale(path: Path) -> None:
    # A figure left from an earlier run with other models would silently misdescribe this one.
    path.unlink(missing_ok=True)


# ---------------------------------------------------------------------------------------------
# README sync
# ---------------------------------------------------------------------------------------------

def _split_readme(text: str, readme: Path) -> tuple[str, str]:
    """Text up to and including the start marker, and from the end marker on."""
    fix = f"add a line `{MARKER_START}` and, below it, a line `{MARKER_END}` to {readme}"
    if text.count(MARKER_START) != 1 or text.count(MARKER_END) != 1:
        raise PipelineError(f"{readme} needs exactly one {MARKER_START} and one {MARKER_END} marker; {fix}")
    start = text.index(MARKER_START) + len(MARKER_START)
    end = text.index(MARKER_END)
    if end < start:
        raise PipelineError(f"{readme} has {MARKER_END} before {MARKER_START}; {fix}")
    return text[:start], text[end:]


def _synced_text(readme: Path, results_md: Path) -> tuple[str, str]:
    """(current README text, README text with the results section replaced)."""
    if not readme.exists():
        raise PipelineError(f"{readme} not found; run from the repository root or pass --readme")
    if not results_md.exists():
        raise PipelineError(f"{results_md} not found; run `dvc repro report` first")
    text = readme.read_text()
    head, tail = _split_readme(text, readme)
    return text, f"{head}\n{results_md.read_text().strip()}\n{tail}"


def sync_readme(readme: Path, results_md: Path) -> bool:
    """Replace the README's results section with `results_md`; True if the README changed."""
    readme, results_md = Path(readme), Path(results_md)
    old, new = _synced_text(readme, results_md)
    if new == old:
        return False
    with atomic_path(readme) as tmp:
        tmp.write_text(new)
    return True


def readme_in_sync(readme: Path, results_md: Path) -> bool:
    """Whether the README's results section already equals `results_md`."""
    old, new = _synced_text(Path(readme), Path(results_md))
    return old == new


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="python -m pipeline.report",
                                     description="Copy reports/results.md into the README results section.")
    action = parser.add_mutually_exclusive_group(required=True)
    action.add_argument("--sync-readme", action="store_true", help="rewrite the README section")
    action.add_argument("--check", action="store_true", help="fail if the README section is out of date")
    parser.add_argument("--readme", type=Path, default=DEFAULT_README)
    parser.add_argument("--results-md", type=Path, default=DEFAULT_RESULTS_MD)
    args = parser.parse_args(argv)
    if args.check:
        if not readme_in_sync(args.readme, args.results_md):
            raise PipelineError(f"{args.readme} results section differs from {args.results_md}; "
                                f"run `python -m pipeline.report --sync-readme`")
        print(f"{args.readme} is in sync with {args.results_md}")
        return
    changed = sync_readme(args.readme, args.results_md)
    print(f"{'updated' if changed else 'already up to date:'} {args.readme} from {args.results_md}")


if __name__ == "__main__":
    from pipeline.cli import run_stage
    run_stage(main)
