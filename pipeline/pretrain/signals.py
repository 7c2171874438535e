"""Watching an encoder during pretraining: collapse signals and an online probe on a slice of the training set."""
from __future__ import annotations

import torch
import torch.nn.functional as F

from pipeline.core.hardware import autocast
from pipeline.eval.monitor import effective_rank, feature_std, position_loss, position_share, ridge_accuracy
from pipeline.model.functional import fixed_slice
from pipeline.model.vit import Encoder, normalize

MONITOR_IMAGES = 2000  # half fit, half scored by the online ridge probe


@torch.no_grad()
def encoder_signals(encoder: Encoder, images: torch.Tensor, labels: torch.Tensor, num_classes: int,
                    loss: str | None = None) -> dict[str, float]:
    """On a fixed slice of `images` (uint8 NHWC, on the encoder's device): an online ridge probe, the
    feature std and effective rank of the pooled features, and the positional-shortcut diagnostic of its
    layer-normed tokens (the JEPA targets): the share of their variance that position explains and, with
    the training `loss`, the loss of the per-position-mean predictor. Leaves the encoder in eval mode."""
    n = min(MONITOR_IMAGES, len(images))
    idx = fixed_slice(len(images), n)
    encoder = encoder.eval()
    device = images.device
    feats, targets = [], []
    for chunk in idx.split(512):
        x = normalize(images[chunk.to(device)])
        with autocast(device):
            tokens = encoder(x).float()
        feats.append(tokens.mean(dim=1).cpu())
        targets.append(F.layer_norm(tokens, tokens.shape[-1:]).cpu())
    feats, targets = torch.cat(feats), torch.cat(targets)
    labels = labels[idx]
    half = n // 2
    signals = {"online_top1": ridge_accuracy(feats[:half], labels[:half], feats[half:], labels[half:], num_classes),
               "feature_std": feature_std(feats), "effective_rank": effective_rank(feats),
               "position_share": position_share(targets)}
    if loss is not None:
        signals["position_loss"] = position_loss(targets, loss)
    return signals
