"""Cheap signals of representation quality, for watching pretraining and comparing models.

The JEPA loss alone can fall while features collapse; these catch that.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F


def feature_std(features: torch.Tensor) -> float:
    """Mean over dimensions of the per-dimension standard deviation; near 0 means collapse."""
    return float(features.float().std(dim=0).mean())


def effective_rank(features: torch.Tensor) -> float:
    """exp(entropy) of the normalised singular values of the centred features (Roy & Vetterli)."""
    x = features.double() - features.double().mean(dim=0)
    s = torch.linalg.svdvals(x)
    p = s / s.sum().clamp_min(1e-12)
    p = p[p > 0]
    return float(torch.exp(-(p * p.log()).sum()))


def multi_information(features: torch.Tensor, eps: float = 1e-6) -> float:
    """Gaussian estimate of total correlation, in nats: 0.5 * (sum_j log var_j - log det Cov).

    On standardised features that is -0.5 * log det(Corr). Constant dimensions are dropped;
    eps keeps near-singular correlations finite.
    """
    x = features.double()
    x = x[:, x.std(dim=0) > 0]
    x = (x - x.mean(dim=0)) / x.std(dim=0)
    corr = (x.T @ x) / (x.shape[0] - 1)
    corr = corr + eps * torch.eye(corr.shape[0], dtype=corr.dtype)
    return float(-0.5 * torch.linalg.slogdet(corr).logabsdet)


def ridge_accuracy(train_x: torch.Tensor, train_y: torch.Tensor, test_x: torch.Tensor,
                   test_y: torch.Tensor, num_classes: int, alpha: float = 1.0) -> float:
    """Top-1 (%) of a closed-form ridge classifier on standardised features: a fast online probe."""
    mean, std = train_x.mean(dim=0), train_x.std(dim=0).clamp_min(1e-6)
    a = torch.cat([(train_x - mean) / std, torch.ones(len(train_x), 1)], dim=1).double()
    b = torch.nn.functional.one_hot(train_y, num_classes).double()
    w = torch.linalg.solve(a.T @ a + alpha * torch.eye(a.shape[1], dtype=a.dtype), a.T @ b)
    t = torch.cat([(test_x - mean) / std, torch.ones(len(test_x), 1)], dim=1).double()
    return float(((t @ w).argmax(dim=1) == test_y).float().mean() * 100)



def position_share(tokens: torch.Tensor) -> float:
    """Share of the variance of tokens (images, positions, dims) that their position alone explains:
    1 - sum ||t_ip - mean_i t_ip||^2 / sum ||t_ip - mean_ip t_ip||^2. Near 1: a predictor that knows
    only where a target is can already predict it (JEPA's positional shortcut)."""
    t = tokens.double()
    within = (t - t.mean(dim=0, keepdim=True)).pow(2).sum()
    total = (t - t.mean(dim=(0, 1), keepdim=True)).pow(2).sum()
    return float(1 - within / total.clamp_min(1e-300))


def position_loss(tokens: torch.Tensor, loss: str) -> float:
    """The JEPA loss of the predictor that outputs, for every target token, the mean token at its
    position: what a model that ignores the context entirely can reach."""
    t = tokens.float()
    mean = t.mean(dim=0, keepdim=True).expand_as(t)
    return float(F.smooth_l1_loss(mean, t, beta=1.0) if loss == "smooth_l1" else F.mse_loss(mean, t))
