"""Stage `report`: the results table with its noise, the pretraining facts and the figures, from the stage outputs.

    read.py           the reader: every record the report shows, into one Report (and the run facts)
    draw.py           the report's figures, each drawn from the Report (plots: figures.py)
    render.py         results.md from the Report: its prose is results.md.tmpl (filled by template.py)
    tables.py         probe records and summaries -> pandas and Markdown tables (pure)
    facts.py          pretraining facts of a run: the base ones and a method's registry `facts` (pure)
    goals.py          the goals on the pretraining data: gains, and each method's registry `goals` (pure)
    metrics.py        what DVC reads: the compact metrics and the pretraining plot's table (pure)
    stats.py          seed statistics: mean +- std, paired differences with t intervals (pure)
    sweep_results.py  a swept method's collected sweep: its CSV, table and figure
    sweep.py          `python -m pipeline.report.sweep`: collect the sweeps from DVC experiments
    readme.py         README.md's results section = reports/results.md

`build_report` reads every method's records (every seed, every encoder) and the raw-pixel probes
through pipeline.artifacts and writes:

    reports/results.md                   README-ready Markdown (starts at a level-3 heading)
    reports/results.csv                  one row per probe run (method, encoder, seed, dataset):
                                         tables.RESULTS_COLUMNS
    reports/results_summary.csv          one row per (method, encoder, dataset): mean and std over seeds
    reports/metrics.json                 DVC's compact metrics: top-1 mean and std per dataset and row, the
                                         registry goals' facts (metrics.py)
    reports/plots/pretrain_curves.csv    DVC's pretraining plot: the prediction loss per step, a column per method
    reports/figures/probe_seeds.png      every probe run per dataset, seeds as dots
    reports/figures/pretrain_curves.png  every pretrained method, every seed
    reports/figures/<figure>_<method>.png  the per-method figures its registry `figures` lists (first seed)
    reports/figures/<leaf>_sweep.png     a swept method's sweep, once collected (reports/sweep/)
"""
from __future__ import annotations

from pathlib import Path

from pipeline import artifacts, methods
from pipeline.core.atomic import atomic_path, write_json
from pipeline.methods import Method
from pipeline.report.draw import Figure, draw_figures
from pipeline.report.metrics import compact_metrics, metrics_json, pretrain_curves, pretrain_curves_csv
from pipeline.report.read import Setting, environment, read_report
from pipeline.report.render import render

__all__ = ["Setting", "build_report", "environment"]


def build_report(reports: Path, method_list: list[Method], setting: Setting, environment: dict,
                 data: Path = artifacts.DATA, pipeline: str | None = None) -> dict:
    """Read the records of `method_list` under `reports`; write results.md/.csv, the DVC metrics and plots' tables
    (a `pipeline` other than the default's: its metrics under its name) and the figures (the group figure shows
    training images of the pretraining dataset prepared under `data`).

    Returns {"written": {name: Path}, "skipped": {name: reason}, "summary": the per-cell summary frame}.
    """
    reports = Path(reports)
    swept = methods.swept()
    report = read_report(reports, method_list, setting, swept)
    figures_dir = artifacts.figures_dir(reports)
    drawn = draw_figures(report, figures_dir, data, swept)
    figures = [f for f in drawn if isinstance(f, Figure)]
    written = {f.name: f.path for f in figures}
    for name, path, table in (("results_csv", artifacts.results_csv(reports), report.frame),
                              ("results_summary_csv", artifacts.results_summary_csv(reports), report.summary),
                              ("pretrain_curves_csv", pretrain_curves_csv(reports),
                               pretrain_curves(report.histories))):
        with atomic_path(path) as tmp:
            table.to_csv(tmp, index=False, na_rep="NaN")
        written[name] = path
    written["metrics_json"] = metrics_json(reports)
    metrics = compact_metrics(report.summary, {artifacts.PIXELS}, report.methods, report.facts)
    # Under its pipeline's name: `dvc exp show` lists every pipeline's metrics, and prefixes every column of keys
    # that two files share with the file's path.
    write_json(written["metrics_json"], metrics if pipeline is None else {pipeline: metrics})
    # Figure links are relative to the repository root, where the stage runs (a test's absolute reports
    # folder links as reports/figures).
    link = figures_dir.relative_to(reports.parent) if figures_dir.is_absolute() else figures_dir
    written["results_md"] = artifacts.results_md(reports)
    with atomic_path(written["results_md"]) as tmp:
        tmp.write_text(render(report, figures, environment, link))
    return {"written": written, "skipped": {s.name: s.reason for s in drawn if not isinstance(s, Figure)},
            "summary": report.summary}
