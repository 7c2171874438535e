"""JEPA (I-JEPA), the baseline, and the model every pretrained method is: context encoder, EMA target
encoder, predictor, loss.

Another method (a file beside this one) subclasses JEPA and overrides the hooks below; the trainer
calls only these, so it never needs to know which method it trains:

    make_embed(in_dim, out_dim)      the predictor's input map (JEPA: one linear map)
    context_latents(z, noise, shard) the context tokens the predictor sees, and extra loss terms
    target_regions(centers, noise, shard)  each target block's region (which input map embeds it)
    regularisation(terms)            what the extra terms add to the loss
    optimizer_groups(weight_decay)   AdamW parameter groups
    after_optimizer_step(lr_share)   e.g. a proximal step; lr_share: the step's share of the run's summed lr
    outside_autograd()               the objective's terms that after_optimizer_step minimises, not autograd
    log_terms()                      scalars for each logged row
    summary()                        scalars for the run's summary
    outputs(images)                  arrays the method reports of itself at the end (e.g. column norms),
                                     given the training images (uint8 NHWC, on the model's device)
"""
from __future__ import annotations

import copy

import numpy as np
import torch
from torch import nn

from pipeline.config.params import Params
from pipeline.model.functional import jepa_targets, prediction_loss
from pipeline.model.vit import Encoder, LinearEmbed, Predictor, gather_tokens


class JEPA(nn.Module):
    """I-JEPA as its reference code defines it; the baseline every method extends."""

    def __init__(self, params: Params, image_size: int):
        super().__init__()
        # Built first, right after the caller seeds torch: the random reference encoder is this init.
        self.encoder = Encoder(params.model, image_size)
        self.target_encoder = copy.deepcopy(self.encoder).requires_grad_(False)
        width = params.model.width
        self.predictor = Predictor(params.predictor, width, self.encoder.grid,
                                   self.make_embed(width, params.predictor.width))
        self.loss_name = params.pretrain.loss
        self.target_norm = params.pretrain.target_norm

    # -- hooks a method overrides ------------------------------------------------------------------
    def make_embed(self, in_dim: int, out_dim: int) -> nn.Module:
        return LinearEmbed(in_dim, out_dim)

    def context_latents(self, z: torch.Tensor, noise: torch.Generator | None,
                        shard: tuple[int, int]) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        return z, {}

    def target_regions(self, centers: torch.Tensor, noise: torch.Generator | None,
                       shard: tuple[int, int]) -> torch.Tensor:
        return torch.zeros(centers.shape[:2], dtype=torch.long, device=centers.device)

    def regularisation(self, terms: dict[str, torch.Tensor]) -> torch.Tensor | float:
        return 0.0

    def optimizer_groups(self, weight_decay: float, exclude: tuple[nn.Parameter, ...] = ()) -> list[dict]:
        """AdamW groups: decay on matrices only (not biases, norms or 1-D params); `exclude` stays out of AdamW
        (a subclass that moves those params itself, e.g. by proximal steps)."""
        skip = {id(p) for p in exclude}
        decay, no_decay = [], []
        for name, p in self.named_parameters():
            if not p.requires_grad or id(p) in skip:
                continue
            (no_decay if p.ndim <= 1 or name.endswith(".bias") else decay).append(p)
        return [{"params": decay, "weight_decay": weight_decay, "name": "decay"},
                {"params": no_decay, "weight_decay": 0.0, "name": "no_decay"}]

    def after_optimizer_step(self, lr_share: float) -> None:
        pass

    def outside_autograd(self) -> dict[str, torch.Tensor]:
        """Terms of the objective L that no gradient flows from (a proximal step minimises them), detached."""
        return {}

    def log_terms(self) -> dict[str, float]:
        return {}

    def summary(self) -> dict[str, float]:
        return {}

    def outputs(self, images: torch.Tensor) -> dict[str, np.ndarray]:
        return {}

    # -- the loss -----------------------------------------------------------------------------------
    def forward(self, images: torch.Tensor, context: torch.Tensor, target_blocks: torch.Tensor,
                target_centers: torch.Tensor, noise: torch.Generator | None = None,
                shard: tuple[int, int] = (0, 1)) -> dict[str, torch.Tensor]:
        """The objective, the loss autograd differentiates, and their terms for one batch: a Masks' tensors (context, targets, target_centers) on the images' device.

        Plain tensors, not a Masks, so torch.compile sees no Python number that changes every batch.
        `shard` (rank, processes) lets a stochastic method draw the global batch's noise and keep its rows.
        """
        batch, blocks, nt = target_blocks.shape
        with torch.no_grad():
            full = self.target_encoder(images)
            full = jepa_targets(full.float(), self.target_norm)
            targets = gather_tokens(full, target_blocks.reshape(batch, blocks * nt))
            targets = targets.reshape(batch * blocks, nt, -1)

        z, terms = self.context_latents(self.encoder(images, context), noise, shard)
        pred = self.predictor(z, context, target_blocks, self.target_regions(target_centers, noise, shard)).float()
        loss_jepa = prediction_loss(pred, targets, self.loss_name)
        autograd_loss = loss_jepa + self.regularisation(terms)
        outside = self.outside_autograd()
        # The objective L as the method states it, at this step's parameters: what autograd differentiates plus
        # what the method minimises otherwise. Only autograd_loss is back-propagated.
        objective = autograd_loss.detach() + sum(outside.values(), torch.zeros((), device=loss_jepa.device))
        return {"objective": objective, "autograd_loss": autograd_loss, "loss_jepa": loss_jepa, **terms, **outside}
