"""The controls every results table carries beside the encoders, each probed exactly like them: the raw pixels,
and two linear maps of the pixels to the encoders' feature width (matched dimension). An encoder has learned
something only where it scores above these. Their names and paths: artifacts.CONTROLS.

    raw       the pixels themselves (pixel_features)
    pca       the pixels projected on their top principal directions (fitted on the train split's pixels)
    gaussian  a random Gaussian projection of the pixels (one per seed; the Johnson-Lindenstrauss control)
"""
from __future__ import annotations

import torch

from pipeline.core.errors import PipelineError

CHUNK_ROWS = 8192  # rows per matrix product (memory: one chunk in float64)


def pca_basis(x: torch.Tensor, dim: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(mean (D,), components (D, k)): the top k = min(dim, D, N - 1) principal directions of the rows of x,
    from its covariance accumulated chunk by chunk in float64 (a large train split is never copied whole)."""
    n, d = x.shape
    k = min(dim, d, n - 1)
    if k < 1:
        raise PipelineError(f"PCA control: {n} train images cannot give a principal direction; need at least 2")
    total = torch.zeros(d, dtype=torch.float64)
    gram = torch.zeros(d, d, dtype=torch.float64)
    for start in range(0, n, CHUNK_ROWS):
        part = x[start:start + CHUNK_ROWS].double()
        total += part.sum(dim=0)
        gram += part.T @ part
    mean = total / n
    cov = (gram - n * torch.outer(mean, mean)) / (n - 1)
    _, vecs = torch.linalg.eigh(cov)  # ascending eigenvalues
    return mean, vecs[:, -k:].flip(1)


def gaussian_basis(in_dim: int, dim: int, seed: int) -> torch.Tensor:
    """(D, dim) with N(0, 1/dim) entries, the same for the same seed on every machine (drawn on the CPU)."""
    gen = torch.Generator().manual_seed(seed)
    return torch.randn(in_dim, dim, generator=gen, dtype=torch.float64) / dim ** 0.5


def project(x: torch.Tensor, basis: torch.Tensor, mean: torch.Tensor | None = None) -> torch.Tensor:
    """float32 (N, k): rows of x (minus `mean`) times `basis`, chunk by chunk."""
    out = torch.empty(len(x), basis.shape[1], dtype=torch.float32)
    for start in range(0, len(x), CHUNK_ROWS):
        part = x[start:start + CHUNK_ROWS].double()
        if mean is not None:
            part = part - mean
        out[start:start + len(part)] = (part @ basis).float()
    return out
