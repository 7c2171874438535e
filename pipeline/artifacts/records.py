"""The small JSON and CSV records: pretraining summary, history and method outputs, and probe records.

    reports/pretrain/<method>/seed<k>/summary.json   {"model", "seed", "steps", "wall_s", "img_per_s",
                                                      "final_loss_jepa", ... and the method's own fields}
    reports/pretrain/<method>/seed<k>/history.csv    one row per logged step: step, loss, loss_jepa, lr, ...
    reports/pretrain/<method>/seed<k>/outputs.json   {name: nested lists}: arrays the method reports of
                                                      itself, e.g. SparseJEPA's G x K column norms
    reports/probe/.../<dataset>.json                 {"model", "seed", "encoder", "dataset", "top1",
                                                      "val_top1", "l2", ..., "data"}

Readers turn a damaged file into one line naming it and the stage that rewrites it.
"""
from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd

from pipeline.core.atomic import atomic_path, write_json
from pipeline.core.errors import PipelineError


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

def write_probe(path: Path, record: dict) -> None:
    write_json(path, record)


def read_probe(path: Path) -> dict:
    """A probe record; a missing or null top1 reads as NaN (a failed run), never as a crash later."""
    path = Path(path)
    if not path.exists():
        raise PipelineError(f"probe result {path} is missing; run `dvc repro` so the probe stage writes it")
    record = read_json(path)
    record["top1"] = as_float(record.get("top1"))
    return record


def as_float(value) -> float:
    """Record values may be null or absent after a failed run; that reads as NaN."""
    try:
        return float(value)
    except (TypeError, ValueError):
        return math.nan


# -- pretraining summary, history and method outputs ---------------------------------------------

def write_summary(path: Path, summary: dict) -> None:
    write_json(path, summary)


def read_summary(path: Path) -> dict:
    """The pretraining summary, or {} when the method has not been run here."""
    return read_json(path) if Path(path).exists() else {}


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
