"""Where every stage artefact lives. Stages, reports and the gate take paths from here, never build them.

    data/prepared/<dataset>/                          prepared arrays and meta.json   artifacts.prepared
    data/models/<method>/seed<k>/<encoder>.pt         frozen encoder, its params      artifacts.encoder
    data/features/<method>/seed<k>/<encoder>/<dataset>.npz   pooled features, labels  artifacts.features
    data/features/pixels/<control>/<dataset>.npz      a pixel control: raw, pca       artifacts.features
    data/features/pixels/seed<k>/<control>/<dataset>.npz   one drawn per seed: gaussian
    reports/pretrain/<method>/seed<k>/summary.json    run facts                       artifacts.records
    reports/pretrain/<method>/seed<k>/history.csv     logged rows                     artifacts.records
    reports/pretrain/<method>/seed<k>/outputs.json    what the method reports of      artifacts.records
                                                      itself (e.g. column norms)
    reports/probe/<method>/seed<k>/<encoder>/<dataset>.json   probe record (a DVC metric)  artifacts.records
    reports/probe/pixels/[seed<k>/]<control>/<dataset>.json   a pixel control's record  artifacts.records
    reports/results.md, results*.csv, figures/        the report                      pipeline.report

<encoder> is `target` (the EMA target encoder, I-JEPA's probed encoder; an untrained reference's
only encoder) or `context`. The format modules beside this one each own one format, with its writer
and its reader. This module imports nothing heavy, so a stage's code dependencies are this file plus
the formats it uses.

A second pipeline (the ablation ladder, ladder/dvc.yaml) writes the same tree under data/<name>/ and
reports/<name>/ (its stages take `--under <name>`, see `split_under`); prepared data stays shared.

Outside DVC, at the real repository root also inside `dvc exp run --temp` (DVC_ROOT): data/raw/
(verified downloads, never re-fetched) and checkpoints/ (resumable state).
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from pipeline.config.extract import ENCODERS
from pipeline.core.errors import PipelineError
from pipeline.core.workspace import repo_root

DATA = Path("data")
REPORTS = Path("reports")


@dataclass(frozen=True)
class Roots:
    """Where one pipeline's stages write their models and features (data) and records (reports)."""
    data: Path = DATA
    reports: Path = REPORTS


def split_under(argv: list[str]) -> tuple[list[str], Roots]:
    """A stage's arguments without a trailing `--under <name>`, and the roots it names (none: the default
    pipeline's data/ and reports/)."""
    if "--under" not in argv:
        return argv, Roots()
    i = argv.index("--under")
    if i != len(argv) - 2 or not argv[-1].isidentifier():
        raise PipelineError(f"`--under <name>` must end a stage's arguments with a plain name, got {argv[i:]}")
    return argv[:i], Roots(DATA / argv[-1], REPORTS / argv[-1])


def raw_root() -> Path:
    return repo_root() / "data" / "raw"


def checkpoint_root() -> Path:
    """SPARSEJEPA_CHECKPOINTS, else <repo>/checkpoints."""
    if os.environ.get("SPARSEJEPA_CHECKPOINTS"):
        return Path(os.environ["SPARSEJEPA_CHECKPOINTS"])
    return repo_root() / "checkpoints"


def prepared_dir(dataset: str, data: Path = DATA) -> Path:
    return data / "prepared" / dataset


PIXELS = "pixels"  # the pixel controls' name where a method's would be (pipeline/eval/controls.py)
# The pixel controls, in table order, where a method's encoders would be: the raw pixels, and the pixels mapped
# to the encoders' feature width by PCA or by a random Gaussian projection (drawn anew per seed: SEEDED).
CONTROLS = ("raw", "pca", "gaussian")
SEEDED_CONTROLS = ("gaussian",)


def control_seeds(control: str, seeds: tuple[int, ...]) -> list[int | None]:
    """The seeds a pixel control has records for: every seed for a drawn control, else one record (None)."""
    return list(seeds) if control in SEEDED_CONTROLS else [None]


def _run(method: str, seed: int) -> str:
    return f"{method}/seed{seed}"


def models_dir(method: str, data: Path = DATA) -> Path:
    """Every seed's encoders of one method (its pretrain stage's output)."""
    return data / "models" / method


def encoder_path(method: str, seed: int, encoder: str = "target", data: Path = DATA) -> Path:
    return data / "models" / _run(method, seed) / f"{encoder}.pt"


def saved_encoders(method: str, seed: int, wanted: tuple[str, ...], data: Path = DATA) -> list[str]:
    """The encoders of `wanted` (params.yaml's extract.encoders) a run of `method` left, in ENCODERS order: what
    its pretrain stage wrote decides, so extraction needs no registry (a new method re-runs its own stages only)."""
    found = [name for name in ENCODERS if name in wanted and encoder_path(method, seed, name, data).exists()]
    if not found:
        raise PipelineError(f"no encoder under {encoder_path(method, seed, 'target', data).parent}; run `dvc repro` "
                            f"to pretrain {method} for seed {seed} (is the seed in params.yaml `seeds`?)")
    return found


def method_features_dir(method: str, data: Path = DATA) -> Path:
    """Every feature file of one method, or of the pixel controls (one extract stage's output)."""
    return data / "features" / method


def _seed_encoder(method: str, seed: int | None, encoder: str) -> Path:
    """seed<k>/<encoder>, or <control> for a pixel control drawn once (no seed)."""
    if method == PIXELS:
        if encoder not in CONTROLS:
            raise PipelineError(f"'{encoder}' is not a pixel control; use one of {', '.join(CONTROLS)}")
        if (seed is None) == (encoder in SEEDED_CONTROLS):
            raise PipelineError(f"pixel control '{encoder}' is {'' if encoder in SEEDED_CONTROLS else 'not '}drawn "
                                f"per seed (seed given: {seed})")
        if seed is None:
            return Path(encoder)
    return Path(f"seed{seed}") / encoder


def features_path(method: str, dataset: str, seed: int | None = None, encoder: str = "target",
                  data: Path = DATA) -> Path:
    """A method's features for one seed and encoder, or (`method` PIXELS) a pixel control's, `encoder` the
    control (its seed None unless the control is drawn per seed)."""
    return method_features_dir(method, data) / _seed_encoder(method, seed, encoder) / f"{dataset}.npz"


def method_reports_dir(method: str, reports: Path = REPORTS) -> Path:
    """Every seed's pretraining reports of one method (its pretrain stage's output)."""
    return reports / "pretrain" / method


def pretrain_dir(method: str, seed: int, reports: Path = REPORTS) -> Path:
    return reports / "pretrain" / _run(method, seed)


def summary_path(method: str, seed: int, reports: Path = REPORTS) -> Path:
    return pretrain_dir(method, seed, reports) / "summary.json"


def history_path(method: str, seed: int, reports: Path = REPORTS) -> Path:
    return pretrain_dir(method, seed, reports) / "history.csv"


def outputs_path(method: str, seed: int, reports: Path = REPORTS) -> Path:
    return pretrain_dir(method, seed, reports) / "outputs.json"


def probe_dir(reports: Path = REPORTS) -> Path:
    return reports / "probe"


def method_probe_dir(method: str, reports: Path = REPORTS) -> Path:
    """Every probe record of one method, or of the pixel controls (one probe stage's output)."""
    return probe_dir(reports) / method


def probe_path(method: str, dataset: str, seed: int | None = None, encoder: str = "target",
               reports: Path = REPORTS) -> Path:
    return method_probe_dir(method, reports) / _seed_encoder(method, seed, encoder) / f"{dataset}.json"


def results_md(reports: Path = REPORTS) -> Path:
    return reports / "results.md"


def results_csv(reports: Path = REPORTS) -> Path:
    return reports / "results.csv"


def results_summary_csv(reports: Path = REPORTS) -> Path:
    return reports / "results_summary.csv"


def figures_dir(reports: Path = REPORTS) -> Path:
    return reports / "figures"


def ci_baseline(reports: Path = REPORTS) -> Path:
    return reports / "ci_baseline.json"
