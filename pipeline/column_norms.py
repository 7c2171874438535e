"""The file format of SparseJEPA's G x K map of latent-to-group column norms (pretrain writes it,
the report draws it)."""
from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

from pipeline.atomic import atomic_path
from pipeline.errors import PipelineError


def write_column_norms(path: str | Path, norms: np.ndarray) -> None:
    """Write the G x K map of latent-to-group column norms ||W^(g)[:, j]||_2 as CSV, atomically.

    Format: a header `group,0,1,...,K-1` (latent dimension indices), then one row per group g
    in order 0..G-1: `g,<norm of latent 0>,...,<norm of latent K-1>`. Values are written with
    repr() so they round-trip exactly; an exactly-zero column is written `0.0`.
    """
    norms = np.asarray(norms, dtype=np.float64)
    if norms.ndim != 2 or norms.size == 0:
        raise PipelineError(f"column norms must be a non-empty G x K matrix, got shape {norms.shape}; "
                            f"pass one row per group and one column per latent dimension")
    if not np.all(np.isfinite(norms)) or np.any(norms < 0):
        raise PipelineError("column norms must be finite and >= 0; check the SparseJEPA weights "
                            "for NaN before writing them")
    with atomic_path(path) as tmp:
        with open(tmp, "w", newline="") as f:
            writer = csv.writer(f)
            writer.writerow(["group", *range(norms.shape[1])])
            for g, row in enumerate(norms):
                writer.writerow([g, *(repr(float(v)) for v in row)])


def read_column_norms(path: str | Path) -> np.ndarray:
    """Read the file written by `write_column_norms` back into a float64 array of shape (G, K)."""
    path = Path(path)
    fix = "re-run SparseJEPA pretraining so write_column_norms rewrites it"
    try:
        with open(path, newline="") as f:
            rows = list(csv.reader(f))
    except FileNotFoundError:
        raise PipelineError(f"{path} is missing; {fix}") from None
    if len(rows) < 2:
        raise PipelineError(f"{path} has no group rows; {fix}")
    header, body = rows[0], rows[1:]
    if header[:1] != ["group"] or header[1:] != [str(j) for j in range(len(header) - 1)] or len(header) < 2:
        raise PipelineError(f"{path} header should be `group,0,1,...,K-1`; {fix}")
    try:
        groups = [int(r[0]) for r in body]
        values = np.array([[float(v) for v in r[1:]] for r in body], dtype=np.float64)
    except (ValueError, IndexError):
        raise PipelineError(f"{path} holds a non-numeric cell; {fix}") from None
    if groups != list(range(len(body))) or values.shape != (len(body), len(header) - 1):
        raise PipelineError(f"{path} should have rows for groups 0..G-1, each with K={len(header) - 1} "
                            f"values; {fix}")
    return values
