"""What the mask sampler can actually draw on each patch grid: the README's *Masks* table.

    python -m pipeline.bench.masks          # prints the table, writes reports/benchmarks/masks.md

For the `masks` block of params.yaml and each (image size, patch size) in GRIDS, it lists the integer target
and context block shapes the bounds admit (`valid_shapes`, the sampler's own list), and samples BATCHES
batches of BATCH images with the real sampler to measure how many context patches survive the targets and the
truncation to the batch minimum. A grid whose bounds admit one target shape and one context shape gives the
model one task: the same block sizes every step, only their positions move. tests/test_mask_tasks.py checks
that the committed table is what this code says for the committed params.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from pipeline.config.masks import MaskConfig
from pipeline.config.params import load_params
from pipeline.core.atomic import atomic_path
from pipeline.pretrain.masks import context_shapes, sample_masks, valid_shapes
from pipeline.runtime.cli import run_stage

GRIDS = ((28, 4), (32, 4), (28, 2), (32, 2))  # (image px, patch px): the quick setting's, the paper's, finer patches
BATCHES, BATCH = 200, 128
OUT = Path("reports/benchmarks/masks.md")


@dataclass(frozen=True)
class MaskTasks:
    image: int
    patch: int
    targets: tuple[tuple[int, int], ...]  # the (h, w) target blocks the bounds admit
    contexts: tuple[tuple[int, int], ...]  # the context blocks (square where the grid allows)
    context_mean: float  # patches the context encoder sees per image, after truncation to the batch minimum
    context_min: int
    context_max: int
    target_cover: float  # mean share of the grid inside at least one target block

    @property
    def grid(self) -> int:
        return self.image // self.patch


def mask_tasks(cfg: MaskConfig, image: int, patch: int, seed: int = 0) -> MaskTasks:
    grid = (image // patch, image // patch)
    gen = torch.Generator().manual_seed(seed)
    kept, cover = [], []
    for _ in range(BATCHES):
        m = sample_masks(cfg, BATCH, grid, gen)
        kept.append(m.context.shape[1])
        covered = torch.zeros(BATCH, grid[0] * grid[1], dtype=torch.bool)
        covered.scatter_(1, m.targets.flatten(1), True)
        cover.append(covered.float().mean().item())
    contexts = context_shapes(grid, cfg.context_scale)
    return MaskTasks(image, patch, valid_shapes(grid, cfg.target_scale, cfg.target_aspect), contexts,
                     sum(kept) / len(kept), min(kept), max(kept), sum(cover) / len(cover))


def _shapes(shapes: tuple[tuple[int, int], ...]) -> str:
    return ", ".join(f"{h}x{w}" for h, w in shapes)


def table_md(cfg: MaskConfig, rows: list[MaskTasks]) -> str:
    lines = [
        f"Masks as params.yaml sets them ({cfg.num_targets} targets, scale {list(cfg.target_scale)}, aspect "
        f"{list(cfg.target_aspect)}; square context, scale {list(cfg.context_scale)}): the block shapes the sampler "
        f"can draw, and the context patches seen per image over {BATCHES} sampled batches of {BATCH} "
        f"(`python -m pipeline.bench.masks`).",
        "",
        "| image | patch | grid | target shapes | context shapes | block-size pairs | "
        "context patches seen (mean, min-max) | grid inside a target |",
        "| ---: | ---: | --- | --- | --- | ---: | --- | ---: |",
    ]
    for r in rows:
        n = r.grid ** 2
        lines.append(f"| {r.image} px | {r.patch} | {r.grid}x{r.grid} ({n}) | {_shapes(r.targets)} | "
                     f"{_shapes(r.contexts)} | {len(r.targets) * len(r.contexts)} | "
                     f"{r.context_mean:.1f} of {n} ({r.context_min}-{r.context_max}) | "
                     f"{100 * r.target_cover:.0f}% |")
    return "\n".join(lines) + "\n"


def render(cfg: MaskConfig) -> str:
    return table_md(cfg, [mask_tasks(cfg, image, patch) for image, patch in GRIDS])


def main(argv: list[str]) -> None:
    text = render(load_params(["masks"]).masks)
    print(text)
    OUT.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(OUT) as tmp:
        tmp.write_text(text)
    print(f"wrote {OUT}")


if __name__ == "__main__":
    run_stage(main)
