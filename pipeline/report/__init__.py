"""Stage `report`: the results table with its noise, the pretraining facts and the figures, from the stage outputs.

    stats.py    seed statistics: mean +- std, paired differences with t intervals (pure)
    tables.py   probe records and summaries -> pandas and Markdown (pure)
    figures.py  pretraining curves, per-seed probe results, column-norm maps (matplotlib)
    readme.py   README.md's results section = reports/results.md

`build_report` reads every method's records (every seed, every encoder) and the raw-pixel probes
through pipeline.artifacts and writes:

    reports/results.md                   README-ready Markdown (starts at a level-3 heading)
    reports/results.csv                  one row per probe run (method, encoder, seed, dataset):
                                         tables.RESULTS_COLUMNS
    reports/results_summary.csv          one row per (method, encoder, dataset): mean and std over seeds
    reports/figures/probe_seeds.png      every probe run per dataset, seeds as dots
    reports/figures/pretrain_curves.png  every pretrained method, every seed
    reports/figures/column_norms_<method>.png   for each method that reports column norms (first seed)
    reports/figures/groups_<method>.png  its largest latents: regions served, top-activating training images
    reports/figures/lambda_sweep.png     SparseJEPA's lambda sweep, once collected (reports/sweep/)
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from pipeline import artifacts, methods
from pipeline.artifacts.records import read_history, read_outputs, read_probe, read_summary
from pipeline.core.atomic import atomic_path
from pipeline.artifacts.prepared import load_prepared
from pipeline.model.regions import region_grid
from pipeline.report.figures import (pick_latents, plot_column_norms, plot_groups, plot_pretrain_curves,
                                     plot_probe_seeds)
from pipeline.report.tables import (PIXELS, Row, Sections, comparisons, data_table_md, dataset_names,
                                    diagnostics_table_md, differences_table_md, is_pretrained, model_name, pretrain_facts,
                                    pretrain_table_md, probe_check_md, report_rows, results_frame, results_markdown,
                                    results_table_md, row_label, sparsity_targets_md, summary_frame,
                                    targets_md)


TOP_LATENTS = 8  # rows of the group figure


@dataclass(frozen=True)
class Setting:
    """What the report covers: params.yaml's seeds, probed datasets and pretraining dataset, and its targets."""
    seeds: list[int]
    datasets: list[str]
    pretrain_dataset: str
    min_gain_over_random: float
    min_gain_over_pixels: float
    min_zero_fraction: float
    max_groups_per_latent: float


def read_runs(reports: Path, rows: list[Row], seeds: list[int], datasets: list[str]) -> dict:
    """{(row key, dataset): {seed: probe record}}; the raw pixels' one record under seed None."""
    runs = {}
    for row in rows:
        for dataset in datasets:
            if row.method == PIXELS:
                runs[(row.key, dataset)] = {None: read_probe(artifacts.probe_path(PIXELS, dataset, reports=reports))}
            else:
                runs[(row.key, dataset)] = {
                    seed: read_probe(artifacts.probe_path(row.method, dataset, seed, row.encoder, reports))
                    for seed in seeds}
    return runs


def build_report(reports: Path, models: list[str], setting: Setting, environment: dict,
                 data: Path = artifacts.DATA) -> dict:
    """Read probe and pretraining records under `reports`; write results.md/.csv and the figures (the group
    figure shows training images of the pretraining dataset prepared under `data`).

    Returns {"written": {name: Path}, "skipped": {name: reason}, "summary": the per-cell summary frame}.
    """
    reports = Path(reports)
    figures = artifacts.figures_dir(reports)
    seeds, datasets = setting.seeds, setting.datasets
    written: dict[str, Path] = {}
    skipped: dict[str, str] = {}
    captions: dict[str, str] = {}  # figure name -> what the Markdown says it shows

    rows = report_rows([methods.get(m) for m in models])
    runs = read_runs(reports, rows, seeds, datasets)
    histories = {(m, seed): h for m in models if is_pretrained(m) for seed in seeds
                 if (h := read_history(artifacts.history_path(m, seed, reports))) is not None}
    facts = {m: {seed: pretrain_facts(read_summary(artifacts.summary_path(m, seed, reports)),
                                      histories.get((m, seed))) for seed in seeds} for m in models}
    frame, summary = results_frame(runs, rows, datasets), summary_frame(runs, rows, datasets)

    probe_seeds = figures / "probe_seeds.png"
    plot_probe_seeds(frame, [(row.method, row.encoder, row_label(row)) for row in rows], dataset_names(runs, datasets),
                     probe_seeds)
    written["probe_seeds"] = probe_seeds
    captions["probe_seeds"] = "every probe run, seeds as dots"

    curves = figures / "pretrain_curves.png"
    if histories:
        plot_pretrain_curves(histories, curves)
        written["pretrain_curves"] = curves
        captions["pretrain_curves"] = "pretraining curves, every seed"
    else:
        skipped["pretrain_curves"] = "no pretrained method has a history.csv"
        _remove_stale(curves)

    for prefix in ("column_norms_", "groups_"):  # per-method figures of methods no longer reported
        for stale in figures.glob(f"{prefix}*.png"):
            if stale.stem.removeprefix(prefix) not in models:
                _remove_stale(stale)
    for model in models:
        outputs = read_outputs(artifacts.outputs_path(model, seeds[0], reports))
        norms = outputs.get("column_norms")
        path = figures / f"column_norms_{model}.png"
        if norms is not None:
            plot_column_norms(norms, path, model)
            written[f"column_norms_{model}"] = path
            captions[f"column_norms_{model}"] = f"{methods.display_name(model)} column-norm map, seed {seeds[0]}"
        else:
            _remove_stale(path)
        path = figures / f"groups_{model}.png"
        # top_images has a row per latent (a record from before it did has no figure); a lasso that cut every
        # column leaves no latent to show.
        latents = pick_latents(norms, TOP_LATENTS) if norms is not None else np.zeros(0, dtype=int)
        if len(latents) and len(outputs.get("top_images", ())) == norms.shape[1]:
            images = load_prepared(artifacts.prepared_dir(setting.pretrain_dataset, data), mmap=True).train_images
            plot_groups(norms, latents, outputs["top_images"][latents], images, region_grid(len(norms)), path,
                        model)
            written[f"groups_{model}"] = path
            captions[f"groups_{model}"] = (f"{methods.display_name(model)}: single-region and largest latents, the "
                                           f"regions they serve and the images that activate them, seed {seeds[0]}")
        else:
            if norms is not None and not len(latents):
                skipped[f"groups_{model}"] = "every latent-to-group column is zero"
            _remove_stale(path)

    for name, path, table in (("results_csv", artifacts.results_csv(reports), frame),
                              ("results_summary_csv", artifacts.results_summary_csv(reports), summary)):
        with atomic_path(path) as tmp:
            table.to_csv(tmp, index=False, na_rep="NaN")
        written[name] = path

    # Imported here, so that `python -m pipeline.report.sweep` does not find itself imported by its package.
    from pipeline.report.sweep import plot_sweep, read_sweep, sweep_markdown

    sweep, sweep_table = read_sweep(reports), ""
    path = figures / "lambda_sweep.png"
    if sweep is not None and not sweep.empty:
        shown = dataset_names(runs, datasets).get(setting.pretrain_dataset, setting.pretrain_dataset)
        plot_sweep(sweep, path, shown)
        written["lambda_sweep"] = path
        captions["lambda_sweep"] = "SparseJEPA's lambda sweep: top-1, zero fraction, groups per latent, multi-information"
        sweep_table = sweep_markdown(sweep, shown)
    else:
        _remove_stale(path)

    # Figure links are relative to the repository root, where the stage runs (a test's absolute reports
    # folder links as reports/figures).
    link = figures.relative_to(reports.parent) if figures.is_absolute() else figures
    names = dataset_names(runs, datasets)
    targets = ""
    if setting.pretrain_dataset in datasets:
        environment = {**environment, "pretrain_dataset": names[setting.pretrain_dataset]}
        targets = targets_md(runs, rows, setting.pretrain_dataset, setting.min_gain_over_random,
                             setting.min_gain_over_pixels)
        sparse = sparsity_targets_md(facts, runs, rows, setting.pretrain_dataset, methods.baseline(),
                                     setting.min_zero_fraction, setting.max_groups_per_latent)
        targets = "\n".join(t for t in (targets, sparse) if t)
    md = results_markdown(Sections(
        seeds=seeds, baseline=model_name(methods.baseline()),
        results_table=results_table_md(summary, rows, datasets),
        differences_table=differences_table_md(runs, comparisons(rows, methods.baseline()), datasets),
        targets=targets, pretrain_dataset=names.get(setting.pretrain_dataset, setting.pretrain_dataset),
        probe_check=probe_check_md(runs, rows, datasets), data_table=data_table_md(runs, datasets),
        environment=environment, pretrain_table=pretrain_table_md(facts, runs, rows, datasets),
        diagnostics_table=diagnostics_table_md(facts, models), sweep_table=sweep_table,
        figures={caption: (link / written[name].name).as_posix() for name, caption in captions.items()}))
    md_path = artifacts.results_md(reports)
    with atomic_path(md_path) as tmp:
        tmp.write_text(md)
    written["results_md"] = md_path
    return {"written": written, "skipped": skipped, "summary": summary}


def environment(pretrain_dataset: str, models: list[str], seeds: list[int], reports: Path = artifacts.REPORTS) -> dict:
    """Run facts for the report: the setting, hardware and mean wall time per seed of the pretrained methods."""
    summaries = {(m, seed): s for m in models if is_pretrained(m) for seed in seeds
                 if (s := read_summary(artifacts.summary_path(m, seed, reports)))}
    env = {"pretrain_dataset": pretrain_dataset}
    if summaries:
        first = next(iter(summaries.values()))
        env["setting"] = first.get("setting", "")
        env["device"] = first.get("hardware", first.get("device", ""))
        walls = {}
        for (m, _), s in summaries.items():
            # A summary without a wall time is left out, not counted as 0 s (that would drag the mean down).
            if s.get("wall_s") is not None:
                walls.setdefault(m, []).append(float(s["wall_s"]))
        env["wall_s"] = {m: sum(w) / len(w) for m, w in walls.items()}
    env["date"] = time.strftime("%Y-%m-%d")
    return env


def _remove_stale(path: Path) -> None:
    # A figure left from an earlier run with other methods would silently misdescribe this one.
    path.unlink(missing_ok=True)
