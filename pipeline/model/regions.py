"""Regions of the patch grid: which part of the image a target block predicts (its centre's region), and the
control that ignores the image (a uniformly random region per block)."""
from __future__ import annotations

import math

import torch


def region_of(centers: torch.Tensor, grid: tuple[int, int], groups: int) -> torch.Tensor:
    """Region index (0..groups-1) of each block centre (B, M, 2), regions tiling the grid row-major.

    `groups` is split into region_rows x region_cols as close to square as divides it
    (4 -> 2x2, 2 -> 1x2, 6 -> 2x3). A block belongs to the region its centre lies in; a centre exactly on a
    boundary between two regions (on a 7x7 grid, every 3-row block whose middle row is row 3) goes to the
    region before it for half of the blocks and after it for the other half, alternating with the block's
    place in the batch (image + block index), so that the sampler's positions, symmetric about the grid's
    middle, fill two regions per axis equally. Flooring such centres gave the last region 36% of the blocks and
    the first 16% on the 7x7 grid.
    """
    region_rows, region_cols = region_grid(groups)
    batch, blocks = centers.shape[:2]
    order = (torch.arange(batch, device=centers.device)[:, None]
             + torch.arange(blocks, device=centers.device)[None, :])
    # Independent alternations per axis: a centre on both boundaries visits all four neighbouring regions.
    r = _side(centers[..., 0], grid[0], region_rows, order % 2)
    c = _side(centers[..., 1], grid[1], region_cols, order // 2 % 2)
    return r * region_cols + c


def _side(coord: torch.Tensor, size: int, parts: int, before: torch.Tensor) -> torch.Tensor:
    """The part (0..parts-1) of [0, size] each coordinate lies in; one on a boundary goes before it where
    `before` is 1. Exact: coordinates are multiples of 1/2 and coord * parts is compared with multiples of size."""
    scaled = coord * parts
    on_boundary = (torch.remainder(scaled, size) == 0) & (scaled > 0) & (scaled < parts * size)
    part = torch.div(scaled, size, rounding_mode="floor").long() - (on_boundary & (before == 1)).long()
    return part.clamp(0, parts - 1)


def region_grid(groups: int) -> tuple[int, int]:
    region_rows = max(d for d in range(1, int(math.isqrt(groups)) + 1) if groups % d == 0)
    return region_rows, groups // region_rows


def random_regions(blocks: tuple[int, int], groups: int, gen: torch.Generator | None,
                   shard: tuple[int, int] = (0, 1), device: torch.device | str = "cpu") -> torch.Tensor:
    """A uniformly random region (0..groups-1) for each of the (B, M) target blocks, whatever their place:
    the control for SparseJEPA's groups (every map then sees the same task, so a latent serving some regions
    and not others can only be noise). With shard (rank, processes), this rank's rows of the global batch's draw."""
    rank, processes = shard
    rows = blocks[0]
    drawn = torch.randint(groups, (rows * processes, blocks[1]), generator=gen, device=device)
    return drawn[rank * rows:(rank + 1) * rows]
