"""Watching an encoder during pretraining: collapse signals and an online probe on a slice of the training set."""
from __future__ import annotations

import torch

from pipeline.eval.monitor import effective_rank, feature_std, ridge_accuracy
from pipeline.model.vit import Encoder, normalize

MONITOR_IMAGES = 2000  # half fit, half scored by the online ridge probe


@torch.no_grad()
def encoder_signals(encoder: Encoder, images: torch.Tensor, labels: torch.Tensor, num_classes: int) -> dict[str, float]:
    """Online ridge probe, feature std and effective rank of an encoder's pooled features, on a fixed
    slice of `images` (uint8 NHWC, on the encoder's device). Leaves the encoder in eval mode."""
    n = min(MONITOR_IMAGES, len(images))
    idx = torch.randperm(len(images), generator=torch.Generator().manual_seed(12345))[:n]
    encoder = encoder.eval()
    device = images.device
    feats = []
    for chunk in idx.split(512):
        x = normalize(images[chunk.to(device)])
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda"):
            feats.append(encoder(x).float().mean(dim=1).cpu())
    feats = torch.cat(feats)
    labels = labels[idx]
    half = n // 2
    return {"online_top1": ridge_accuracy(feats[:half], labels[:half], feats[half:], labels[half:], num_classes),
            "feature_std": feature_std(feats), "effective_rank": effective_rank(feats)}
