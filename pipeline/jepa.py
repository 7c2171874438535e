"""JEPA and SparseJEPA as one module: context encoder, EMA target encoder, predictor, losses."""
from __future__ import annotations

import copy

import torch
import torch.nn.functional as F
from torch import nn

from pipeline.config import ModelConfig, PredictorConfig, SparsityConfig
from pipeline.masks import region_of
from pipeline.sparsity import GroupedEmbed, LogVarHead, gaussian_kl, reparameterise, uses_kl
from pipeline.vit import Encoder, LinearEmbed, Predictor, gather_tokens


class JEPA(nn.Module):
    """`sparsity=None` is the I-JEPA baseline; a SparsityConfig makes it SparseJEPA."""

    def __init__(self, model_cfg: ModelConfig, predictor_cfg: PredictorConfig, image_size: int,
                 sparsity: SparsityConfig | None = None, loss: str = "smooth_l1"):
        super().__init__()
        self.encoder = Encoder(model_cfg, image_size)
        self.target_encoder = copy.deepcopy(self.encoder).requires_grad_(False)
        width, grid = model_cfg.width, self.encoder.grid
        self.sparsity = sparsity
        embed = (GroupedEmbed(width, predictor_cfg.width, sparsity.groups) if sparsity
                 else LinearEmbed(width, predictor_cfg.width))
        self.predictor = Predictor(predictor_cfg, width, grid, embed)
        self.logvar = LogVarHead(width) if uses_kl(sparsity) else None
        self.loss_name = loss

    @property
    def group_embed(self) -> GroupedEmbed | None:
        embed = self.predictor.embed
        return embed if isinstance(embed, GroupedEmbed) else None

    def forward(self, images: torch.Tensor, context: torch.Tensor, target_blocks: torch.Tensor,
                target_centers: torch.Tensor, noise: torch.Generator | None = None,
                shard: tuple[int, int] = (0, 1)) -> dict[str, torch.Tensor]:
        """Loss terms for one batch: a Masks' tensors (context, targets, target_centers) on the images' device.

        Plain tensors, not a Masks, so torch.compile sees no Python number that changes every batch.
        `shard` (rank, processes) draws the KL noise of the global batch and keeps this process's rows.
        """
        batch, blocks, nt = target_blocks.shape
        with torch.no_grad():
            full = self.target_encoder(images)
            # Targets are layer-normed without affine parameters (I-JEPA), per token.
            full = F.layer_norm(full.float(), full.shape[-1:])
            targets = gather_tokens(full, target_blocks.reshape(batch, blocks * nt))
            targets = targets.reshape(batch * blocks, nt, -1)

        z = self.encoder(images, context)
        kl = torch.zeros((), device=images.device)
        if self.logvar is not None:
            logvar = self.logvar(z)
            kl = gaussian_kl(z.float(), logvar.float())
            z = reparameterise(z, logvar, noise, shard)

        if self.group_embed is not None:
            regions = region_of(target_centers, self.encoder.grid, self.group_embed.groups)
        else:
            regions = torch.zeros(batch, blocks, dtype=torch.long, device=images.device)
        pred = self.predictor(z, context, target_blocks, regions).float()

        if self.loss_name == "smooth_l1":
            loss_jepa = F.smooth_l1_loss(pred, targets, beta=1.0)
        else:
            loss_jepa = F.mse_loss(pred, targets)
        beta = self.sparsity.beta if self.sparsity else 0.0
        return {"loss": loss_jepa + beta * kl, "loss_jepa": loss_jepa, "kl": kl}


def param_groups(model: JEPA, weight_decay: float) -> list[dict]:
    """AdamW groups: decay on matrices only (not biases, norms or 1-D params), never on the group maps,
    whose size the group lasso alone controls."""
    group_weight = model.group_embed.weight if model.group_embed is not None else None
    decay, no_decay = [], []
    for name, p in model.named_parameters():
        if not p.requires_grad or p is group_weight:
            continue
        (no_decay if p.ndim <= 1 or name.endswith(".bias") else decay).append(p)
    groups = [{"params": decay, "weight_decay": weight_decay, "name": "decay"},
              {"params": no_decay, "weight_decay": 0.0, "name": "no_decay"}]
    if group_weight is not None:
        groups.append({"params": [group_weight], "weight_decay": 0.0, "name": "group_maps"})
    return groups


@torch.no_grad()
def ema_update_(target: nn.Module, online: nn.Module, momentum: float) -> None:
    """target <- momentum * target + (1 - momentum) * online, parameter by parameter."""
    t = [p for p in target.parameters()]
    o = [p.detach() for p in online.parameters()]
    torch._foreach_lerp_(t, o, 1.0 - momentum)
