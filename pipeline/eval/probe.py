"""Linear probes on cached features, with learning rate and weight decay chosen on validation.

Every (lr, weight decay) pair of the grid trains at once: the heads are stacked into one
(C, D, K) tensor and stepped by a vectorised AdamW with a per-head lr and decay, so the grid
costs one pass over the data instead of C.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from itertools import product

import torch
import torch.nn.functional as F

from pipeline.core.errors import PipelineError
from pipeline.core.params import ProbeConfig


@dataclass(frozen=True)
class ProbeResult:
    top1: float  # % on the official test split
    val_top1: float  # % on the held-out part of train, for the chosen lr / weight decay
    lr: float
    weight_decay: float
    n_train: int
    n_val: int
    n_test: int
    num_classes: int
    feature_dim: int
    grid: list[dict]  # every candidate's validation top-1

    def to_dict(self) -> dict:
        return asdict(self)


def split_train_val(n: int, val_fraction: float, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    n_val = max(1, round(n * val_fraction))
    return perm[n_val:], perm[:n_val]


class Standardizer:
    """Per-dimension mean/std from the fitting set only (BatchNorm without affine, frozen)."""

    def __init__(self, x: torch.Tensor, enabled: bool = True):
        self.mean = x.mean(dim=0) if enabled else torch.zeros(x.shape[1], device=x.device)
        self.std = x.std(dim=0).clamp_min(1e-6) if enabled else torch.ones(x.shape[1], device=x.device)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean) / self.std


def train_heads(x: torch.Tensor, y: torch.Tensor, num_classes: int, lrs: list[float], wds: list[float],
                epochs: int, batch_size: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Train C linear heads (C = len(lrs) = len(wds)) with AdamW and a cosine lr; returns W (C,D,K), b (C,K).

    Runs on x's device; the data order comes from a host generator, so it is the same on any device.
    """
    c, d, device = len(lrs), x.shape[1], x.device
    gen = torch.Generator().manual_seed(seed)
    w = torch.zeros(c, d, num_classes, requires_grad=True, device=device)
    b = torch.zeros(c, num_classes, requires_grad=True, device=device)
    lr = torch.tensor(lrs, device=device).view(c, 1, 1)
    wd = torch.tensor(wds, device=device).view(c, 1, 1)
    moments = {id(p): (torch.zeros_like(p), torch.zeros_like(p)) for p in (w, b)}
    beta1, beta2, eps = 0.9, 0.999, 1e-8
    steps_per_epoch = math.ceil(len(x) / batch_size)
    total = epochs * steps_per_epoch
    step = 0
    for _ in range(epochs):
        perm = torch.randperm(len(x), generator=gen).to(device)
        for start in range(0, len(x), batch_size):
            idx = perm[start:start + batch_size]
            logits = torch.einsum("nd,cdk->cnk", x[idx], w) + b[:, None, :]
            # Sum over heads: each head's gradient is its own mean cross-entropy's.
            loss = F.cross_entropy(logits.reshape(-1, num_classes), y[idx].repeat(c), reduction="sum") / len(idx)
            gw, gb = torch.autograd.grad(loss, (w, b))
            step += 1
            scale = 0.5 * (1 + math.cos(math.pi * (step - 1) / total))
            with torch.no_grad():
                for p, g, rate, decay in ((w, gw, lr, wd), (b, gb, lr.view(c, 1), None)):
                    m, v = moments[id(p)]
                    m.mul_(beta1).add_(g, alpha=1 - beta1)
                    v.mul_(beta2).addcmul_(g, g, value=1 - beta2)
                    update = (m / (1 - beta1 ** step)) / ((v / (1 - beta2 ** step)).sqrt() + eps)
                    if decay is not None:
                        update = update + decay * p  # decoupled decay on weights, not biases
                    p.sub_(rate * scale * update)
    return w.detach(), b.detach()


def accuracy(w: torch.Tensor, b: torch.Tensor, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Top-1 (%) of each of the C heads: (C,)."""
    logits = torch.einsum("nd,cdk->cnk", x, w) + b[:, None, :]
    return (logits.argmax(dim=-1) == y[None]).float().mean(dim=1) * 100


def run_probe(train_x: torch.Tensor, train_y: torch.Tensor, test_x: torch.Tensor, test_y: torch.Tensor,
              num_classes: int, cfg: ProbeConfig, seed: int, device: torch.device | str = "cpu") -> ProbeResult:
    """Choose (lr, wd) on a validation split of train, refit on all of train, score on test (on `device`)."""
    for name, x in (("train", train_x), ("test", test_x)):
        if not torch.isfinite(x).all():
            raise PipelineError(f"probe: {name} features contain NaN or infinity; re-extract them "
                                f"(`dvc repro -f extract`) or check the encoder's pretraining")
    if len(train_x) < 2 or len(test_x) < 1:
        raise PipelineError(f"probe: need at least 2 train and 1 test feature rows, got {len(train_x)} and "
                            f"{len(test_x)}; check the dataset subset params")
    train_x, test_x = train_x.float().to(device), test_x.float().to(device)
    train_y, test_y = train_y.to(device), test_y.to(device)
    fit_idx, val_idx = (i.to(device) for i in split_train_val(len(train_x), cfg.val_fraction, seed))
    grid = list(product(cfg.lrs, cfg.weight_decays))
    scale = Standardizer(train_x[fit_idx], cfg.standardize)
    w, b = train_heads(scale(train_x[fit_idx]), train_y[fit_idx], num_classes, [g[0] for g in grid],
                       [g[1] for g in grid], cfg.epochs, cfg.batch_size, seed)
    val_acc = accuracy(w, b, scale(train_x[val_idx]), train_y[val_idx])
    best = int(val_acc.argmax())  # ties: the first, i.e. the smallest lr, then the smallest decay
    lr, wd = grid[best]

    scale = Standardizer(train_x, cfg.standardize)
    w, b = train_heads(scale(train_x), train_y, num_classes, [lr], [wd], cfg.epochs, cfg.batch_size, seed)
    top1 = float(accuracy(w, b, scale(test_x), test_y)[0])
    return ProbeResult(top1=top1, val_top1=float(val_acc[best]), lr=lr, weight_decay=wd,
                       n_train=len(fit_idx), n_val=len(val_idx), n_test=len(test_x), num_classes=num_classes,
                       feature_dim=train_x.shape[1],
                       grid=[{"lr": g[0], "weight_decay": g[1], "val_top1": float(a)} for g, a in zip(grid, val_acc)])
