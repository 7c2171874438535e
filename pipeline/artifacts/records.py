"""The small JSON and CSV records: pretraining summary, history and method outputs, and probe records.

    reports/pretrain/<method>/seed<k>/summary.json   a PretrainSummary (its method's own facts flat beside it)
    reports/pretrain/<method>/seed<k>/history.csv    one row per logged step: step, objective, autograd_loss,
                                                      loss_jepa, lr, ... (the trainer's log rows)
    reports/pretrain/<method>/seed<k>/outputs.json   {name: nested lists}: arrays the method reports of
                                                      itself, e.g. SparseJEPA's G x K column norms
    reports/probe/.../<dataset>.json                 a ProbeRecord: a ProbeResult and what was probed

The two JSON records are typed: each key is a field defined once below, written and read through its type.
Readers turn a damaged file into one line naming it and the stage that rewrites it.
"""
from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from pipeline.core.atomic import atomic_path, write_json
from pipeline.core.errors import PipelineError

NAN = math.nan
# Records written before the method key was called `method` (committed ones under reports/longer, say).
LEGACY_KEYS = {"model": "method"}


def read_json(path: Path, fix: str = "re-run the stage that writes it (dvc repro)") -> dict:
    try:
        obj = json.loads(Path(path).read_text())
    except FileNotFoundError:
        raise PipelineError(f"{path} is missing; {fix}") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise PipelineError(f"{path} is not valid JSON ({e}); {fix}") from None
    if not isinstance(obj, dict):
        raise PipelineError(f"{path} should hold a JSON object; {fix}")
    return obj


# -- probe records --------------------------------------------------------------------------------

@dataclass(frozen=True, kw_only=True)
class ProbeResult:
    """What one linear probe found (pipeline/eval/probe.py). Defaults are what an incomplete record reads as."""
    top1: float = NAN  # % on the official test split; NaN: the run failed
    val_top1: float = NAN  # % on the held-out part of train, for the chosen penalty
    l2: float = NAN  # the chosen penalty
    on_edge: bool = False  # the chosen penalty is an end of the (widened) grid: the search may not have found the best
    converged: bool | None = None  # the final fit's gradient max-norm is below probe.tolerance (None: unchecked)
    iterations: int = 0  # L-BFGS iterations of the final fit
    grad_norm: float = NAN  # its final gradient max-norm
    n_train: int = 0
    n_val: int = 0
    n_test: int = 0
    num_classes: int = 0
    feature_dim: int = 0
    grid: list[dict] = field(default_factory=list)  # every penalty tried: validation top-1, iterations, gradient norm
    untried: list[float] = field(default_factory=list)  # penalties of probe.l2 the path stopped before


@dataclass(frozen=True, kw_only=True)
class ProbeRecord(ProbeResult):
    """reports/probe/<method>/seed<k>/<encoder>/<dataset>.json (or a pixel control's, artifacts.probe_path):
    the linear probe's result (the fields above), what was probed, and the other probes on the same features."""
    method: str  # the method key, or "pixels"
    seed: int | None  # None: a pixel control drawn once (raw pixels, PCA): one record, no seed
    encoder: str  # target, context, or a pixel control (artifacts.CONTROLS)
    dataset: str
    multi_information: float = NAN  # of the test split's features (pipeline/eval/monitor.py)
    knn_top1: float = NAN  # % on the test split, all of train voting (pipeline/eval/knn.py)
    knn_val_top1: float = NAN  # % on the linear probe's validation split, its fitting split voting
    # The low-label linear probe (pipeline/eval/low_label.py): {labelled images per class: {"top1": [...],
    # "val_top1": [...], "l2": [...], "converged": [...]}, one value per draw}; an n some class cannot supply is
    # absent; records made before `converged` was kept lack it.
    low_label: dict[str, dict[str, list]] = field(default_factory=dict)
    data: dict = field(default_factory=dict)  # the prepared dataset's meta.json: display name, subsets, sources

    @classmethod
    def of(cls, result: ProbeResult, **probed: Any) -> ProbeRecord:
        return cls(**asdict(result), **probed)

    def to_json(self) -> dict:
        """What was probed first, then the result, as the file reads."""
        head = ("method", "seed", "encoder", "dataset")
        values = asdict(self)
        return {**{k: values[k] for k in head}, **{k: v for k, v in values.items() if k not in head}}

    @classmethod
    def from_json(cls, obj: dict, path: Path) -> ProbeRecord:
        obj = {LEGACY_KEYS.get(k, k): v for k, v in obj.items()}
        known = {f.name for f in fields(cls)}
        missing = {"method", "encoder", "dataset"} - set(obj)
        if missing:
            raise PipelineError(f"probe record {path} lacks {', '.join(sorted(missing))}; re-run its probe stage "
                                f"(dvc repro)")
        values = {k: v for k, v in obj.items() if k in known}
        # A failed run leaves top1 null (or absent): NaN, never a crash later.
        return cls(**{"seed": None, **values, "top1": as_float(obj.get("top1"))})


def write_probe(path: Path, record: ProbeRecord) -> None:
    write_json(path, record.to_json())


def read_probe(path: Path) -> ProbeRecord:
    path = Path(path)
    if not path.exists():
        raise PipelineError(f"probe result {path} is missing; run `dvc repro` so the probe stage writes it")
    return ProbeRecord.from_json(read_json(path), path)


def as_float(value) -> float:
    """Record values may be null or absent after a failed run; that reads as NaN."""
    try:
        return float(value)
    except (TypeError, ValueError):
        return math.nan


# -- pretraining summary, history and method outputs ---------------------------------------------

@dataclass(frozen=True, kw_only=True)
class PretrainSummary:
    """reports/pretrain/<method>/seed<k>/summary.json: one seed's pretraining run (an untrained reference:
    steps 0 and its collapse signals). None: not recorded for that run."""
    method: str
    seed: int
    steps: int
    device: str | None = None
    hardware: str | None = None  # the machine, in words
    setting: str | None = None  # the model and schedule, in words
    epochs: float | None = None
    images_seen: int | None = None
    wall_s: float | None = None
    img_per_s: float | None = None
    # The last logged row's losses: the objective L the README states, the loss autograd differentiates (L less
    # the terms a method minimises outside autograd, e.g. by a proximal step), and the prediction loss alone.
    final_objective: float | None = None
    final_autograd_loss: float | None = None
    final_loss_jepa: float | None = None
    online_top1: float | None = None  # an untrained reference's online probe
    online_top1_last: float | None = None
    online_top1_best: float | None = None
    feature_std: float | None = None
    effective_rank: float | None = None
    position_share: float | None = None
    position_loss: float | None = None
    ema_init_share: float | None = None  # share of the probed EMA encoder that is still its init
    own: dict[str, float] = field(default_factory=dict)  # the method's summary hook (e.g. zero_fraction), flat in the JSON

    def value(self, key: str) -> float:
        """A base fact or one of the method's own, as a float (NaN when not recorded)."""
        names = {f.name for f in fields(self)} - {"own"}
        return as_float(getattr(self, key) if key in names else self.own.get(key))

    def to_json(self) -> dict:
        values = asdict(self)
        own = values.pop("own")
        clash = set(own) & set(values)
        if clash:
            raise PipelineError(f"method summary keys {sorted(clash)} clash with the trainer's; rename them in the "
                                f"method's summary hook")
        return {**values, **own}

    @classmethod
    def from_json(cls, obj: dict, path: Path) -> PretrainSummary:
        obj = {LEGACY_KEYS.get(k, k): v for k, v in obj.items()}
        names = {f.name for f in fields(cls)} - {"own"}
        if not {"method", "seed", "steps"} <= set(obj):
            raise PipelineError(f"pretraining summary {path} lacks method, seed or steps; re-run its pretrain "
                                f"stage (dvc repro)")
        return cls(**{k: v for k, v in obj.items() if k in names},
                   own={k: v for k, v in obj.items() if k not in names})


def write_summary(path: Path, summary: PretrainSummary) -> None:
    write_json(path, summary.to_json())


def read_summary(path: Path) -> PretrainSummary | None:
    """The pretraining summary, or None when the method has not been run here."""
    path = Path(path)
    return PretrainSummary.from_json(read_json(path), path) if path.exists() else None


def write_history(path: Path, rows: list[dict]) -> None:
    with atomic_path(path) as tmp:
        pd.DataFrame(rows).to_csv(tmp, index=False)


def read_history(path: Path) -> pd.DataFrame | None:
    """The per-step log, or None when absent. Empty cells (monitor-only columns) become NaN."""
    path = Path(path)
    if not path.exists():
        return None
    try:
        frame = pd.read_csv(path)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as e:
        raise PipelineError(f"{path} is not a readable CSV ({type(e).__name__}); re-run its pretrain stage "
                            f"(dvc repro)") from None
    # Coerce so a stray text cell cannot turn a whole column into strings and break the plots.
    return frame.apply(pd.to_numeric, errors="coerce")


def write_outputs(path: Path, outputs: dict[str, np.ndarray]) -> None:
    """Arrays as nested lists, one matrix row per line; floats are written exactly (JSON uses repr)."""
    entries = []
    for name, value in outputs.items():
        array = np.asarray(value, dtype=np.float64)
        if not np.all(np.isfinite(array)):
            raise PipelineError(f"method output '{name}' holds NaN or infinity; check the model's weights")
        rows = array.tolist() if array.ndim >= 2 else [array.tolist()]
        body = ",\n".join(f"    {json.dumps(row)}" for row in rows)
        entries.append(f"  {json.dumps(name)}: " + (f"[\n{body}\n  ]" if array.ndim >= 2 else json.dumps(rows[0])))
    with atomic_path(path) as tmp:
        tmp.write_text("{\n" + ",\n".join(entries) + ("\n}\n" if entries else "}\n"))


def read_outputs(path: Path) -> dict[str, np.ndarray]:
    """{name: float64 array}; {} when the method reports nothing of itself (or has not been run)."""
    path = Path(path)
    if not path.exists():
        return {}
    fix = "re-run its pretrain stage (dvc repro)"
    try:
        return {name: np.asarray(value, dtype=np.float64) for name, value in read_json(path, fix).items()}
    except (TypeError, ValueError):
        raise PipelineError(f"{path} holds a value that is not a numeric array; {fix}") from None
