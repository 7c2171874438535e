"""I-JEPA multi-block masks, sampled for a whole batch at once with tensor ops.

Per batch: one target-block shape (drawn once, as in I-JEPA) and one context-block shape;
per image: the positions of `num_targets` target blocks and of the context block. The context
is the context block minus every target block.

Fixes to the reference sampler (facebookresearch/ijepa, src/masks/multiblock.py), each tested:
- Bounds: block tops range over 0..H-h inclusive (the reference never reached the last
  row/column, and anchored a grid-sized context block top-left).
- Shapes: scale and aspect ratio are independent draws (the reference used one uniform for
  both) and are snapped to the nearest integer block whose realised scale and aspect lie inside
  the configured bounds, so the bounds hold on small grids too.
- Truncation: contexts of different sizes are cut to the batch minimum by a random subset,
  not by dropping the highest patch indices.
- No retry loop: the bounds are checked once (`check_feasible`) so that a context can never fall
  below `min_context`; the reference's `min_keep` loop could spin forever on 8x8 grids.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

import torch

from pipeline.config.masks import MaskConfig
from pipeline.core.errors import PipelineError


@dataclass(frozen=True)
class Masks:
    context: torch.Tensor  # (B, Nc) sorted patch indices seen by the context encoder
    targets: torch.Tensor  # (B, M, Nt) patch indices of each target block
    target_centers: torch.Tensor  # (B, M, 2) float (row, col) centre of each target block, grid units
    context_kept: float  # mean fraction of each image's context that survived truncation


@lru_cache(maxsize=64)
def valid_shapes(grid: tuple[int, int], scale: tuple[float, float],
                 aspect: tuple[float, float]) -> tuple[tuple[int, int], ...]:
    """All integer (h, w) blocks on the grid with h*w/N in `scale` and h/w in `aspect`."""
    rows, cols = grid
    n = rows * cols
    eps = 1e-9
    return tuple(
        (h, w)
        for h in range(1, rows + 1)
        for w in range(1, cols + 1)
        if scale[0] - eps <= h * w / n <= scale[1] + eps and aspect[0] - eps <= h / w <= aspect[1] + eps
    )


def check_feasible(cfg: MaskConfig, grid: tuple[int, int]) -> None:
    """Fail fast when the mask bounds cannot be met on this grid, before any training."""
    targets = valid_shapes(grid, cfg.target_scale, cfg.target_aspect)
    contexts = context_shapes(grid, cfg.context_scale)
    where = f"on the {grid[0]}x{grid[1]} patch grid"
    if not targets:
        raise PipelineError(f"masks: no integer target block {where} has scale in {list(cfg.target_scale)} and "
                            f"aspect in {list(cfg.target_aspect)}; widen masks.target_scale/target_aspect")
    if not contexts:
        raise PipelineError(f"masks: no square context block {where} has scale in {list(cfg.context_scale)}; "
                            f"widen masks.context_scale")
    worst = min(h * w for h, w in contexts) - cfg.num_targets * max(h * w for h, w in targets)
    if worst < cfg.min_context:
        raise PipelineError(f"masks: {cfg.num_targets} target blocks can cover all but {max(worst, 0)} context "
                            f"patches {where}, below masks.min_context={cfg.min_context}; use fewer or smaller "
                            f"targets or a larger context scale")


def context_shapes(grid: tuple[int, int], scale: tuple[float, float]) -> tuple[tuple[int, int], ...]:
    """The context blocks the sampler can draw: square ones with h*w/N in `scale`, or, where none is (an aspect-1
    block on a non-square grid may not reach the scale), the rectangles closest to square."""
    return valid_shapes(grid, scale, (1.0, 1.0)) or valid_shapes(grid, scale, (min(grid) / max(grid),
                                                                              max(grid) / min(grid)))


def _snap(shapes: tuple[tuple[int, int], ...], scale: float, aspect: float, n: int) -> tuple[int, int]:
    """The valid shape closest (in log h, log w) to the continuous draw."""
    h = math.sqrt(scale * n * aspect)
    w = math.sqrt(scale * n / aspect)
    return min(shapes, key=lambda s: (math.log(s[0] / h)) ** 2 + (math.log(s[1] / w)) ** 2)


def draw_shape(shapes, bounds_scale, bounds_aspect, n: int, gen: torch.Generator) -> tuple[int, int]:
    u = torch.rand(2, generator=gen).tolist()
    scale = bounds_scale[0] + u[0] * (bounds_scale[1] - bounds_scale[0])
    aspect = bounds_aspect[0] + u[1] * (bounds_aspect[1] - bounds_aspect[0])
    return _snap(shapes, scale, aspect, n)


def block_masks(batch: int, grid: tuple[int, int], shape: tuple[int, int], count: int,
                gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """`count` blocks of `shape` per image at uniform positions: (B, count, H, W) bool and tops/lefts."""
    rows, cols = grid
    h, w = shape
    top = torch.randint(0, rows - h + 1, (batch, count), generator=gen)
    left = torch.randint(0, cols - w + 1, (batch, count), generator=gen)
    r = torch.arange(rows).view(1, 1, rows, 1)
    c = torch.arange(cols).view(1, 1, 1, cols)
    t, l = top[..., None, None], left[..., None, None]
    mask = (r >= t) & (r < t + h) & (c >= l) & (c < l + w)
    return mask, torch.stack([top, left], dim=-1)


def random_subset(mask: torch.Tensor, k: int, gen: torch.Generator) -> torch.Tensor:
    """Sorted indices of k uniformly chosen True entries per row of a (B, N) mask (needs >= k each)."""
    scores = torch.rand(mask.shape, generator=gen)
    scores = torch.where(mask, scores, torch.full_like(scores, 2.0))  # unmasked entries sort last
    idx = scores.argsort(dim=1)[:, :k]
    return idx.sort(dim=1).values


def sample_masks(cfg: MaskConfig, batch: int, grid: tuple[int, int], gen: torch.Generator) -> Masks:
    rows, cols = grid
    n = rows * cols
    target_shapes = valid_shapes(grid, cfg.target_scale, cfg.target_aspect)
    contexts = context_shapes(grid, cfg.context_scale)
    if not target_shapes or not contexts:
        check_feasible(cfg, grid)  # raises with the explanation

    th, tw = draw_shape(target_shapes, cfg.target_scale, cfg.target_aspect, n, gen)
    ch, cw = draw_shape(contexts, cfg.context_scale, (1.0, 1.0), n, gen)

    target_mask, target_pos = block_masks(batch, grid, (th, tw), cfg.num_targets, gen)
    context_mask, _ = block_masks(batch, grid, (ch, cw), 1, gen)
    context_mask = context_mask[:, 0] & ~target_mask.any(dim=1)

    flat_targets = target_mask.flatten(2)  # (B, M, N), exactly th*tw True per block
    targets = flat_targets.nonzero()[:, 2].view(batch, cfg.num_targets, th * tw)

    counts = context_mask.flatten(1).sum(dim=1)
    keep = int(counts.min())
    if keep < cfg.min_context:
        raise PipelineError(f"masks: a context kept only {keep} patches (min_context={cfg.min_context}); "
                            f"this should be prevented by check_feasible, please report it")
    context = random_subset(context_mask.flatten(1), keep, gen)

    # Centres in continuous patch coordinates: the grid spans [0, rows] x [0, cols].
    centers = target_pos.float() + torch.tensor([th / 2, tw / 2])
    return Masks(context=context, targets=targets, target_centers=centers,
                 context_kept=float((keep / counts.float()).mean()))
