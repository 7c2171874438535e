"""The report's reader: every record it shows, read once into one typed Report.

Under a reports folder (artifacts' layout): each method's probe records (every seed, every encoder) and
the pixel controls', its pretraining summaries and histories per seed, the first seed's outputs.json of the
methods that draw figures from it, and the collected sweeps. A missing probe record is a PipelineError
naming it (a seed the probe stages have not run must not shrink a mean silently).
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from pipeline import artifacts
from pipeline.artifacts.records import read_history, read_outputs, read_probe, read_summary
from pipeline.config.probe import ProbeConfig
from pipeline.config.report import ReportConfig
from pipeline.methods import Method
from pipeline.report.facts import method_facts, pretrain_facts
from pipeline.report.sweep_results import Sweep, read_sweep
from pipeline.report.tables import (Row, Runs, dataset_names, is_pretrained, report_rows, results_frame,
                                    summary_frame)


@dataclass(frozen=True)
class Setting:
    """What the report covers: params.yaml's seeds, probed datasets and pretraining dataset, its `report` block
    (the bounds its goals are held to, by name) and the `probe` block (the probes its prose describes)."""
    seeds: list[int]
    datasets: list[str]
    pretrain_dataset: str
    report: ReportConfig
    probe: ProbeConfig
    encoders: tuple[str, ...]  # extract.encoders: the encoders of a pretrained method that were probed


@dataclass(frozen=True)
class Report:
    setting: Setting
    methods: list[Method]                          # the reported methods, in report order
    rows: list[Row]                                # the pixel controls, then every encoder of every method
    runs: Runs                                     # {(row key, dataset): {seed: probe record}}
    histories: dict[tuple[str, int], pd.DataFrame]  # {(method, seed): history} of the pretrained methods
    facts: dict[str, dict[int, dict[str, float]]]  # {method: {seed: pretraining facts}}
    outputs: dict[str, dict[str, np.ndarray]]      # {method: first seed's outputs.json}, methods with figures
    sweeps: dict[str, Sweep]                       # {method: its collected sweep}
    names: dict[str, str]                          # dataset display names
    frame: pd.DataFrame                            # one row per probe run (results.csv)
    summary: pd.DataFrame                          # one row per (results row, dataset) (results_summary.csv)


def read_runs(reports: Path, rows: list[Row], seeds: list[int], datasets: list[str]) -> dict:
    """{(row key, dataset): {seed: probe record}}; a pixel control drawn once has one record, under seed None."""
    runs = {}
    for row in rows:
        row_seeds = artifacts.control_seeds(row.encoder, tuple(seeds)) if row.control else seeds
        for dataset in datasets:
            runs[(row.key, dataset)] = {
                seed: read_probe(artifacts.probe_path(row.method, dataset, seed, row.encoder, reports))
                for seed in row_seeds}
    return runs


def read_report(reports: Path, method_list: list[Method], setting: Setting, swept: list[Method]) -> Report:
    """Every record the report of `method_list` shows, under `reports`; the sweeps of those of `swept`
    (the registry's swept methods) it reports."""
    seeds, datasets = setting.seeds, setting.datasets
    rows = report_rows(method_list, setting.encoders)
    runs = read_runs(reports, rows, seeds, datasets)
    histories = {(m.key, seed): h for m in method_list if is_pretrained(m.key) for seed in seeds
                 if (h := read_history(artifacts.history_path(m.key, seed, reports))) is not None}
    facts = {m.key: {seed: pretrain_facts(read_summary(artifacts.summary_path(m.key, seed, reports)),
                                          histories.get((m.key, seed)), method_facts(m)) for seed in seeds}
             for m in method_list}
    outputs = {m.key: read_outputs(artifacts.outputs_path(m.key, seeds[0], reports)) for m in method_list if m.figures}
    reported = {m.key for m in method_list}
    sweeps = {m.key: s for m in swept if m.key in reported and (s := read_sweep(m, reports)) is not None}
    return Report(setting, list(method_list), rows, runs, histories, facts, outputs, sweeps,
                  dataset_names(runs, datasets), results_frame(runs, rows, datasets),
                  summary_frame(runs, rows, datasets))


def environment(pretrain_dataset: str, method_keys: list[str], seeds: list[int],
                reports: Path = artifacts.REPORTS) -> dict:
    """Run facts for the report: the setting, hardware and mean wall time per seed of the pretrained methods."""
    summaries = {(m, seed): s for m in method_keys if is_pretrained(m) for seed in seeds
                 if (s := read_summary(artifacts.summary_path(m, seed, reports)))}
    env = {"pretrain_dataset": pretrain_dataset}
    if summaries:
        first = next(iter(summaries.values()))
        env["setting"] = first.setting or ""
        env["device"] = first.hardware or first.device or ""
        walls = {}
        for (m, _), s in summaries.items():
            # A summary without a wall time is left out, not counted as 0 s (that would drag the mean down).
            if s.wall_s is not None:
                walls.setdefault(m, []).append(float(s.wall_s))
        env["wall_s"] = {m: sum(w) / len(w) for m, w in walls.items()}
    env["date"] = time.strftime("%Y-%m-%d")
    return env
