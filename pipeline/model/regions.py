"""Regions of the patch grid: which part of the image a target block predicts (its centre's region)."""
from __future__ import annotations

import math

import torch


def region_of(centers: torch.Tensor, grid: tuple[int, int], groups: int) -> torch.Tensor:
    """Region index (0..groups-1) of each block centre, regions tiling the grid row-major.

    `groups` is split into region_rows x region_cols as close to square as divides it
    (4 -> 2x2, 2 -> 1x2, 6 -> 2x3).
    """
    region_rows, region_cols = region_grid(groups)
    rows, cols = grid
    r = (centers[..., 0] * region_rows / rows).floor().clamp(0, region_rows - 1).long()
    c = (centers[..., 1] * region_cols / cols).floor().clamp(0, region_cols - 1).long()
    return r * region_cols + c


def region_grid(groups: int) -> tuple[int, int]:
    region_rows = max(d for d in range(1, int(math.isqrt(groups)) + 1) if groups % d == 0)
    return region_rows, groups // region_rows
