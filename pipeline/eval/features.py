"""Frozen-encoder features: pooled patch tokens, computed once per (model, dataset); and the pixels the
controls every table carries are made of.

Pooling (`extract.pooling`): `mean` over every patch token (the paper's protocol), `spatial_2x2` the
mean over each quarter of the patch grid (4 x D), or `tokens`, every token concatenated (N x D).
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from pipeline.artifacts.encoder import damaged, read_encoder
from pipeline.config.model import ModelConfig
from pipeline.core.errors import PipelineError
from pipeline.core.hardware import autocast
from pipeline.model.vit import Encoder, normalize
from pipeline.runtime.progress import StepProgress


def load_encoder(path) -> tuple[Encoder, dict]:
    """The frozen encoder the pretrain stage saved at `path` (eval mode, no gradients), and its params."""
    saved = read_encoder(path)
    try:
        encoder = Encoder(ModelConfig(**saved["model"]), saved["image_size"])
        encoder.load_state_dict(saved["state_dict"])
    except Exception as e:
        raise damaged(path, e) from None
    return encoder.eval().requires_grad_(False), saved.get("params", {})


POOLED_TOKENS = {"mean": lambda n: 1, "spatial_2x2": lambda n: 4, "tokens": lambda n: n}


def feature_width(model: ModelConfig, image_size: int, layers: int, pooling: str) -> int:
    """The width of an encoder's pooled features (what `pooled_features` returns per image)."""
    patches = (image_size // model.patch_size) ** 2
    return layers * POOLED_TOKENS[pooling](patches) * model.width


def pool_tokens(tokens: torch.Tensor, grid: tuple[int, int], pooling: str) -> torch.Tensor:
    """tokens (B, N, D) on a rows x cols patch grid -> (B, F) features."""
    if pooling == "mean":
        return tokens.mean(dim=1)
    if pooling == "spatial_2x2":
        batch, _, dim = tokens.shape
        maps = tokens.transpose(1, 2).reshape(batch, dim, *grid)
        # Adaptive: an odd grid's middle row and column count towards both halves.
        return F.adaptive_avg_pool2d(maps, 2).flatten(1)
    if pooling == "tokens":
        return tokens.flatten(1)
    raise PipelineError(f"extract.pooling '{pooling}' is unknown; use one of {', '.join(POOLED_TOKENS)}")


@torch.no_grad()
def pooled_features(encoder: Encoder, images: torch.Tensor | np.ndarray, batch_size: int, layers: int, pooling: str,
                    device: torch.device | str = "cpu", label: str = "features") -> torch.Tensor:
    """uint8 (N, H, W, 3) -> float32 (N, layers * P * D): the pooled patch tokens of the last `layers` blocks
    (P = 1 for `mean`, 4 for `spatial_2x2`, the number of patches for `tokens`).

    `images` may be a memory-mapped array: only one batch of it is in memory at a time.
    """
    if images.shape[1] != encoder.image_size or images.shape[2] != encoder.image_size:
        raise PipelineError(f"images are {images.shape[1]}x{images.shape[2]} but the encoder was pretrained at "
                            f"{encoder.image_size}px; prepare the dataset with data.image_size={encoder.image_size}")
    if layers > len(encoder.blocks):
        raise PipelineError(f"extract.layers={layers} exceeds the encoder's depth {len(encoder.blocks)}; lower it")
    device = torch.device(device)
    encoder = encoder.to(device)
    out = torch.empty(len(images), layers * POOLED_TOKENS[pooling](encoder.num_patches) * encoder.width)
    with StepProgress(label, len(images)) as bar:
        for start in range(0, len(images), batch_size):
            batch = images[start:start + batch_size]
            if isinstance(batch, np.ndarray):
                batch = torch.from_numpy(np.array(batch))  # a copy: a read-only memmap slice cannot back a tensor
            x = normalize(batch.to(device))
            with autocast(device):
                tokens = encoder.layer_outputs(x, layers)
            pooled = torch.cat([pool_tokens(t.float(), encoder.grid, pooling) for t in tokens], dim=1)
            out[start:start + len(x)] = pooled.cpu()
            bar.update(min(start + batch_size, len(images)))
    if not torch.isfinite(out).all():
        raise PipelineError(f"{label}: the encoder produced NaN or infinite features; its pretraining diverged "
                            f"(see reports/pretrain), so re-run pretraining with a lower pretrain.lr")
    return out


def is_grey(images: np.ndarray, batch: int = 4096) -> bool:
    """Whether every image has three equal channels (grey datasets are stored that way)."""
    for start in range(0, len(images), batch):
        part = np.asarray(images[start:start + batch])
        if not ((part[..., 0] == part[..., 1]).all() and (part[..., 1] == part[..., 2]).all()):
            return False
    return True


def pixel_features(images: np.ndarray, grey: bool) -> torch.Tensor:
    """uint8 (N, H, W, 3) -> float32 (N, H*W*C) in [0, 1], C = 1 for a grey set: its three channels are
    copies, and copies would only triple the probe's cost (and split its penalty over three weights)."""
    x = np.asarray(images[..., :1] if grey else images)
    return torch.from_numpy(x.reshape(len(x), -1).astype(np.float32) / 255)
