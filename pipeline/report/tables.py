"""The report's tables: pure functions from probe records and pretraining facts to pandas and Markdown.

Method display names come from the registry; dataset display names from the probe records (each
carries what its prepared dataset's meta.json says).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Mapping

import pandas as pd

from pipeline import methods
from pipeline.artifacts import PIXELS
from pipeline.artifacts.records import as_float
from pipeline.report.stats import Difference, paired_difference, spread

# Linear-probe top-1 (%) reported in the SparseJEPA paper. Datasets missing here (e.g. our
# quick CPU setting on FashionMNIST) have no paper number and show "—".
PAPER_TOP1: dict[str, dict[str, float]] = {
    "jepa": {"cifar100": 40.01, "places205": 21.24, "clevr_count": 59.13, "inat18": 16.52},
    "sparse_jepa": {"cifar100": 45.4, "places205": 23.36, "clevr_count": 62.33, "inat18": 19.63},
}

RESULTS_COLUMNS = [
    "model", "encoder", "seed", "dataset", "model_name", "dataset_name",
    "top1", "val_top1", "multi_information", "l2", "on_edge", "converged", "iterations",
    "n_train", "n_val", "n_test", "num_classes", "feature_dim",
]
SUMMARY_COLUMNS = ["model", "encoder", "dataset", "model_name", "dataset_name", "seeds", "top1_mean", "top1_std",
                   "paper_top1"]

DASH = "—"
PIXELS_NAME = "Raw pixels"


def is_pretrained(method: str) -> bool:
    """A method the report compares (target and context encoders), not a reference or the raw pixels;
    methods.get knows the ablation ladder's rungs too (the ladder's report reads them)."""
    return method != PIXELS and methods.get(method).pretrained


@dataclass(frozen=True)
class Row:
    """One row of the results table: an encoder of a method (or the raw pixels) over its seeds."""
    method: str   # registry key, or artifacts.PIXELS
    encoder: str  # "target" or "context" (a method's), "pixels"

    @property
    def key(self) -> str:
        return self.method if self.method == PIXELS else f"{self.method}/{self.encoder}"

    @property
    def pretrained(self) -> bool:
        return is_pretrained(self.method)


# Probe records: {(row key, dataset): {seed: record}}; the raw pixels' one record sits under seed None.
Runs = Mapping[tuple[str, str], Mapping[Any, dict]]


def report_rows(method_list) -> list[Row]:
    """The raw pixels, then every encoder of every method in registry order."""
    return [Row(PIXELS, PIXELS), *(Row(m.key, e) for m in method_list for e in m.encoders)]


def model_name(key: str) -> str:
    return PIXELS_NAME if key == PIXELS else methods.display_name(key)


def row_label(row: Row) -> str:
    """"Raw pixels", "Random encoder", "JEPA target", "JEPA context"."""
    return f"{model_name(row.method)} {row.encoder}" if row.pretrained else model_name(row.method)


def dataset_names(runs: Runs, datasets: list[str]) -> dict[str, str]:
    """Each dataset's display name as its prepared data recorded it (meta.json, via the probe records)."""
    names = {}
    for dataset in datasets:
        recorded = [r.get("data", {}).get("display_name") for (_, d), by_seed in runs.items() if d == dataset
                    for r in by_seed.values()]
        names[dataset] = next((n for n in recorded if n), dataset)
    return names


def paper_top1(model: str, dataset: str) -> float:
    return PAPER_TOP1.get(model, {}).get(dataset, math.nan)


def top1_by_seed(runs: Runs, row: Row, dataset: str) -> dict:
    return {seed: as_float(record.get("top1")) for seed, record in runs.get((row.key, dataset), {}).items()}


def results_frame(runs: Runs, rows: list[Row], datasets: list[str]) -> pd.DataFrame:
    """Long table, one row per probe run: (model, encoder, seed, dataset) in report order."""
    names = dataset_names(runs, datasets)
    out = []
    for row in rows:
        for dataset in datasets:
            for seed, record in runs.get((row.key, dataset), {}).items():
                entry = {key: record.get(key, math.nan) for key in RESULTS_COLUMNS}
                entry.update(model=row.method, encoder=row.encoder, seed=seed, dataset=dataset,
                             model_name=model_name(row.method), dataset_name=names[dataset],
                             top1=as_float(record.get("top1")))
                out.append(entry)
    frame = pd.DataFrame(out, columns=RESULTS_COLUMNS)
    # Integers with a gap (the raw pixels have no seed), not floats: the CSV reads "seed 2", not "2.0".
    frame["seed"] = frame["seed"].astype("Int64")
    return frame


def summary_frame(runs: Runs, rows: list[Row], datasets: list[str]) -> pd.DataFrame:
    """One row per (results row, dataset): mean and std of top-1 over seeds, and the paper's number."""
    names = dataset_names(runs, datasets)
    out = []
    for row in rows:
        for dataset in datasets:
            s = spread(list(top1_by_seed(runs, row, dataset).values()))
            out.append({"model": row.method, "encoder": row.encoder, "dataset": dataset,
                        "model_name": model_name(row.method), "dataset_name": names[dataset], "seeds": s.n,
                        "top1_mean": s.mean, "top1_std": s.std,
                        # The paper probes the target encoder.
                        "paper_top1": paper_top1(row.method, dataset) if row.encoder == "target" else math.nan})
    return pd.DataFrame(out, columns=SUMMARY_COLUMNS)


def fmt_top1(value: float) -> str:
    return "NaN" if math.isnan(value) else f"{value:.2f}"


def fmt_paper(value: float) -> str:
    return DASH if math.isnan(value) else f"{value:.2f}"


def fmt_mean_std(mean: float, std: float) -> str:
    if math.isnan(mean):
        return "NaN"
    return f"{mean:.2f}" if math.isnan(std) else f"{mean:.2f} ± {std:.2f}"


def fmt_points(value: float) -> str:
    # + 0.0 turns a rounded -0.0 into 0.0 so a tiny deficit does not print as "-0.00".
    return "NaN" if math.isnan(value) else f"{round(value, 2) + 0.0:+.2f}"


def fmt_difference(d: Difference) -> str:
    """"+0.11 [-0.52, +0.74], within noise", or "+0.11 (1 seed: no interval)"."""
    if math.isnan(d.mean):
        return "NaN"
    if math.isnan(d.low):
        return f"{fmt_points(d.mean)} ({d.n} seed{'s' if d.n != 1 else ''}: no interval)"
    verdict = "within noise" if d.within_noise else ("higher" if d.low > 0 else "lower")
    return f"{fmt_points(d.mean)} [{fmt_points(d.low)}, {fmt_points(d.high)}], {verdict}"


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


def results_table_md(summary: pd.DataFrame, rows: list[Row], datasets: list[str]) -> str:
    """Wide view of `summary_frame`: per dataset our mean +- std over seeds, and the paper's number."""
    header = ["Model", "encoder"]
    for dataset in datasets:
        name = summary.loc[summary["dataset"] == dataset, "dataset_name"].iloc[0]
        header += [f"{name}", f"{name} paper"]
    by_key = summary.set_index(["model", "encoder", "dataset"])
    lines = []
    for row in rows:
        cells = [model_name(row.method), row.encoder if row.pretrained else DASH]
        for dataset in datasets:
            mean, std, paper = by_key.loc[(row.method, row.encoder, dataset), ["top1_mean", "top1_std", "paper_top1"]]
            cells += [fmt_mean_std(mean, std), fmt_paper(paper)]
        lines.append(cells)
    return markdown_table(header, lines, align_right_from=2)


def comparisons(rows: list[Row], baseline: str) -> list[tuple[Row, Row]]:
    """(a, b) pairs reported as a - b, paired by seed: every other pretrained method's encoder against the
    baseline method's same encoder, then every pretrained encoder against each untrained reference."""
    pretrained = [r for r in rows if r.pretrained]
    references = [r for r in rows if r.method != PIXELS and not r.pretrained]
    by_key = {r.key: r for r in rows}
    pairs = [(r, by_key[f"{baseline}/{r.encoder}"]) for r in pretrained
             if r.method != baseline and f"{baseline}/{r.encoder}" in by_key]
    pairs += [(r, ref) for r in pretrained for ref in references]
    return pairs


def differences_table_md(runs: Runs, pairs: list[tuple[Row, Row]], datasets: list[str]) -> str:
    names = dataset_names(runs, datasets)
    header = ["Comparison (a − b)", *(names[d] for d in datasets)]
    lines = []
    for a, b in pairs:
        cells = [f"{row_label(a)} − {row_label(b)}"]
        cells += [fmt_difference(paired_difference(top1_by_seed(runs, a, d), top1_by_seed(runs, b, d)))
                  for d in datasets]
        lines.append(cells)
    return markdown_table(header, lines)


def targets_md(runs: Runs, rows: list[Row], dataset: str, min_gain_over_random: float,
               min_gain_over_pixels: float) -> str:
    """Each pretrained encoder's mean gain on `dataset` over the untrained references (paired by seed, with
    its interval) and over the raw pixels, against the goals (params.yaml `report`). A goal is met when
    the mean gain reaches it; the interval says whether that mean is itself beyond noise."""
    pixels = spread(list(top1_by_seed(runs, Row(PIXELS, PIXELS), dataset).values())).mean
    references = [r for r in rows if r.method != PIXELS and not r.pretrained]
    lines = []
    for row in (r for r in rows if r.pretrained):
        mine = top1_by_seed(runs, row, dataset)
        parts = []
        for ref in references:
            d = paired_difference(mine, top1_by_seed(runs, ref, dataset))
            met = "met" if d.mean >= min_gain_over_random else "not met"
            parts.append(f"{fmt_difference(d)} over the {model_name(ref.method).lower()} "
                         f"(goal ≥ {min_gain_over_random:+g}: {met})")
        gain = spread(list(mine.values())).mean - pixels
        parts.append(f"{fmt_points(gain)} over raw pixels (goal ≥ {min_gain_over_pixels:+g}: "
                     f"{'met' if gain >= min_gain_over_pixels else 'not met'})")
        lines.append(f"- {row_label(row)}: " + "; ".join(parts))
    return "\n".join(lines)


def sparsity_targets_md(facts: Mapping[str, Mapping[int, dict[str, float]]], runs: Runs, rows: list[Row],
                        dataset: str, baseline: str, min_zero_fraction: float, max_groups_per_latent: float) -> str:
    """For each method whose maps log a zero fraction under a group lasso (lambda > 0; the ladder's lambda-0
    rung cuts nothing by construction): its mean zero fraction and groups per latent over seeds against the
    goals, and its target encoder's paired difference to the baseline's on `dataset` (goal: within noise or
    above, i.e. the interval's upper end >= 0)."""
    base = top1_by_seed(runs, Row(baseline, "target"), dataset)
    lines = []
    for row in (r for r in rows if r.pretrained and r.encoder == "target" and r.method != baseline):
        mean, _ = mean_facts(facts.get(row.method, {}))
        zero, groups = mean.get("zero_fraction", math.nan), mean.get("groups_per_latent", math.nan)
        if math.isnan(zero) or math.isnan(groups) or not mean.get("lambda", math.nan) > 0:
            continue
        d = paired_difference(top1_by_seed(runs, row, dataset), base)
        kept = not math.isnan(d.high) and d.high >= 0
        lines.append(
            f"- {model_name(row.method)}: {zero:.1%} of latent-to-group columns exactly zero (goal ≥ "
            f"{min_zero_fraction:.0%}: {'met' if zero >= min_zero_fraction else 'not met'}); {groups:.2f} groups "
            f"per latent (goal ≤ {max_groups_per_latent:g}: {'met' if groups <= max_groups_per_latent else 'not met'}"
            f"); target top-1 {fmt_difference(d)} against {model_name(baseline)} target (goal: within noise or "
            f"above: {'met' if kept else 'not met'})")
    return "\n".join(lines)


def _count(n: int, per_class: int, listed: int | None) -> str:
    """"10,000 (1,000 per class of 60,000)" or "10,000 (all)"."""
    if not per_class:
        return f"{n:,} (all)"
    return f"{n:,} ({per_class:,} per class of {listed:,})" if listed else f"{n:,} ({per_class:,} per class)"


def data_table_md(runs: Runs, datasets: list[str]) -> str:
    """What each probed dataset held: images per split with its per-class subset, classes, test split, source."""
    header = ["Dataset", "test split", "source", "train images", "test images", "classes"]
    names = dataset_names(runs, datasets)
    lines = []
    for dataset in datasets:
        # Every model is probed on the same prepared data; the first record that describes it will do.
        records = [r for (_, d), by_seed in runs.items() if d == dataset for r in by_seed.values()]
        probe = next((r for r in records if r.get("data")), records[0] if records else {})
        data = probe.get("data") or {}
        listed = data.get("listed") or {}
        n_train = as_float(probe.get("n_train")) + as_float(probe.get("n_val"))
        n_test = as_float(probe.get("n_test"))
        per_class = {split: int(data.get(f"{split}_per_class", 0)) for split in ("train", "test")}
        lines.append([
            names[dataset],
            str(data.get("test_split", "official test")),
            _source_text(data.get("source", [])),
            DASH if math.isnan(n_train) else _count(int(n_train), per_class["train"], listed.get("train")),
            DASH if math.isnan(n_test) else _count(int(n_test), per_class["test"], listed.get("test")),
            str(probe.get("num_classes", DASH)),
        ])
    return markdown_table(header, lines, align_right_from=3)


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
        "groups_per_latent": pick("groups_per_latent", "groups_per_latent"),
        "lambda": as_float(summary.get("lambda")),
        "feature_std": pick("feature_std", "feature_std"),
        "effective_rank": pick("effective_rank", "effective_rank"),
        "position_share": pick("position_share", "position_share"),
        "position_loss": pick("position_loss", "position_loss"),
        "ema_init_share": as_float(summary.get("ema_init_share")),
    }


def mean_facts(facts: Mapping[Any, dict[str, float]]) -> tuple[dict[str, float], dict[str, float]]:
    """Per fact, the mean and std over seeds ({seed: facts} -> ({fact: mean}, {fact: std}))."""
    keys = sorted({k for f in facts.values() for k in f})
    spreads = {k: spread([as_float(f.get(k)) for f in facts.values()]) for k in keys}
    return {k: s.mean for k, s in spreads.items()}, {k: s.std for k, s in spreads.items()}


def pretrain_table_md(facts: Mapping[str, Mapping[int, dict[str, float]]], runs: Runs, rows: list[Row],
                      datasets: list[str]) -> str:
    """Per method, pretraining facts (mean over seeds) and each encoder's features' multi-information."""
    header = ["Model", "encoder", "images/s", "wall time per seed", "steps", "zero columns"]
    names = dataset_names(runs, datasets)
    header += [f"MI {names[d]} (nats)" for d in datasets]
    lines = []
    for row in (r for r in rows if r.method != PIXELS):
        mean, _ = mean_facts(facts.get(row.method, {}))
        cells = [model_name(row.method), row.encoder if row.pretrained else DASH,
                 _fmt_or_dash(mean.get("img_per_s", math.nan), "{:,.0f}"),
                 fmt_duration(mean.get("wall_s", math.nan)),
                 _fmt_or_dash(mean.get("steps", math.nan), "{:,.0f}"),
                 _fmt_or_dash(mean.get("zero_fraction", math.nan), "{:.1%}")]
        cells += [_fmt_or_dash(spread([as_float(r.get("multi_information"))
                                       for r in runs.get((row.key, d), {}).values()]).mean, "{:.2f}")
                  for d in datasets]
        lines.append(cells)
    return markdown_table(header, lines, align_right_from=2)


DIAGNOSTICS = (("feature_std", "{:.3f}"), ("effective_rank", "{:.1f}"), ("position_share", "{:.1%}"),
               ("position_loss", "{:.4f}"), ("final_loss", "{:.4f}"), ("ema_init_share", "{:.1%}"))


def diagnostics_table_md(facts: Mapping[str, Mapping[int, dict[str, float]]], models: list[str]) -> str:
    """Collapse and positional-shortcut signals of every method's target encoder, mean +- std over seeds."""
    header = ["Model", "feature std", "effective rank", "position share", "position-mean loss", "final JEPA loss",
              "EMA init share"]
    lines = []
    for model in models:
        mean, std = mean_facts(facts.get(model, {}))
        lines.append([model_name(model)] + [_fmt_spread(mean.get(key, math.nan), std.get(key, math.nan), spec)
                                            for key, spec in DIAGNOSTICS])
    return markdown_table(header, lines)


def _fmt_spread(mean: float, std: float, spec: str) -> str:
    if math.isnan(mean):
        return DASH
    # A value every seed shares (the EMA share is a function of the schedule) shows once.
    return spec.format(mean) if math.isnan(std) or std < 1e-12 else f"{spec.format(mean)} ± {spec.format(std)}"


def _fmt_or_dash(value: float, spec: str) -> str:
    return DASH if math.isnan(value) else spec.format(value)


_ENV_LABELS = {
    "setting": "Setting",
    "pretrain_dataset": "Pretraining data",
    "device": "Hardware",
    "torch": "PyTorch",
    "date": "Date",
    "wall_s": "Pretraining wall time per seed",
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


def probe_check_md(runs: Runs, rows: list[Row], datasets: list[str]) -> str:
    """One line saying whether every probe reached its optimum with its penalty inside the searched grid."""
    names = dataset_names(runs, datasets)
    flagged, unchecked = [], []
    for row in rows:
        for dataset in datasets:
            for seed, probe in runs.get((row.key, dataset), {}).items():
                where = f"{row_label(row)}{'' if seed is None else f' seed {seed}'} on {names[dataset]}"
                if "converged" not in probe:
                    unchecked.append(where)
                    continue
                problems = [what for what, bad in (("penalty on an edge of the searched grid", probe.get("on_edge")),
                                                    ("fit not converged", not probe.get("converged")),
                                                    ("top-1 is NaN", math.isnan(as_float(probe.get("top1")))))
                            if bad]
                if problems:
                    flagged.append(f"{where}: {' and '.join(problems)}")
    if flagged:
        return "**Probe check failed** (the number may not be the probe's best): " + "; ".join(flagged) + "."
    if unchecked:
        return "Probe check: records without a convergence check (re-run their probe stages): " + ", ".join(unchecked)
    return ("Probe check: every fit reached its optimum (gradient max-norm below `probe.tolerance`) and every "
            "chosen penalty lies inside the searched grid.")


@dataclass(frozen=True)
class Sections:
    """The rendered pieces of the report, in the order results_markdown lays them out."""
    seeds: list[int]
    baseline: str             # display name of the method the others are compared with
    results_table: str
    differences_table: str
    targets: str              # Markdown bullet list ("" for none)
    pretrain_dataset: str     # display name
    probe_check: str
    data_table: str
    environment: Mapping[str, Any]
    pretrain_table: str
    diagnostics_table: str
    figures: Mapping[str, str]  # caption -> path
    sweep_table: str = ""       # the collected lambda sweep (pipeline/report/sweep.py), "" before one


def results_markdown(s: Sections) -> str:
    """The README section: level-3 heading (never level 1, so it nests under any README heading)."""
    n = len(s.seeds)
    parts = [
        "### Results",
        f"Linear-probe top-1 accuracy (%) on each dataset's test split, mean ± std over {n} seed"
        f"{'s' if n != 1 else ''} ({', '.join(map(str, s.seeds))}; a seed fixes the encoder's init, data order, crops "
        "and masks, and the probe's validation split). Every row is probed the same way: L2-regularised "
        "logistic regression on standardised features, solved to its optimum, the penalty chosen on a validation "
        "split of train. *Raw pixels* probes the prepared images themselves (one run: it has no seed); the "
        "random encoder is the untrained init every method starts from; *target* is the EMA target encoder "
        "(what I-JEPA and the paper probe), *context* the encoder trained by gradient. *paper* is the SparseJEPA "
        f"paper's number ({DASH}: none), comparable only in the paper's setting (ViT-Tiny pretrained on CIFAR-100 "
        "for 300 epochs at 32 px; see *Run* below for this one's).",
        s.results_table,
        s.probe_check,
        f"Paired differences over seeds (a − b, same seed for both), mean [95% t interval]. *Within noise*: the "
        f"interval covers 0, so these seeds cannot tell a from b. Methods are compared with {s.baseline} encoder by "
        "encoder, and every pretrained encoder with the untrained reference.",
        s.differences_table,
    ]
    if s.targets:
        parts += [f"Goals on {s.pretrain_dataset} (the pretraining data; params.yaml `report`), mean gain over "
                  "seeds [95% interval]:", s.targets]
    parts += [
        "Probe data (per-class subsets are `subsets.<dataset>` in params.yaml; the probe's validation split "
        "is carved from the train images):",
        s.data_table,
    ]
    if s.environment:
        parts += ["Run:", environment_md(s.environment)]
    parts += [
        "#### Pretraining",
        "Mean over seeds. MI is the Gaussian multi-information (total correlation) of the probed features; "
        "zero columns is the fraction of exactly-zero latent-to-group columns (methods with group maps).",
        s.pretrain_table,
        "#### Collapse and shortcut diagnostics",
        "Of the target encoder at the end of pretraining (the random encoder: its init), on 2,000 training "
        "images, mean ± std over seeds. Feature std (mean over dimensions) and effective rank (at most the "
        "feature width: the exponential of the entropy of the normalised singular values) are taken on the "
        "pooled features. Position share is the share of the variance of the layer-normed tokens (the JEPA "
        "targets) that their position alone explains; position-mean loss is the JEPA loss of a predictor that "
        "outputs the mean token at each position, ignoring the context: a final JEPA loss near or above it means "
        "the predictor learnt little beyond position. It is an optimistic reference (the means are taken on the "
        "same un-cropped images they are scored on, while the JEPA loss is the mean of the last logged steps on "
        "random crops). EMA init share is the product of the EMA momenta: the share of the probed target "
        "encoder that is still its initialisation.",
        s.diagnostics_table,
    ]
    if s.sweep_table:
        parts += ["#### Lambda sweep", s.sweep_table.strip()]
    if s.figures:
        parts.append("Figures: " + ", ".join(f"`{path}` ({what})" for what, path in s.figures.items()) + ".")
    return "\n\n".join(parts) + "\n"
