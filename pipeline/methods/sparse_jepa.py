"""SparseJEPA: JEPA plus latent-to-group maps, their group-lasso proximal step, and the KL term.

    L = L_jepa + lambda * mean_{g,j} ||W^(g)[:, j]||_2 + beta * KL(q(z|x) || N(0, I))

W^(g) (predictor width p x latent width K) embeds the context latents z when the predictor
predicts a target block in region g. The penalty is a mean over the G*K columns, not oi-VAE's
sum, so that its value is a minor share of the JEPA loss whatever the width or group count (11%
at the start of the quick setting's run at lambda 0.3).

The penalty is never backpropagated; after each AdamW step the proximal step shrinks every
column by t = lr * lambda * sqrt(p) and sets it exactly to zero when its norm is below t.
oi-VAE uses t = lr * lambda with W on plain SGD; here W is on AdamW, which moves a column by
about lr * sqrt(p) * c per step, c in [0, 1] being how consistently its gradient points one way.
In those units a column survives only while c > lambda: lambda is the gradient consistency a
latent-to-group link needs to be kept, independent of the loss's scale.
"""
from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn

from pipeline.config.sparsity import SparsityConfig
from pipeline.core.params import Params
from pipeline.model.jepa import JEPA
from pipeline.model.regions import region_of


class GroupedEmbed(nn.Module):
    """The predictor's input map, one matrix per group: z (B, Nc, K) -> (B*M, Nc, P)."""

    def __init__(self, in_dim: int, out_dim: int, groups: int):
        super().__init__()
        # Same initial scale as JEPA's single input map, so lambda = 0 is JEPA with G maps.
        self.weight = nn.Parameter(nn.init.trunc_normal_(torch.empty(groups, out_dim, in_dim), std=0.02))
        self.bias = nn.Parameter(torch.zeros(groups, out_dim))

    @property
    def groups(self) -> int:
        return self.weight.shape[0]

    def forward(self, z: torch.Tensor, regions: torch.Tensor) -> torch.Tensor:
        batch, nc, _ = z.shape
        blocks = regions.shape[1]
        # Embed once per group, then pick each block's group: G small matmuls instead of B*M.
        per_group = torch.einsum("bnk,gpk->bgnp", z, self.weight) + self.bias[None, :, None, :]
        picked = torch.gather(per_group, 1, regions[:, :, None, None].expand(-1, -1, nc, per_group.shape[-1]))
        return picked.reshape(batch * blocks, nc, -1)

    def column_norms(self) -> torch.Tensor:
        """(G, K): ||W^(g)[:, j]||_2 for every group g and latent dimension j."""
        return self.weight.detach().norm(dim=1)


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


def prox_threshold(weight: torch.Tensor, lr: float, lam: float) -> float:
    """t = lr * lambda * sqrt(p): the shrink per step, in AdamW's units (see the module docstring)."""
    return lr * lam * weight.shape[1] ** 0.5


@torch.no_grad()
def prox_step_(embed: GroupedEmbed, lr: float, lam: float) -> None:
    if lam > 0:
        embed.weight.copy_(group_soft_threshold(embed.weight, prox_threshold(embed.weight, lr, lam)))


def zero_fraction(embed: GroupedEmbed) -> float:
    return float((embed.column_norms() == 0).float().mean())


class LogVarHead(nn.Module):
    """Log-variance of q(z|x) per context token; the token itself is the mean.

    Starts at a small, input-independent variance (sigma 0.1) so early training is JEPA-like.
    """

    def __init__(self, dim: int, init_std: float = 0.1):
        super().__init__()
        self.proj = nn.Linear(dim, dim)
        nn.init.zeros_(self.proj.weight)
        nn.init.constant_(self.proj.bias, 2 * math.log(init_std))

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.proj(z)


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


def uses_kl(cfg: SparsityConfig | None) -> bool:
    return cfg is not None and cfg.beta > 0


class SparseJEPA(JEPA):
    """JEPA whose predictor embeds the context through one map per target region (`sparsity.groups`),
    with the group lasso on the maps' columns (`sparsity.lambda`) and, with `sparsity.beta > 0`,
    stochastic context latents and their KL term."""

    def __init__(self, params: Params, image_size: int):
        self.sparsity = params.sparsity  # read by make_embed, which JEPA's constructor calls
        super().__init__(params, image_size)
        self.logvar = LogVarHead(params.model.width) if uses_kl(self.sparsity) else None

    @property
    def group_embed(self) -> GroupedEmbed:
        return self.predictor.embed

    def make_embed(self, in_dim: int, out_dim: int) -> nn.Module:
        return GroupedEmbed(in_dim, out_dim, self.sparsity.groups)

    def context_latents(self, z, noise, shard):
        kl = torch.zeros((), device=z.device)
        if self.logvar is not None:
            logvar = self.logvar(z)
            kl = gaussian_kl(z.float(), logvar.float())
            z = reparameterise(z, logvar, noise, shard)
        return z, {"kl": kl}

    def target_regions(self, centers: torch.Tensor) -> torch.Tensor:
        return region_of(centers, self.encoder.grid, self.sparsity.groups)

    def regularisation(self, terms):
        return self.sparsity.beta * terms["kl"]

    def optimizer_groups(self, weight_decay, exclude=()):
        # Never weight decay on the group maps: the group lasso alone controls their size.
        weight = self.group_embed.weight
        return [*super().optimizer_groups(weight_decay, (*exclude, weight)),
                {"params": [weight], "weight_decay": 0.0, "name": "group_maps"}]

    def after_optimizer_step(self, lr: float) -> None:
        prox_step_(self.group_embed, lr, self.sparsity.lambda_)

    def log_terms(self) -> dict[str, float]:
        return {"penalty": float(group_penalty(self.group_embed.weight.detach(), self.sparsity.lambda_)),
                "zero_fraction": zero_fraction(self.group_embed)}

    def summary(self) -> dict[str, float]:
        norms = self.group_embed.column_norms()
        return {"zero_fraction": zero_fraction(self.group_embed),
                "groups_per_latent": float((norms > 0).sum(dim=0).float().mean()),
                "final_penalty": self.log_terms()["penalty"]}

    def outputs(self) -> dict[str, np.ndarray]:
        return {"column_norms": self.group_embed.column_norms().cpu().numpy()}
