"""The report's tables: pure functions from probe records and pretraining facts to pandas and Markdown.

Method display names and paper numbers come from the registry (a method's `facts` are the pretraining
table's own columns); dataset display names from the probe records (each carries what its prepared
dataset's meta.json says).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Mapping

import pandas as pd

from pipeline import methods
from pipeline.artifacts import CONTROLS, PIXELS
from pipeline.artifacts.records import ProbeRecord
from pipeline.methods import Fact, Method
from pipeline.report.facts import mean_facts
from pipeline.report.stats import Difference, paired_difference, spread

RESULTS_COLUMNS = [
    "method", "encoder", "seed", "dataset", "method_name", "dataset_name",
    "top1", "val_top1", "knn_top1", "knn_val_top1", "multi_information", "l2", "on_edge", "converged", "iterations",
    "n_train", "n_val", "n_test", "num_classes", "feature_dim",
]
SUMMARY_COLUMNS = ["method", "encoder", "dataset", "method_name", "dataset_name", "seeds", "top1_mean", "top1_std",
                   "paper_top1", "knn_mean", "knn_std"]

DASH = "—"
# The pixel controls' names (artifacts.CONTROLS); the projections are as wide as the encoders' features.
CONTROL_NAMES = {"raw": "Raw pixels", "pca": "PCA of pixels", "gaussian": "Random projection of pixels"}


def is_pretrained(method: str) -> bool:
    """A method the report compares (target and context encoders), not a reference or a pixel control;
    methods.get knows the ablation ladder's rungs too (the ladder's report reads them)."""
    return method != PIXELS and methods.get(method).pretrained


@dataclass(frozen=True)
class Row:
    """One row of the results table: an encoder of a method (or a pixel control) over its seeds."""
    method: str   # registry key, or artifacts.PIXELS
    encoder: str  # "target" or "context" (a method's), or a pixel control (artifacts.CONTROLS)

    @property
    def key(self) -> str:
        return f"{self.method}/{self.encoder}"

    @property
    def control(self) -> bool:
        return self.method == PIXELS

    @property
    def pretrained(self) -> bool:
        return is_pretrained(self.method)


# Probe records: {(row key, dataset): {seed: record}}; a control drawn once has one record, under seed None.
Runs = Mapping[tuple[str, str], Mapping[Any, ProbeRecord]]


def report_rows(method_list, encoders: tuple[str, ...]) -> list[Row]:
    """The pixel controls, then every probed encoder (`encoders`: extract.encoders) of every method in registry
    order."""
    return [*(Row(PIXELS, c) for c in CONTROLS),
            *(Row(m.key, e) for m in method_list for e in m.encoders if e in encoders)]


def controls(rows: list[Row]) -> list[Row]:
    return [r for r in rows if r.control]


def references(rows: list[Row]) -> list[Row]:
    """The untrained reference encoders (not the pixel controls)."""
    return [r for r in rows if not r.control and not r.pretrained]


def method_name(key: str) -> str:
    return "Pixels" if key == PIXELS else methods.display_name(key)


def row_label(row: Row) -> str:
    """A pixel control's name, an untrained reference's name, or "<method> target" / "<method> context"."""
    if row.control:
        return CONTROL_NAMES[row.encoder]
    return f"{method_name(row.method)} {row.encoder}" if row.pretrained else method_name(row.method)


def low_label_mean(record: ProbeRecord, per_class: str, split: str = "top1") -> float:
    """One record's low-label top-1 (%) on test (`top1`) or validation (`val_top1`), the mean over its draws; NaN
    where it has none at that size."""
    draws = record.low_label.get(per_class, {}).get(split, [])
    return sum(draws) / len(draws) if draws else math.nan


def low_label_sizes(runs: Runs) -> list[str]:
    """Every low-label size (labelled images per class) some record has, smallest first."""
    return sorted({n for by_seed in runs.values() for r in by_seed.values() for n in r.low_label}, key=int)


def score_by_seed(runs: Runs, row: Row, dataset: str, score: str = "top1") -> dict:
    """{seed: score}: `top1` (the full linear probe), `knn_top1`, or `low_label:<n>` (mean over draws); on the
    validation split: `val_top1`, `knn_val_top1`, `low_label_val:<n>`."""
    by_seed = runs.get((row.key, dataset), {})
    if score.startswith(("low_label:", "low_label_val:")):
        kind, n = score.split(":", 1)
        split = "val_top1" if kind == "low_label_val" else "top1"
        return {seed: low_label_mean(r, n, split) for seed, r in by_seed.items()}
    return {seed: getattr(r, score) for seed, r in by_seed.items()}


def dataset_names(runs: Runs, datasets: list[str]) -> dict[str, str]:
    """Each dataset's display name as its prepared data recorded it (meta.json, via the probe records)."""
    names = {}
    for dataset in datasets:
        recorded = [r.data.get("display_name") for (_, d), by_seed in runs.items() if d == dataset
                    for r in by_seed.values()]
        names[dataset] = next((n for n in recorded if n), dataset)
    return names


def paper_top1(model: str, dataset: str) -> float:
    """The linear-probe top-1 (%) the SparseJEPA paper reports for a method (registry `paper_top1`); NaN for
    a dataset it has none for (e.g. our quick CPU setting on FashionMNIST), shown as a dash."""
    return math.nan if model == PIXELS else methods.get(model).paper_top1.get(dataset, math.nan)


def top1_by_seed(runs: Runs, row: Row, dataset: str) -> dict:
    return score_by_seed(runs, row, dataset)


def results_frame(runs: Runs, rows: list[Row], datasets: list[str]) -> pd.DataFrame:
    """Long table, one row per probe run: (model, encoder, seed, dataset) in report order; the low-label probes'
    mean over draws as `low_label_<n>_top1`."""
    names = dataset_names(runs, datasets)
    sizes = low_label_sizes(runs)
    columns = RESULTS_COLUMNS + [f"low_label_{n}_top1" for n in sizes]
    out = []
    for row in rows:
        for dataset in datasets:
            for seed, record in runs.get((row.key, dataset), {}).items():
                entry = {key: getattr(record, key, math.nan) for key in RESULTS_COLUMNS}
                entry.update(method=row.method, encoder=row.encoder, seed=seed, dataset=dataset,
                             method_name=row_label(row) if row.control else method_name(row.method),
                             dataset_name=names[dataset])
                entry.update({f"low_label_{n}_top1": low_label_mean(record, n) for n in sizes})
                out.append(entry)
    frame = pd.DataFrame(out, columns=columns)
    # Integers with a gap (a control drawn once has no seed), not floats: the CSV reads "seed 2", not "2.0".
    frame["seed"] = frame["seed"].astype("Int64")
    return frame


def summary_frame(runs: Runs, rows: list[Row], datasets: list[str]) -> pd.DataFrame:
    """One row per (results row, dataset): mean and std over seeds of the full linear probe's top-1, the paper's
    number, the k-NN probe's and each low-label probe's (`low_label_<n>_mean` / `_std`)."""
    names = dataset_names(runs, datasets)
    sizes = low_label_sizes(runs)
    out = []
    for row in rows:
        for dataset in datasets:
            s = spread(list(top1_by_seed(runs, row, dataset).values()))
            knn = spread(list(score_by_seed(runs, row, dataset, "knn_top1").values()))
            entry = {"method": row.method, "encoder": row.encoder, "dataset": dataset,
                     "method_name": row_label(row) if row.control else method_name(row.method),
                     "dataset_name": names[dataset], "seeds": s.n, "top1_mean": s.mean, "top1_std": s.std,
                     # The paper probes the target encoder.
                     "paper_top1": paper_top1(row.method, dataset) if row.encoder == "target" else math.nan,
                     "knn_mean": knn.mean, "knn_std": knn.std}
            for n in sizes:
                few = spread([v for v in score_by_seed(runs, row, dataset, f"low_label:{n}").values()
                              if not math.isnan(v)])
                entry.update({f"low_label_{n}_mean": few.mean, f"low_label_{n}_std": few.std})
            out.append(entry)
    return pd.DataFrame(out, columns=SUMMARY_COLUMNS + [f"low_label_{n}_{x}" for n in sizes for x in ("mean", "std")])


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
    """"+0.11 [-0.52, +0.74], within noise (detectable ±1.20)", "+1.50 [+0.90, +2.10], higher", or "+0.11 (1 seed:
    no interval)". Within noise says how large a difference those seeds would have caught (stats.POWER)."""
    if math.isnan(d.mean):
        return "NaN"
    if math.isnan(d.low):
        return f"{fmt_points(d.mean)} ({d.n} seed{'s' if d.n != 1 else ''}: no interval)"
    verdict = (f"within noise (detectable ±{d.detectable:.2f})" if d.within_noise
               else ("higher" if d.low > 0 else "lower"))
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
    by_key = summary.set_index(["method", "encoder", "dataset"])
    lines = []
    for row in rows:
        cells = [row_label(row) if row.control else method_name(row.method), row.encoder if row.pretrained else DASH]
        for dataset in datasets:
            mean, std, paper = by_key.loc[(row.method, row.encoder, dataset), ["top1_mean", "top1_std", "paper_top1"]]
            cells += [fmt_mean_std(mean, std), fmt_paper(paper)]
        lines.append(cells)
    return markdown_table(header, lines, align_right_from=2)


def probes_table_md(summary: pd.DataFrame, rows: list[Row], datasets: list[str]) -> str:
    """Every probe of every row side by side, per dataset: the full linear probe, the k-NN probe and each
    low-label linear probe some record of that dataset has (mean +- std over seeds)."""
    by_key = summary.set_index(["method", "encoder", "dataset"])
    header, columns = ["Model", "encoder"], []
    for dataset in datasets:
        name = summary.loc[summary["dataset"] == dataset, "dataset_name"].iloc[0]
        sizes = [c.removeprefix("low_label_").removesuffix("_mean") for c in summary.columns
                 if c.startswith("low_label_") and c.endswith("_mean")
                 and summary.loc[summary["dataset"] == dataset, c].notna().any()]
        probes = [("top1", "linear"), ("knn", "k-NN"), *((f"low_label_{n}", f"{n}/class") for n in sizes)]
        columns += [(dataset, key) for key, _ in probes]
        header += [f"{name} {label}" for _, label in probes]
    lines = []
    for row in rows:
        cells = [row_label(row) if row.control else method_name(row.method), row.encoder if row.pretrained else DASH]
        for dataset, key in columns:
            mean, std = by_key.loc[(row.method, row.encoder, dataset), [f"{key}_mean", f"{key}_std"]]
            cells.append(fmt_mean_std(mean, std))
        lines.append(cells)
    return markdown_table(header, lines, align_right_from=2)


def comparisons(rows: list[Row], baseline: str) -> list[tuple[Row, Row]]:
    """(a, b) pairs reported as a - b, paired by seed: every other pretrained method's encoder against the
    baseline method's same encoder, then every pretrained encoder against each untrained reference, then every
    pretrained target encoder against each pixel control (one drawn once: the same number for every seed)."""
    pretrained = [r for r in rows if r.pretrained]
    by_key = {r.key: r for r in rows}
    pairs = [(r, by_key[f"{baseline}/{r.encoder}"]) for r in pretrained
             if r.method != baseline and f"{baseline}/{r.encoder}" in by_key]
    pairs += [(r, ref) for r in pretrained for ref in references(rows)]
    pairs += [(r, c) for r in pretrained if r.encoder == "target" for c in controls(rows)]
    return pairs


def against(runs: Runs, b: Row, dataset: str, a: Row, score: str = "top1") -> dict:
    """b's scores by seed for a comparison with a: a control drawn once (one record, seed None) stands for every
    one of a's seeds, so the interval is the spread of a's seeds about that one number."""
    theirs = score_by_seed(runs, b, dataset, score)
    if set(theirs) == {None}:
        return {seed: theirs[None] for seed in score_by_seed(runs, a, dataset, score)}
    return theirs


def differences_table_md(runs: Runs, pairs: list[tuple[Row, Row]], datasets: list[str]) -> str:
    names = dataset_names(runs, datasets)
    header = ["Comparison (a − b)", *(names[d] for d in datasets)]
    lines = []
    for a, b in pairs:
        cells = [f"{row_label(a)} − {row_label(b)}"]
        cells += [fmt_difference(paired_difference(top1_by_seed(runs, a, d), against(runs, b, d, a)))
                  for d in datasets]
        lines.append(cells)
    return markdown_table(header, lines)


def probe_differences_table_md(runs: Runs, pairs: list[tuple[Row, Row]], dataset: str) -> str:
    """The same pairs on one dataset under every probe: the full linear probe, k-NN and each low-label size."""
    scores = [("top1", "linear"), ("knn_top1", "k-NN"), *((f"low_label:{n}", f"{n}/class") for n in
                                                           low_label_sizes({k: v for k, v in runs.items()
                                                                            if k[1] == dataset}))]
    header = ["Comparison (a − b)", *(label for _, label in scores)]
    lines = []
    for a, b in pairs:
        cells = [f"{row_label(a)} − {row_label(b)}"]
        cells += [fmt_difference(paired_difference(score_by_seed(runs, a, dataset, score),
                                                   against(runs, b, dataset, a, score))) for score, _ in scores]
        lines.append(cells)
    return markdown_table(header, lines)


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
        # Every method is probed on the same prepared data; the first record that describes it will do.
        records = [r for (_, d), by_seed in runs.items() if d == dataset for r in by_seed.values()]
        probe = next((r for r in records if r.data), records[0] if records else None)
        data = probe.data if probe else {}
        listed = data.get("listed") or {}
        n_train = probe.n_train + probe.n_val if probe and probe.n_test else math.nan
        n_test = probe.n_test if probe and probe.n_test else math.nan
        per_class = {split: int(data.get(f"{split}_per_class", 0)) for split in ("train", "test")}
        lines.append([
            names[dataset],
            str(data.get("test_split", "official test")),
            _source_text(data.get("source", [])),
            DASH if math.isnan(n_train) else _count(int(n_train), per_class["train"], listed.get("train")),
            DASH if math.isnan(n_test) else _count(int(n_test), per_class["test"], listed.get("test")),
            str(probe.num_classes) if probe and probe.num_classes else DASH,
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


def shown_facts(method_list: list[Method]) -> dict[str, Fact]:
    """The pretraining table's own columns: every listed method's registry `facts`, in registry order (the
    first method to name a fact gives its label and format)."""
    out: dict[str, Fact] = {}
    for method in method_list:
        for key, fact in method.facts.items():
            out.setdefault(key, fact)
    return out


def pretrain_table_md(facts: Mapping[str, Mapping[int, dict[str, float]]], runs: Runs, rows: list[Row],
                      datasets: list[str], method_list: list[Method]) -> str:
    """Per method, pretraining facts (mean over seeds; a method's own facts where its registry entry names
    them, a dash elsewhere) and each encoder's features' multi-information."""
    columns = shown_facts(method_list)
    by_key = {m.key: m for m in method_list}
    header = ["Model", "encoder", "images/s", "wall time per seed", "steps", *(f.label for f in columns.values())]
    names = dataset_names(runs, datasets)
    header += [f"MI {names[d]} (nats)" for d in datasets]
    lines = []
    for row in (r for r in rows if not r.control):
        mean, _ = mean_facts(facts.get(row.method, {}))
        own = by_key[row.method].facts
        cells = [method_name(row.method), row.encoder if row.pretrained else DASH,
                 _fmt_or_dash(mean.get("img_per_s", math.nan), "{:,.0f}"),
                 fmt_duration(mean.get("wall_s", math.nan)),
                 _fmt_or_dash(mean.get("steps", math.nan), "{:,.0f}")]
        cells += [_fmt_or_dash(mean.get(key, math.nan) if key in own else math.nan, fact.format)
                  for key, fact in columns.items()]
        cells += [_fmt_or_dash(spread([r.multi_information
                                       for r in runs.get((row.key, d), {}).values()]).mean, "{:.2f}")
                  for d in datasets]
        lines.append(cells)
    return markdown_table(header, lines, align_right_from=2)


DIAGNOSTICS = (("feature_std", "{:.3f}"), ("effective_rank", "{:.1f}"), ("position_share", "{:.1%}"),
               ("position_loss", "{:.4f}"), ("final_loss_jepa", "{:.4f}"), ("ema_init_share", "{:.1%}"))


def diagnostics_table_md(facts: Mapping[str, Mapping[int, dict[str, float]]], method_keys: list[str]) -> str:
    """Collapse and positional-shortcut signals of every method's target encoder, mean +- std over seeds."""
    header = ["Model", "feature std", "effective rank", "position share", "position-mean loss", "final JEPA loss",
              "EMA init share"]
    lines = []
    for method in method_keys:
        mean, std = mean_facts(facts.get(method, {}))
        lines.append([method_name(method)] + [_fmt_spread(mean.get(key, math.nan), std.get(key, math.nan), spec)
                                            for key, spec in DIAGNOSTICS])
    return markdown_table(header, lines)


def _fmt_spread(mean: float, std: float, spec: str) -> str:
    if math.isnan(mean):
        return DASH
    # A value every seed shares (the EMA share is a function of the schedule) shows once.
    return spec.format(mean) if math.isnan(std) or std < 1e-12 else f"{spec.format(mean)} ± {spec.format(std)}"


def _fmt_or_dash(value: float, spec: str) -> str:
    return DASH if math.isnan(value) else spec.format(value)


def probe_check_md(runs: Runs, rows: list[Row], datasets: list[str]) -> str:
    """One line saying whether every probe reached its optimum with its penalty inside the searched grid."""
    names = dataset_names(runs, datasets)
    flagged, unchecked = [], []
    for row in rows:
        for dataset in datasets:
            for seed, probe in runs.get((row.key, dataset), {}).items():
                where = f"{row_label(row)}{'' if seed is None else f' seed {seed}'} on {names[dataset]}"
                if probe.converged is None:
                    unchecked.append(where)
                    continue
                problems = [what for what, bad in (("penalty on an edge of the searched grid", probe.on_edge),
                                                    ("fit not converged", not probe.converged),
                                                    ("top-1 is NaN", math.isnan(probe.top1)))
                            if bad]
                for n, draws in sorted(probe.low_label.items(), key=lambda item: int(item[0])):
                    if "converged" not in draws:
                        unchecked.append(f"{where} ({n} labels per class)")
                    elif not all(draws["converged"]):
                        problems.append(f"{n}-labels-per-class fit not converged in {draws['converged'].count(False)}"
                                        f" of {len(draws['converged'])} draws")
                if problems:
                    flagged.append(f"{where}: {' and '.join(problems)}")
    if flagged:
        return "**Probe check failed** (the number may not be the probe's best): " + "; ".join(flagged) + "."
    if unchecked:
        return "Probe check: records without a convergence check (re-run their probe stages): " + ", ".join(unchecked)
    return ("Probe check: every chosen fit, low-label draws included, reached its optimum (gradient max-norm below "
            "`probe.tolerance`) and every full probe's chosen penalty lies inside the searched grid.")
