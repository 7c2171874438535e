"""Pretraining augmentation: uint8 NHWC arrays in, normalised float NCHW crops out.

Augmentation is batched tensor work on the images' device (one affine resample per batch: a
RandomResizedCrop and an optional horizontal flip), not per-image Python.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from pipeline.model.vit import normalize


def crop_boxes(batch: int, size: tuple[int, int], scale: tuple[float, float], gen: torch.Generator,
               ratio: tuple[float, float] = (3 / 4, 4 / 3)) -> torch.Tensor:
    """RandomResizedCrop boxes (B, 4) as (top, left, height, width) in pixels, fractional.

    Area is uniform in `scale`, aspect log-uniform in `ratio`, as torchvision. Where torchvision
    retries a box that does not fit, the box is clamped to the image instead (no loop).
    """
    height, width = size
    u = torch.rand(batch, 4, generator=gen, dtype=torch.float64)
    area = height * width * (scale[0] + (scale[1] - scale[0]) * u[:, 0])
    log_r = math.log(ratio[0]) + (math.log(ratio[1]) - math.log(ratio[0])) * u[:, 1]
    w = torch.sqrt(area * log_r.exp()).clamp(max=width)
    h = torch.sqrt(area / log_r.exp()).clamp(max=height)
    top = (height - h) * u[:, 2]
    left = (width - w) * u[:, 3]
    return torch.stack([top, left, h, w], dim=1).float()


def resized_crop(images: torch.Tensor, boxes: torch.Tensor, flip: torch.Tensor | None = None) -> torch.Tensor:
    """Crop each float image (B, C, H, W) to its box and resize back to H x W (bilinear).

    `boxes` (B, 4) and `flip` (B,) bool, mirror the crop left-right, are on the images' device. The
    flip is a negative horizontal scale in the same affine resample, so it costs nothing extra.
    """
    batch, _, height, width = images.shape
    top, left, h, w = boxes.unbind(1)
    theta = torch.zeros(batch, 2, 3, device=images.device)
    theta[:, 0, 0] = w / width if flip is None else (w / width) * (1 - 2 * flip.float())
    theta[:, 0, 2] = (2 * left + w) / width - 1
    theta[:, 1, 1] = h / height
    theta[:, 1, 2] = (2 * top + h) / height - 1
    grid = F.affine_grid(theta, list(images.shape), align_corners=False)
    return F.grid_sample(images, grid, mode="bilinear", padding_mode="border", align_corners=False)


def draw_augment(batch: int, size: tuple[int, int], scale: tuple[float, float], gen: torch.Generator,
                 hflip: bool = False) -> tuple[torch.Tensor, torch.Tensor | None]:
    """A batch's random crop boxes (B, 4) and, with `hflip`, flips (B,) bool, drawn on the host from `gen`.

    Host draws keep a run reproducible on any device and let several processes draw one global
    batch's augmentation identically and each keep its rows.
    """
    boxes = crop_boxes(batch, size, scale, gen)
    return boxes, (torch.rand(batch, generator=gen) < 0.5 if hflip else None)


def apply_augment(images: torch.Tensor, boxes: torch.Tensor, flip: torch.Tensor | None = None) -> torch.Tensor:
    """uint8 (B, H, W, 3) -> normalised, resized-cropped (and flipped) float (B, 3, H, W), all on the images' device."""
    return resized_crop(normalize(images), boxes, flip)
