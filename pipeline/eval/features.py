"""Frozen-encoder features: average-pooled patch tokens, computed once per (model, dataset)."""
from __future__ import annotations

import numpy as np
import torch

from pipeline.core.errors import PipelineError
from pipeline.model.vit import Encoder, normalize
from pipeline.runtime.progress import StepProgress


@torch.no_grad()
def pooled_features(encoder: Encoder, images: torch.Tensor | np.ndarray, batch_size: int, layers: int = 1,
                    device: torch.device | str = "cpu", label: str = "features") -> torch.Tensor:
    """uint8 (N, H, W, 3) -> float32 (N, layers * D): the mean over patch tokens of the last `layers` blocks.

    `images` may be a memory-mapped array: only one batch of it is in memory at a time.
    """
    if images.shape[1] != encoder.image_size or images.shape[2] != encoder.image_size:
        raise PipelineError(f"images are {images.shape[1]}x{images.shape[2]} but the encoder was pretrained at "
                            f"{encoder.image_size}px; prepare the dataset with data.image_size={encoder.image_size}")
    if layers > len(encoder.blocks):
        raise PipelineError(f"extract.layers={layers} exceeds the encoder's depth {len(encoder.blocks)}; lower it")
    device = torch.device(device)
    encoder = encoder.to(device)
    out = torch.empty(len(images), layers * encoder.width)
    with StepProgress(label, len(images)) as bar:
        for start in range(0, len(images), batch_size):
            batch = images[start:start + batch_size]
            if isinstance(batch, np.ndarray):
                batch = torch.from_numpy(np.array(batch))  # a copy: a read-only memmap slice cannot back a tensor
            x = normalize(batch.to(device))
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda"):
                tokens = encoder.layer_outputs(x, layers)
            pooled = torch.cat([t.float().mean(dim=1) for t in tokens], dim=1)
            out[start:start + len(x)] = pooled.cpu()
            bar.update(min(start + batch_size, len(images)))
    if not torch.isfinite(out).all():
        raise PipelineError(f"{label}: the encoder produced NaN or infinite features; its pretraining diverged "
                            f"(see reports/pretrain), so re-run pretraining with a lower pretrain.lr")
    return out
