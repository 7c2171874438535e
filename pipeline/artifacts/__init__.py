"""Where every stage artefact lives. Stages, reports and the gate take paths from here, never build them.

    data/prepared/<dataset>/               prepared arrays and meta.json      pipeline.artifacts.prepared
    data/models/<method>/encoder.pt        frozen encoder and its params      pipeline.artifacts.encoder
    data/features/<method>/<dataset>.npz   pooled features and labels         pipeline.artifacts.features
    reports/pretrain/<method>/summary.json run facts (a DVC metric)           pipeline.artifacts.records
    reports/pretrain/<method>/history.csv  logged rows (a DVC plot)           pipeline.artifacts.records
    reports/pretrain/<method>/outputs.json what the method reports of itself  pipeline.artifacts.records
                                           (e.g. SparseJEPA's column norms)
    reports/probe/<method>/<dataset>.json  probe record (a DVC metric)        pipeline.artifacts.records
    reports/results.md, results.csv, figures/   the report                    pipeline.report

The format modules beside this one each own one format, with its writer and its reader. This module
imports nothing heavy, so a stage's code dependencies are this file plus the formats it uses.

Outside DVC, at the real repository root also inside `dvc exp run --temp` (DVC_ROOT): data/raw/
(verified downloads, never re-fetched) and checkpoints/ (resumable state).
"""
from __future__ import annotations

import os
from pathlib import Path

DATA = Path("data")
REPORTS = Path("reports")


def repo_root() -> Path:
    """The real repository: DVC_ROOT inside `dvc exp run --temp`/`--queue`, else the working directory."""
    return Path(os.environ.get("DVC_ROOT") or os.getcwd())


def raw_root() -> Path:
    return repo_root() / "data" / "raw"


def checkpoint_root() -> Path:
    """SPARSEJEPA_CHECKPOINTS, else <repo>/checkpoints."""
    if os.environ.get("SPARSEJEPA_CHECKPOINTS"):
        return Path(os.environ["SPARSEJEPA_CHECKPOINTS"])
    return repo_root() / "checkpoints"


def prepared_dir(dataset: str, data: Path = DATA) -> Path:
    return data / "prepared" / dataset


def encoder_path(method: str, data: Path = DATA) -> Path:
    return data / "models" / method / "encoder.pt"


def features_path(method: str, dataset: str, data: Path = DATA) -> Path:
    return data / "features" / method / f"{dataset}.npz"


def pretrain_dir(method: str, reports: Path = REPORTS) -> Path:
    return reports / "pretrain" / method


def summary_path(method: str, reports: Path = REPORTS) -> Path:
    return pretrain_dir(method, reports) / "summary.json"


def history_path(method: str, reports: Path = REPORTS) -> Path:
    return pretrain_dir(method, reports) / "history.csv"


def outputs_path(method: str, reports: Path = REPORTS) -> Path:
    return pretrain_dir(method, reports) / "outputs.json"


def probe_dir(reports: Path = REPORTS) -> Path:
    return reports / "probe"


def probe_path(method: str, dataset: str, reports: Path = REPORTS) -> Path:
    return probe_dir(reports) / method / f"{dataset}.json"


def results_md(reports: Path = REPORTS) -> Path:
    return reports / "results.md"


def results_csv(reports: Path = REPORTS) -> Path:
    return reports / "results.csv"


def figures_dir(reports: Path = REPORTS) -> Path:
    return reports / "figures"


def ci_baseline(reports: Path = REPORTS) -> Path:
    return reports / "ci_baseline.json"
