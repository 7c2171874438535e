"""SIGReg-JEPA: JEPA plus LeJEPA's SIGReg on the context encoder's output, an anti-collapse baseline beside
SparseJEPA.

    L = L_jepa + sigreg_weight * SIGReg(x)

x is the context encoder's output z (B, Nc, D) before the predictor, as samples (`anticollapse.pooling`:
`mean`, one mean-pooled token per image; `tokens`, every context token). SIGReg is the Epps-Pulley statistic of
x's projections onto `anticollapse.sigreg_directions` random unit directions against N(0, 1), averaged over
them: it is about 1.06 for x ~ N(0, I) and grows with the number of samples for any other distribution along
a direction, a collapse included (pipeline/model/anticollapse.py has the formula and quadrature). It is
differentiated with L_jepa, and the unweighted statistic is in every step's output (`sigreg`), so each logged
row has its mean over its steps. Only the regulariser is LeJEPA's: the target encoder, EMA and predictor stay
JEPA's.

The directions are drawn afresh each step from `noise`, the trainer's generator (seeded by the run's seed and
saved in its checkpoints), so a run is reproducible and a resumed one draws what the straight run drew. Under
DDP every process holds the same generator state, so all draw the same directions, and each tests the global
batch (every process's samples gathered): P processes take the updates one process would. Called
without a generator (a direct forward), they come from a CPU generator of this module's, seeded with
DIRECTIONS_SEED at construction and advanced by each call: reproducible from a fresh model, though not kept
in checkpoints.
"""
from __future__ import annotations

import torch

from pipeline.config.params import Params
from pipeline.methods.jepa import JEPA
from pipeline.model.anticollapse import as_samples, gather_rows, random_directions, sigreg

DIRECTIONS_SEED = 20251111


class SIGRegJEPA(JEPA):
    """JEPA whose context encoder's output also pays SIGReg (`anticollapse.sigreg_weight`) along
    `anticollapse.sigreg_directions` random directions per step."""

    def __init__(self, params: Params, image_size: int):
        super().__init__(params, image_size)  # no module of its own: its init is JEPA's
        self.anticollapse = params.anticollapse
        self.directions_gen = torch.Generator().manual_seed(DIRECTIONS_SEED)

    def context_latents(self, z, noise, shard):
        z, terms = super().context_latents(z, noise, shard)
        gen = noise if noise is not None else self.directions_gen
        directions = random_directions(z.shape[-1], self.anticollapse.sigreg_directions, gen).to(z.device)
        x = gather_rows(as_samples(z, self.anticollapse.pooling), shard[1])  # the global batch's, under DDP
        return z, {**terms, "sigreg": sigreg(x, directions)}

    def regularisation(self, terms):
        return super().regularisation(terms) + self.anticollapse.sigreg_weight * terms["sigreg"]

    def summary(self) -> dict[str, float]:
        return {**super().summary(), "sigreg_weight": self.anticollapse.sigreg_weight,
                "sigreg_directions": float(self.anticollapse.sigreg_directions)}
