"""The mathematics the methods share, as plain functions on tensors (no modules, no state):

    jepa_targets, prediction_loss     JEPA's regression targets and loss
    ema_update_                       the target encoder's EMA
    group_penalty, prox_threshold,    SparseJEPA's group lasso over latent-to-group columns and its exact
    group_soft_threshold,             proximal step
    proximal_sgd_step_
    gaussian_kl, reparameterise       the KL term of stochastic latents and their sampling
    fixed_slice                       the training images every end-of-run measurement looks at

The methods in pipeline/methods/ compose these; tests check each on tiny tensors.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


# -- JEPA ------------------------------------------------------------------------------------------

def jepa_targets(tokens: torch.Tensor, norm: str) -> torch.Tensor:
    """The regression targets from the target encoder's tokens (B, N, D): layer-normed per token without
    affine parameters (I-JEPA, `layer`); `center` then subtracts their mean over the batch at each position,
    so the part of a target its position alone predicts (the positional shortcut) is not rewarded;
    `standardize` also divides by the batch's std there (per position and channel, as data2vec's
    instance norm does per channel). Under DDP the statistics are over this process's rows of the batch."""
    out = F.layer_norm(tokens, tokens.shape[-1:])
    if norm in ("center", "standardize"):
        out = out - out.mean(dim=0, keepdim=True)
    if norm == "standardize":
        out = out / out.std(dim=0, keepdim=True).clamp_min(1e-4)
    return out


def prediction_loss(pred: torch.Tensor, targets: torch.Tensor, kind: str) -> torch.Tensor:
    """smooth_l1 (I-JEPA's code, beta 1) or l2 (the paper's text), averaged over every element."""
    if kind == "smooth_l1":
        return F.smooth_l1_loss(pred, targets, beta=1.0)
    return F.mse_loss(pred, targets)


@torch.no_grad()
def ema_update_(target: nn.Module, online: nn.Module, momentum: float) -> None:
    """target <- momentum * target + (1 - momentum) * online, parameter by parameter."""
    t = [p for p in target.parameters()]
    o = [p.detach() for p in online.parameters()]
    torch._foreach_lerp_(t, o, 1.0 - momentum)


# -- group lasso on latent-to-group columns (weight: G groups x P outputs x K latents) ---------------

def group_penalty(weight: torch.Tensor, lam: float) -> torch.Tensor:
    """lambda * mean over (g, j) of ||W^(g)[:, j]||_2, for weight (G, P, K)."""
    return lam * weight.norm(dim=1).mean()


def group_soft_threshold(weight: torch.Tensor, threshold: torch.Tensor | float) -> torch.Tensor:
    """Proximal operator of the column group lasso: w_j * max(0, 1 - t_j / ||w_j||).

    weight (G, P, K); threshold a scalar or (G, K). A column whose norm is at most its threshold
    becomes exactly zero; any other keeps its direction and loses exactly t_j of its norm.
    """
    norms = weight.norm(dim=1, keepdim=True).clamp_min(torch.finfo(weight.dtype).tiny)
    # A float threshold stays a Python scalar: a tensor made from it would be a host-to-device copy.
    t = threshold[:, None, :] if isinstance(threshold, torch.Tensor) and threshold.dim() == 2 else threshold
    scale = torch.clamp(1 - t / norms, min=0)
    return weight * scale


def prox_threshold(weight: torch.Tensor, step: float, lam: float) -> float:
    """The proximal threshold of `group_penalty` for a gradient step of size `step`: step * lambda / (G*K)
    (the penalty's weight on each column's norm times the step)."""
    return step * lam / (weight.shape[0] * weight.shape[2])


@torch.no_grad()
def proximal_sgd_step_(weight: torch.Tensor, grad_avg: torch.Tensor, step: float, lam: float, momentum: float) -> None:
    """One proximal step on `weight` along the running mean of its gradients, then clear the gradient.

    grad_avg <- momentum * grad_avg + (1 - momentum) * grad (an average, not heavy-ball's sum, so a zero
    column stays zero exactly while its averaged JEPA gradient is below the threshold's lambda / (G*K),
    the stationarity condition of L; one batch's noise alone does not revive it).
    """
    if weight.grad is not None:
        grad_avg.lerp_(weight.grad, 1 - momentum)
        weight.grad = None
    weight.add_(grad_avg, alpha=-step)
    if lam > 0:
        weight.copy_(group_soft_threshold(weight, prox_threshold(weight, step, lam)))


def column_ratios(grad_avg: torch.Tensor, support: torch.Tensor, threshold: float) -> tuple[float, float]:
    """(mean over live columns, max over zero columns) of the averaged gradient's column norm / threshold; NaN
    where there is no such column, and both NaN at threshold 0 (lambda 0: no rule to check). grad_avg (G, P, K),
    support (G, K) booleans."""
    if threshold <= 0:
        return float("nan"), float("nan")
    norms = grad_avg.norm(dim=1) / threshold
    live = float(norms[support].mean()) if bool(support.any()) else float("nan")
    dead = float(norms[~support].max()) if bool((~support).any()) else float("nan")
    return live, dead


@torch.no_grad()
def fold_grad_into_mean_(weight: torch.Tensor, grad_mean: torch.Tensor, t: int | torch.Tensor) -> None:
    """grad_mean <- the mean of t gradients, from the mean of the first t - 1 and `weight.grad` (none counts as
    0), then clear the gradient. Weight 1 at t = 1, so the mean restarts there. t may be a 0-dim tensor."""
    grad = weight.grad if weight.grad is not None else torch.zeros_like(weight)
    share = (1.0 / t).to(grad_mean.dtype) if isinstance(t, torch.Tensor) else 1.0 / t
    grad_mean.lerp_(grad, share)
    weight.grad = None


@torch.no_grad()
def dual_averaging_step_(weight: torch.Tensor, grad_mean: torch.Tensor, anchor: torch.Tensor,
                         t: int | torch.Tensor, step: float, lam: float | torch.Tensor, power: float = 1.0) -> None:
    """Group-lasso regularised dual averaging (Xiao 2010) after t gradients whose mean is `grad_mean`:

        weight <- the column soft threshold of anchor - a * grad_mean at a * lambda / (G*K),  a = step * t ** power.

    A column is zero iff ||anchor_j / a - grad_mean_j|| <= lambda / (G*K): as a grows, the group lasso's selection
    rule read on the mean of every gradient so far rather than on one step's (proximal SGD's, whose zero columns
    forget their history, so a batch or two of noise revives them). A zero column of the anchor stays zero exactly
    while its mean gradient is under the threshold. t and lam may be 0-dim tensors (no host sync on a device)."""
    a = step * t ** power
    weight.copy_(group_soft_threshold(anchor - a * grad_mean, prox_threshold(weight, a, lam)))


# -- stochastic latents -----------------------------------------------------------------------------

def reparameterise(mean: torch.Tensor, logvar: torch.Tensor, gen: torch.Generator | None,
                   shard: tuple[int, int] = (0, 1)) -> torch.Tensor:
    """mean + sigma * noise; with shard (rank, processes), the noise is this rank's rows of the global
    batch's noise, so several processes draw what one process would."""
    rank, processes = shard
    rows = mean.shape[0]
    noise = torch.randn((rows * processes, *mean.shape[1:]), generator=gen, device=mean.device, dtype=mean.dtype)
    return mean + (0.5 * logvar).exp() * noise[rank * rows:(rank + 1) * rows]


def gaussian_kl(mean: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL(N(mean, exp(logvar)) || N(0, 1)), averaged over every token and dimension."""
    return 0.5 * (mean.pow(2) + logvar.exp() - 1 - logvar).mean()


# -- measurement ------------------------------------------------------------------------------------

FIXED_SLICE_SEED = 12345


def fixed_slice(n: int, count: int) -> torch.Tensor:
    """`count` (at most n) indices of a dataset of n images, the same for every method, seed and run: the
    images the monitor and a method's end-of-run outputs are measured on."""
    return torch.randperm(n, generator=torch.Generator().manual_seed(FIXED_SLICE_SEED))[:count]
