"""SparseJEPA: JEPA plus latent-to-group maps, their group lasso by exact proximal SGD or dual averaging, and
optionally the KL term. Its ablation ladder's rungs (the maps without the lasso: one map or region maps, on
proximal SGD or on AdamW; sparse_jepa_kl: the KL on) are registry entries over this file that fix some of the
`sparsity` block (pipeline/methods/registry.yaml).

    L = L_jepa + lambda * mean_{g,j} ||W^(g)[:, j]||_2   (+ beta * KL(q(z|x) || N(0, I)) when `sparsity.kl`)

W^(g) (predictor width p x latent width K, no bias, as oi-VAE's maps) embeds the context latents z
when the predictor predicts a target block in region g; a zero column j of W^(g) means latent j does
not serve region g. The penalty is a mean over the G*K columns rather than oi-VAE's sum, only so
that lambda's scale does not change with G and K (it is lambda / (G*K) times the sum).

W is not on AdamW (but for the ladder's rungs with sparsity.map_optimizer adamw, at lambda 0): it takes its own
gradient steps along m, a running mean of its gradients (sparsity.momentum; 0 is oi-VAE's plain SGD), each
followed by the proximal step of the penalty for that step,

    W^(g)[:, j] <- w * max(0, 1 - eta_t * lambda / (G*K) / ||w||),   w = W^(g)[:, j] - eta_t * m_j,

a proximal gradient method on exactly the L above. The steps follow the encoder's learning-rate schedule and
sum to sparsity.step_sum over the run, eta_t = step_sum * lr_t / sum_s lr_s, whatever its length. Why: no
CPU-length run reached the fixed point where a column is zero iff its averaged gradient is at most
lambda / (G*K) (reports/recipe/map_step_constant.md: at constant steps of 30 to 300, every quick run that cut
some but not all columns was still cutting in its last 15 steps), so what decides the zeros is the cumulative
threshold step_sum * lambda / (G*K) against the columns' norms and their integrated gradients. With the step
tied to the schedule's peak (the replaced formulation) that sum grew with the number of steps, so one lambda
cut none to nearly all columns as the schedule lengthened; a fixed step_sum gives lambda the same cumulative
threshold on every schedule.
With `sparsity.map_optimizer` dual_averaging the maps follow group-lasso regularised dual averaging (Xiao 2010)
in windows of `sparsity.map_window` steps (0: the whole run): after t gradients of a window, with mean gbar_t,

    W <- the column soft threshold of W_start - a_t * gbar_t at a_t * lambda / (G*K),   a_t = map_step * t,

W_start the maps when the window began. A column is zero iff ||W_start_j / a_t - gbar_j|| <= lambda / (G*K): once
a_t outgrows the column's start, the selection rule itself, read on the window's mean gradient; a column cut at
the window's start stays cut exactly while that mean is under lambda / (G*K). Proximal SGD instead reads the rule
on its last few steps (a cut column forgets its history, so a batch of noise revives it), and its columns near
the threshold churn without end (reports/recipe/settle.md, measured with the encoders frozen). Neither map_step
nor the window scales with the schedule's length.
`support_flips` counts the columns that changed between zero and non-zero, `support_stable_steps` the steps
since the last change, `columns_moved_last_quarter` how many distinct columns changed in the last quarter of the
map steps so far (many flips from few columns: a support at rest but for a band at the threshold) and
`moved_norm_share` the share of the maps' norm those columns hold (near 0: the band flips between zero and
nearly zero, so the maps themselves are at rest). Each step logs L as `objective`, beside `autograd_loss` (L less
the penalty, what back-propagation sees) and the penalty. The mathematics (penalty, proximal step, KL,
reparameterisation) is pipeline/model/functional.py.

The KL term, when `sparsity.kl` (off by default, see params.yaml; on in the ladder's sparse_jepa_kl rung),
is on a latent whose mean can move: a linear head (identity at init) on the context encoder's LayerNorm-ed
tokens gives q's mean, a second its log-variance; on the tokens themselves (squared mean fixed by the
LayerNorm) the KL could only fall by raising sigma to 1.
"""
from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from pipeline.config.params import Params
from pipeline.methods.jepa import JEPA
from pipeline.model.functional import (column_ratios, dual_averaging_step_, fixed_slice, fold_grad_into_mean_,
                                       gaussian_kl, group_penalty, prox_threshold, proximal_sgd_step_,
                                       reparameterise)
from pipeline.model.regions import random_regions, region_of
from pipeline.model.vit import normalize

TOP_IMAGES = 8     # images per latent
TOP_POOL = 2000    # training images searched (a fixed slice, as the monitor's)


def spread_factors(groups: int, latents: int, spread: float) -> torch.Tensor:
    """(G, K) factors for the maps' initial column norms, log-uniform over [1/spread, spread] and dealt to the
    columns by a fixed scramble (c * 293 mod G*K), so that neither a region nor a latent gets the small ones and
    no random number is drawn (the rest of the init stays as it was). All ones at spread 1."""
    n = groups * latents
    if spread == 1.0:
        return torch.ones(groups, latents)
    ladder = torch.exp(torch.linspace(-math.log(spread), math.log(spread), n))
    scramble = (torch.arange(n) * 293) % n
    return ladder[scramble].view(groups, latents)


def recent(changed_at: torch.Tensor, steps: int, share: float = 0.25) -> torch.Tensor:
    """Which columns last changed between zero and non-zero within the last `share` of `steps` map steps
    (`changed_at`: the step of each column's last change, 0 for never)."""
    return (changed_at > 0) & (changed_at > steps - int(share * steps))


def moved_recently(changed_at: torch.Tensor, steps: int, share: float = 0.25) -> int:
    """How many columns `recent` finds."""
    return int(recent(changed_at, steps, share).sum())


def moved_norm_share(norms: torch.Tensor, changed_at: torch.Tensor, steps: int, share: float = 0.25) -> float:
    """The share of the maps' column-norm mass held now by the columns that moved in the last `share` of the
    steps: near 0 when the columns still flipping are flipping between zero and nearly zero, i.e. when the maps
    themselves are at rest and only the exact-zero indicator chatters at the threshold. NaN with every column
    zero."""
    total = norms.sum()
    return float(norms[recent(changed_at, steps, share)].sum() / total) if total > 0 else math.nan


def survival_correlation(init_norms: torch.Tensor, norms: torch.Tensor) -> float:
    """Pearson r between the columns' initial norms and whether they survived (norm > 0 now): near 0 when what
    is cut does not depend on how large it started. NaN when every column survived, or none did."""
    alive = (norms > 0).float().flatten()
    start = init_norms.float().flatten()
    if alive.std() == 0 or start.std() == 0:
        return math.nan
    return float(torch.corrcoef(torch.stack([start, alive]))[0, 1])


class GroupedEmbed(nn.Module):
    """The predictor's input map, one matrix per group: z (B, Nc, K) -> (B*M, Nc, P)."""

    def __init__(self, in_dim: int, out_dim: int, groups: int, init_std: float = 0.02, bias: bool = False,
                 init_spread: float = 1.0):
        super().__init__()
        # init_std 0 draws what any other draws (so the rest of the init is unchanged), then cuts every link.
        std = init_std if init_std > 0 else 1.0
        weight = nn.init.trunc_normal_(torch.empty(groups, out_dim, in_dim), std=std, a=-2 * std, b=2 * std)
        if init_std == 0:
            weight = torch.zeros_like(weight)
        self.weight = nn.Parameter(weight * spread_factors(groups, in_dim, init_spread)[:, None, :])
        # An unpenalised per-group bias would let a region be predicted with every column cut.
        self.bias = nn.Parameter(torch.zeros(groups, out_dim)) if bias else None
        # The running mean of the weight's gradients (its optimiser state; a buffer, so checkpoints keep it).
        self.register_buffer("grad_avg", torch.zeros_like(self.weight))

    def forward(self, z: torch.Tensor, regions: torch.Tensor) -> torch.Tensor:
        batch, nc, _ = z.shape
        blocks = regions.shape[1]
        # Embed once per group, then pick each block's group: G small matmuls instead of B*M.
        per_group = torch.einsum("bnk,gpk->bgnp", z, self.weight)
        if self.bias is not None:
            per_group = per_group + self.bias[None, :, None, :]
        picked = torch.gather(per_group, 1, regions[:, :, None, None].expand(-1, -1, nc, per_group.shape[-1]))
        return picked.reshape(batch * blocks, nc, -1)

    def column_norms(self) -> torch.Tensor:
        """(G, K): ||W^(g)[:, j]||_2 for every group g and latent dimension j."""
        return self.weight.detach().norm(dim=1)


def brightness_correlation(features: torch.Tensor, images: torch.Tensor) -> torch.Tensor:
    """(K,) Pearson r between each latent's pooled feature (features (N, K)) and the images' mean pixel value
    (images (N, H, W, C) or (N, C, H, W)): the group figure's brightness control, a latent that only tracks how
    bright an image is scoring near +-1. 0 for a constant latent."""
    bright = images.float().flatten(1).mean(1)
    f = features.float() - features.float().mean(0)
    b = bright - bright.mean()
    scale = f.norm(dim=0) * b.norm()
    return torch.where(scale > 0, (f * b[:, None]).sum(0) / scale.clamp_min(1e-30), torch.zeros_like(scale))


def top_activating(features: torch.Tensor, latents: torch.Tensor, count: int) -> torch.Tensor:
    """(L, count) row indices of `features` (N, K) with the largest values on each of `latents` (L,),
    largest first."""
    return features[:, latents].topk(min(count, len(features)), dim=0).indices.T


def zero_fraction(norms: torch.Tensor) -> float:
    """Share of (group, latent) columns that are exactly zero, from the (G, K) column norms."""
    return float((norms == 0).float().mean())


def groups_per_latent(norms: torch.Tensor) -> float:
    """Mean number of groups a latent dimension still serves (G: no grouping; 0: the latent is unused)."""
    return float((norms > 0).sum(dim=0).float().mean())


def groups_per_used_latent(norms: torch.Tensor) -> float:
    """The same over the latents that serve at least one group (1: each serves one region; G: every one;
    0 when none is used): how grouped the links are, apart from how many there are."""
    served = (norms > 0).sum(dim=0)
    return float(served[served > 0].float().mean()) if bool((served > 0).any()) else 0.0


class LatentHead(nn.Module):
    """q(z|x) per context token: mean = A z (A identity at init), log-variance = B z + c.

    The mean is a learned map, so the KL can pull it in (and the group maps must pay, in the lasso, for
    scaling it back up) instead of being fixed by the encoder's LayerNorm. The log-variance starts
    input-independent at sigma `init_std`, so early training is JEPA-like.
    """

    def __init__(self, dim: int, init_std: float = 0.1):
        super().__init__()
        self.mean = nn.Linear(dim, dim)
        nn.init.eye_(self.mean.weight)
        nn.init.zeros_(self.mean.bias)
        self.logvar = nn.Linear(dim, dim)
        nn.init.zeros_(self.logvar.weight)
        nn.init.constant_(self.logvar.bias, 2 * math.log(init_std))

    def forward(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.mean(z), self.logvar(z)


def _default_column_changed_at(module, state_dict, prefix, *args) -> None:
    """A checkpoint from before `column_changed_at` existed resumes with every column's last change unknown (0)."""
    key = prefix + "column_changed_at"
    if key not in state_dict and prefix + "support" in state_dict:
        state_dict[key] = torch.zeros_like(state_dict[prefix + "support"], dtype=torch.long)


class SparseJEPA(JEPA):
    """JEPA whose predictor embeds the context through one map per target region (`sparsity.groups`),
    the maps on proximal SGD or dual averaging (`sparsity.map_optimizer`) for the group lasso (`sparsity.lambda`)
    and, with `sparsity.kl`, stochastic context latents and their KL term (weight `sparsity.beta`)."""

    def __init__(self, params: Params, image_size: int):
        # Read by make_embed, which JEPA's constructor calls. A ladder rung's fixed values are already in it.
        self.sparsity = params.sparsity
        super().__init__(params, image_size)
        # Which columns are non-zero, and when that last changed (buffers: checkpoints keep them).
        self.register_buffer("support", self.group_embed.column_norms() > 0)
        self.register_buffer("map_steps", torch.zeros((), dtype=torch.long))
        self.register_buffer("support_changed_at", torch.zeros((), dtype=torch.long))
        self.register_buffer("support_flips", torch.zeros((), dtype=torch.long))
        self.register_buffer("column_changed_at", torch.zeros_like(self.support, dtype=torch.long))
        self.register_load_state_dict_pre_hook(_default_column_changed_at)
        self.register_buffer("init_norms", self.group_embed.column_norms().clone())
        if self.sparsity.map_optimizer == "dual_averaging":  # the maps at the window's start
            self.register_buffer("map_anchor", self.group_embed.weight.detach().clone())
        # Made after the JEPA modules, so that their init (and the random reference's) is JEPA's.
        self.latent_head = LatentHead(params.model.width) if self.sparsity.kl else None

    @property
    def group_embed(self) -> GroupedEmbed:
        return self.predictor.embed

    def make_embed(self, in_dim: int, out_dim: int) -> nn.Module:
        return GroupedEmbed(in_dim, out_dim, self.sparsity.groups, self.sparsity.init_std, self.sparsity.bias,
                            self.sparsity.init_spread)

    @staticmethod
    def map_input(z: torch.Tensor) -> torch.Tensor:
        """What the maps (and the KL head) read: the context tokens layer-normed again, without gain or bias.
        Read through the encoder's final LayerNorm alone, scaling its gain and bias by c and the maps by 1/c
        left the JEPA loss unchanged while the penalty fell as 1/c, so the objective had no minimiser. (Measured
        in the quick setting, the gain hardly moved either way, and re-normalising changed the zero fraction
        little: reports/recipe/map_step_constant.md.) At init (gain 1, bias 0) this is the identity."""
        return F.layer_norm(z, z.shape[-1:])

    def context_latents(self, z, noise, shard):
        z, terms = super().context_latents(z, noise, shard)  # a base's own terms (an anti-collapse base's)
        z = self.map_input(z)
        if self.latent_head is None:
            return z, {**terms, "kl": torch.zeros((), device=z.device)}
        mean, logvar = self.latent_head(z)
        kl = gaussian_kl(mean.float(), logvar.float())
        sigma = (0.5 * logvar.detach().float()).exp().mean()
        return reparameterise(mean, logvar, noise, shard), {**terms, "kl": kl, "sigma": sigma}

    def target_regions(self, centers, noise, shard):
        if self.sparsity.regions == "random":  # the control (noise: the run's seeded stream, checkpointed)
            return random_regions(centers.shape[:2], self.sparsity.groups, noise, shard, centers.device)
        return region_of(centers, self.encoder.grid, self.sparsity.groups)

    def regularisation(self, terms):
        return super().regularisation(terms) + self.sparsity.beta * terms["kl"]  # beta * 0 without the KL head

    def optimizer_groups(self, weight_decay, exclude=()):
        # Unless on AdamW (a ladder rung, at lambda 0), the group maps are not AdamW's: after_optimizer_step moves them.
        maps = (self.group_embed.weight,) if self.sparsity.map_optimizer != "adamw" else ()
        return super().optimizer_groups(weight_decay, (*exclude, *maps))

    def after_optimizer_step(self, lr_share: float) -> None:
        super().after_optimizer_step(lr_share)
        embed, sparsity = self.group_embed, self.sparsity
        if sparsity.map_optimizer == "proximal":
            proximal_sgd_step_(embed.weight, embed.grad_avg, sparsity.step_sum * lr_share, sparsity.lambda_,
                               sparsity.momentum)
        elif sparsity.map_optimizer == "dual_averaging":
            self.dual_averaging_step()
        support = embed.column_norms() > 0
        flips = (support != self.support).sum()
        self.map_steps += 1
        self.support_flips += flips
        # torch.where, not `if flips`: reading the count would wait for the device every step.
        self.support_changed_at.copy_(torch.where(flips > 0, self.map_steps, self.support_changed_at))
        self.column_changed_at.copy_(torch.where(support != self.support, self.map_steps, self.column_changed_at))
        self.support.copy_(support)

    def dual_averaging_step(self) -> None:
        """The maps' dual-averaging step (functional.dual_averaging_step_, power 1): t counts this window's
        gradients, grad_avg holds their mean; the first `map_warmup` steps are a window of their own at lambda 0.
        Tensors throughout, so that no step waits for the device."""
        embed, window, warmup = self.group_embed, self.sparsity.map_window, self.sparsity.map_warmup
        penalised = self.map_steps >= warmup
        into = torch.where(penalised, self.map_steps - warmup, self.map_steps)  # steps into this phase
        t = (into % window if window else into) + 1
        self.map_anchor.copy_(torch.where(t == 1, embed.weight.detach(), self.map_anchor))
        fold_grad_into_mean_(embed.weight, embed.grad_avg, t)
        dual_averaging_step_(embed.weight, embed.grad_avg, self.map_anchor, t, self.sparsity.map_step,
                             self.sparsity.lambda_ * penalised)

    def outside_autograd(self) -> dict[str, torch.Tensor]:
        # The group lasso: after_optimizer_step's proximal step minimises it.
        return {**super().outside_autograd(),
                "penalty": group_penalty(self.group_embed.weight.detach(), self.sparsity.lambda_)}

    def log_terms(self) -> dict[str, float]:
        norms = self.group_embed.column_norms()
        return {**super().log_terms(), "zero_fraction": zero_fraction(norms),
                "groups_per_latent": groups_per_latent(norms),
                "groups_per_used_latent": groups_per_used_latent(norms),
                "map_norm": float(self.group_embed.weight.detach().norm()),
                # The RMS of the context encoder's final LayerNorm gain, which the maps no longer see.
                "encoder_gain": float(self.encoder.norm.weight.detach().norm() / self.encoder.width ** 0.5),
                "support_flips": int(self.support_flips),
                "support_stable_steps": int(self.map_steps - self.support_changed_at),
                "columns_moved_last_quarter": moved_recently(self.column_changed_at, int(self.map_steps)),
                "moved_norm_share": moved_norm_share(norms, self.column_changed_at, int(self.map_steps)),
                # The selection rule's check on the maps' averaged gradient (its window mean under dual averaging):
                # at the fixed point live columns sit at 1 and no zero column is above 1.
                **dict(zip(("kkt_live_mean", "kkt_zero_max"), column_ratios(
                    self.group_embed.grad_avg, norms > 0, prox_threshold(self.group_embed.weight, 1.0,
                                                                          self.sparsity.lambda_)))),
                "init_survival_r": survival_correlation(self.init_norms, norms)}

    def summary(self) -> dict[str, float]:
        return {**super().summary(), **self.log_terms(), "final_penalty": float(self.outside_autograd()["penalty"]),
                "lambda": self.sparsity.lambda_, "beta": self.sparsity.beta if self.latent_head is not None else 0.0}

    @torch.no_grad()
    def outputs(self, images: torch.Tensor) -> dict[str, np.ndarray]:
        """The (G, K) column norms and, for every latent, the indices of the TOP_IMAGES training images (of a
        fixed slice) whose pooled target features are largest on it, and its correlation with those images'
        brightness over the slice: what the report's group figure draws (it picks which latents to show)."""
        norms = self.group_embed.column_norms()
        idx = fixed_slice(len(images), TOP_POOL)
        encoder = self.target_encoder.eval()
        feats = torch.cat([self.map_input(encoder(normalize(images[chunk.to(images.device)])).float()).mean(1).cpu()
                           for chunk in idx.split(512)])
        if self.latent_head is not None:  # the maps read q's mean (a linear mix of the tokens), not the tokens
            head = self.latent_head.mean
            feats = head(feats.to(head.weight.device, head.weight.dtype)).float().cpu()
        top = top_activating(feats, torch.arange(feats.shape[1]), TOP_IMAGES)
        bright = brightness_correlation(feats, images[idx.to(images.device)].cpu())
        return {**super().outputs(images), "column_norms": norms.cpu().numpy(), "top_images": idx[top].numpy(),
                "brightness_r": bright.numpy()}
