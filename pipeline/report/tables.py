"""The report's tables: pure functions from probe records and pretraining facts to pandas and Markdown.

Method display names come from the registry; dataset display names from the probe records (each
carries what its prepared dataset's meta.json says).
"""
from __future__ import annotations

import math
from typing import Any, Mapping

import pandas as pd

from pipeline import methods
from pipeline.artifacts.records import as_float

# Linear-probe top-1 (%) reported in the SparseJEPA paper. Datasets missing here (e.g. our
# quick CPU setting on FashionMNIST) have no paper number and show "—".
PAPER_TOP1: dict[str, dict[str, float]] = {
    "jepa": {"cifar100": 40.01, "places205": 21.24, "clevr_count": 59.13, "inat18": 16.52},
    "sparse_jepa": {"cifar100": 45.4, "places205": 23.36, "clevr_count": 62.33, "inat18": 19.63},
}

RESULTS_COLUMNS = [
    "model", "dataset", "model_name", "dataset_name",
    "top1", "paper_top1", "delta",
    "val_top1", "multi_information", "l2", "on_edge", "converged",
    "n_train", "n_val", "n_test", "num_classes", "feature_dim",
]

DASH = "—"


def model_name(key: str) -> str:
    return methods.display_name(key)


def dataset_names(probes: Mapping[tuple[str, str], dict], datasets: list[str]) -> dict[str, str]:
    """Each dataset's display name as its prepared data recorded it (meta.json, via the probe record)."""
    names = {}
    for dataset in datasets:
        recorded = [p.get("data", {}).get("display_name") for (_, d), p in probes.items() if d == dataset]
        names[dataset] = next((n for n in recorded if n), dataset)
    return names


def paper_top1(model: str, dataset: str) -> float:
    return PAPER_TOP1.get(model, {}).get(dataset, math.nan)


def results_frame(probes: Mapping[tuple[str, str], dict], models: list[str], datasets: list[str]) -> pd.DataFrame:
    """Long table, one row per (model, dataset) in the given order; delta = ours - paper in points."""
    names = dataset_names(probes, datasets)
    rows = []
    for model in models:
        for dataset in datasets:
            probe = probes[(model, dataset)]
            ours, paper = as_float(probe.get("top1")), paper_top1(model, dataset)
            row = {key: probe.get(key, math.nan) for key in RESULTS_COLUMNS}
            row.update(model=model, dataset=dataset, model_name=model_name(model),
                       dataset_name=names[dataset], top1=ours, paper_top1=paper,
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
        name = frame.loc[frame["dataset"] == dataset, "dataset_name"].iloc[0]
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
    names = dataset_names(probes, datasets)
    rows = []
    for dataset in datasets:
        # Every model is probed on the same prepared data; the first record that describes it will do.
        described = [probes[(m, dataset)] for m in models if probes[(m, dataset)].get("data")]
        probe = described[0] if described else probes[(models[0], dataset)]
        data = probe.get("data") or {}
        listed = data.get("listed") or {}
        n_train = int(as_float(probe.get("n_train")) + as_float(probe.get("n_val")))
        n_test = int(as_float(probe.get("n_test")))
        rows.append([
            names[dataset],
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
        value = as_float(summary.get(key))
        return last(column) if math.isnan(value) else value

    return {
        "img_per_s": pick("img_per_s", "img_per_s"),
        "wall_s": as_float(summary.get("wall_s")),
        "steps": pick("steps", "step"),
        "final_loss": pick("final_loss_jepa", "loss_jepa"),
        "zero_fraction": pick("zero_fraction", "zero_fraction"),
        "feature_std": pick("feature_std", "feature_std"),
        "effective_rank": pick("effective_rank", "effective_rank"),
        "position_share": pick("position_share", "position_share"),
        "position_loss": pick("position_loss", "position_loss"),
        "ema_init_share": as_float(summary.get("ema_init_share")),
    }


def pretrain_table_md(facts: Mapping[str, dict[str, float]], probes: Mapping[tuple[str, str], dict],
                      models: list[str], datasets: list[str]) -> str:
    """Per-model pretraining facts plus the features' multi-information on each probed dataset."""
    header = ["Model", "images/s", "wall time", "steps", "zero columns"]
    names = dataset_names(probes, datasets)
    header += [f"MI {names[d]} (nats)" for d in datasets]
    rows = []
    for model in models:
        f = facts.get(model, {})
        cells = [
            model_name(model),
            _fmt_or_dash(f.get("img_per_s", math.nan), "{:,.0f}"),
            fmt_duration(f.get("wall_s", math.nan)),
            _fmt_or_dash(f.get("steps", math.nan), "{:,.0f}"),
            _fmt_or_dash(f.get("zero_fraction", math.nan), "{:.1%}"),
        ]
        cells += [_fmt_or_dash(as_float(probes[(model, d)].get("multi_information")), "{:.2f}")
                  for d in datasets]
        rows.append(cells)
    return markdown_table(header, rows)


def diagnostics_table_md(facts: Mapping[str, dict[str, float]], models: list[str]) -> str:
    """Collapse and positional-shortcut signals of every encoder, from its pretraining summary."""
    header = ["Model", "feature std", "effective rank", "position share", "position-mean loss", "final JEPA loss",
              "EMA init share"]
    rows = []
    for model in models:
        f = facts.get(model, {})
        rows.append([model_name(model)] + [_fmt_or_dash(f.get(key, math.nan), spec) for key, spec in (
            ("feature_std", "{:.3f}"), ("effective_rank", "{:.1f}"), ("position_share", "{:.1%}"),
            ("position_loss", "{:.4f}"), ("final_loss", "{:.4f}"), ("ema_init_share", "{:.1%}"))])
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
    return str(value)


def probe_check_md(probes: Mapping[tuple[str, str], dict], models: list[str], datasets: list[str]) -> str:
    """One line saying whether every probe reached its optimum with its penalty inside the searched grid."""
    names = dataset_names(probes, datasets)
    flagged, unchecked = [], []
    for model in models:
        for dataset in datasets:
            probe = probes[(model, dataset)]
            if "converged" not in probe:
                unchecked.append(f"{model_name(model)} on {names[dataset]}")
                continue
            problems = [what for what, bad in (("penalty on an edge of the searched grid", probe.get("on_edge")),
                                                ("fit not converged", not probe.get("converged"))) if bad]
            if problems:
                flagged.append(f"{model_name(model)} on {names[dataset]}: {' and '.join(problems)}")
    if flagged:
        return "**Probe check failed** (the number may not be the probe's best): " + "; ".join(flagged) + "."
    if unchecked:
        return "Probe check: records without a convergence check (re-run their probe stages): " + ", ".join(unchecked)
    return ("Probe check: every fit reached its optimum (gradient max-norm below `probe.tolerance`) and every "
            "chosen penalty lies inside the searched grid.")


def results_markdown(results_table: str, data_table: str, pretrain_table: str, environment: Mapping[str, Any],
                     figures: Mapping[str, str], probe_check: str = "", diagnostics_table: str = "") -> str:
    """The README section: level-3 heading (never level 1, so it nests under any README heading)."""
    parts = [
        "### Results",
        "Linear-probe top-1 accuracy (%) on each dataset's test split (below). "
        "*paper* is the SparseJEPA paper's linear-probe number, Δ = ours − paper in points; "
        f"{DASH} means the paper reports no number for that dataset. Δ compares like with like only in the "
        "paper's setting (ViT-Tiny pretrained on CIFAR-100 for 300 epochs at 32 px); see *Run* below for this "
        "one's. The random encoder is an untrained reference. The probe is L2-regularised logistic regression "
        "on standardised features, solved to its optimum; the penalty is chosen on a validation split of train.",
        results_table,
        *([probe_check] if probe_check else []),
        "Probe data (per-class subsets are `subsets.<dataset>` in params.yaml; the probe's validation split "
        "is carved from the train images):",
        data_table,
    ]
    if environment:
        parts += ["Run:", environment_md(environment)]
    parts += [
        "#### Pretraining",
        "MI is the Gaussian multi-information (total correlation) of the probed features; "
        "zero columns is the fraction of exactly-zero latent-to-group columns (methods with group maps).",
        pretrain_table,
    ]
    if diagnostics_table:
        parts += [
            "#### Collapse and shortcut diagnostics",
            "Of the target encoder at the end of pretraining (the random encoder: its init), on 2,000 training "
            "images. Feature std (mean over dimensions) and effective rank (at most the feature width: the "
            "exponential of the entropy of the normalised singular values) are taken on the pooled features. "
            "Position share is the share of the variance of the layer-normed tokens (the JEPA targets) that "
            "their position alone explains; position-mean loss is the JEPA loss of a predictor that outputs the "
            "mean token at each position, ignoring the context: a final JEPA loss near or above it means the "
            "predictor learnt little beyond position. It is an optimistic reference (the means are taken on the "
            "same un-cropped images they are scored on, while the JEPA loss is the mean of the last logged steps "
            "on random crops). EMA init share is the product of the EMA momenta: the share of the "
            "probed target encoder that is still its initialisation.",
            diagnostics_table,
        ]
    if figures:
        parts.append("Figures: " + ", ".join(f"`{path}` ({what})" for what, path in figures.items()) + ".")
    return "\n\n".join(parts) + "\n"
