"""Stage `report`: the paper's table, the pretraining facts and the figures, from the stage outputs.

    tables.py   probe records and summaries -> pandas and Markdown (pure)
    figures.py  pretraining curves and column-norm maps (matplotlib)
    readme.py   README.md's results section = reports/results.md

`build_report` reads every method's records through pipeline.artifacts and writes:

    reports/results.md                   README-ready Markdown (starts at a level-3 heading)
    reports/results.csv                  one row per (method, dataset), see tables.RESULTS_COLUMNS
    reports/figures/pretrain_curves.png  every pretrained method
    reports/figures/column_norms_<method>.png   for each method that reports column norms
"""
from __future__ import annotations

import time
from pathlib import Path

from pipeline import artifacts, methods
from pipeline.artifacts.records import read_history, read_outputs, read_probe, read_summary
from pipeline.core.atomic import atomic_path
from pipeline.report.figures import plot_column_norms, plot_pretrain_curves
from pipeline.report.tables import (data_table_md, dataset_names, diagnostics_table_md, pretrain_facts,
                                    pretrain_table_md, probe_check_md, results_frame, results_markdown,
                                    results_table_md)


def build_report(reports: Path, models: list[str], datasets: list[str], environment: dict) -> dict:
    """Read probe and pretraining records under `reports`; write results.md/.csv and the figures.

    Returns {"written": {name: Path}, "skipped": {name: reason}, "top1": {(method, dataset): top-1}}.
    """
    reports = Path(reports)
    figures = artifacts.figures_dir(reports)
    written: dict[str, Path] = {}
    skipped: dict[str, str] = {}
    captions: dict[str, str] = {}  # figure name -> what the Markdown says it shows

    probes = {(m, d): read_probe(artifacts.probe_path(m, d, reports)) for m in models for d in datasets}
    histories = {m: h for m in models if is_pretrained(m)
                 if (h := read_history(artifacts.history_path(m, reports))) is not None}
    facts = {m: pretrain_facts(read_summary(artifacts.summary_path(m, reports)), histories.get(m)) for m in models}

    curves = figures / "pretrain_curves.png"
    if histories:
        plot_pretrain_curves(histories, curves)
        written["pretrain_curves"] = curves
        captions["pretrain_curves"] = "pretraining curves"
    else:
        skipped["pretrain_curves"] = "no pretrained method has a history.csv"
        _remove_stale(curves)

    for stale in figures.glob("column_norms_*.png"):
        if stale.stem.removeprefix("column_norms_") not in models:
            _remove_stale(stale)
    for model in models:
        norms = read_outputs(artifacts.outputs_path(model, reports)).get("column_norms")
        path = figures / f"column_norms_{model}.png"
        if norms is not None:
            plot_column_norms(norms, path, model)
            written[f"column_norms_{model}"] = path
            captions[f"column_norms_{model}"] = f"{methods.display_name(model)} column-norm map"
        else:
            _remove_stale(path)

    frame = results_frame(probes, models, datasets)
    csv_path = artifacts.results_csv(reports)
    with atomic_path(csv_path) as tmp:
        frame.to_csv(tmp, index=False, na_rep="NaN")
    written["results_csv"] = csv_path

    figure_refs = {caption: f"{reports.name}/figures/{written[name].name}" for name, caption in captions.items()}
    if environment.get("pretrain_dataset") in datasets:
        environment = {**environment, "pretrain_dataset": dataset_names(probes, datasets)[environment["pretrain_dataset"]]}
    md = results_markdown(results_table_md(frame, models, datasets), data_table_md(probes, models, datasets),
                          pretrain_table_md(facts, probes, models, datasets), environment, figure_refs,
                          probe_check_md(probes, models, datasets), diagnostics_table_md(facts, models))
    md_path = artifacts.results_md(reports)
    with atomic_path(md_path) as tmp:
        tmp.write_text(md)
    written["results_md"] = md_path
    return {"written": written, "skipped": skipped, "top1": {key: probe["top1"] for key, probe in probes.items()}}


def is_pretrained(model: str) -> bool:
    return model in methods.keys() and methods.get(model).pretrained


def environment(pretrain_dataset: str, models: list[str], reports: Path = artifacts.REPORTS) -> dict:
    """Run facts for the report: the setting, hardware and wall time of the pretrained methods."""
    summaries = {m: s for m in models if is_pretrained(m) if (s := read_summary(artifacts.summary_path(m, reports)))}
    env = {"pretrain_dataset": pretrain_dataset}
    if summaries:
        first = next(iter(summaries.values()))
        env["setting"] = first.get("setting", "")
        env["device"] = first.get("hardware", first.get("device", ""))
        env["wall_s"] = {m: s.get("wall_s") for m, s in summaries.items()}
    env["date"] = time.strftime("%Y-%m-%d")
    return env


def _remove_stale(path: Path) -> None:
    # A figure left from an earlier run with other methods would silently misdescribe this one.
    path.unlink(missing_ok=True)
