"""VICReg-JEPA: JEPA plus VICReg's variance and covariance terms on the context encoder's output, an
anti-collapse baseline beside SparseJEPA.

    L = L_jepa + variance_weight * V(x) + covariance_weight * C(x)

x is the context encoder's output z (B, Nc, D) before the predictor (the tokens the predictor embeds), as
samples (`anticollapse.pooling`: `mean`, one mean-pooled token per image; `tokens`, every context token):
V the mean over dimensions of relu(1 - std) (VICReg's hinge, gamma 1), C the summed squared off-diagonal
covariance over D (pipeline/model/anticollapse.py). Both are differentiated with L_jepa (no proximal step),
and both unweighted terms are in every step's output (`variance`, `covariance`), so each logged row has
their means over its steps. Under DDP the terms are of the global batch (every process's samples gathered),
so P processes take the updates one process would. VICReg's invariance term is JEPA's prediction loss here;
there is no projector (the terms act on the representation the predictor and the probes see).
"""
from __future__ import annotations

from pipeline.config.params import Params
from pipeline.methods.jepa import JEPA
from pipeline.model.anticollapse import as_samples, covariance_penalty, gather_rows, variance_hinge


class VICRegJEPA(JEPA):
    """JEPA whose context encoder's output also pays VICReg's variance hinge (`anticollapse.variance_weight`)
    and covariance penalty (`anticollapse.covariance_weight`)."""

    def __init__(self, params: Params, image_size: int):
        super().__init__(params, image_size)  # no module of its own: its init is JEPA's
        self.anticollapse = params.anticollapse

    def context_latents(self, z, noise, shard):
        z, terms = super().context_latents(z, noise, shard)
        x = gather_rows(as_samples(z, self.anticollapse.pooling), shard[1])  # the global batch's, under DDP
        return z, {**terms, "variance": variance_hinge(x), "covariance": covariance_penalty(x)}

    def regularisation(self, terms):
        cfg = self.anticollapse
        return (super().regularisation(terms) + cfg.variance_weight * terms["variance"]
                + cfg.covariance_weight * terms["covariance"])

    def summary(self) -> dict[str, float]:
        return {**super().summary(), "variance_weight": self.anticollapse.variance_weight,
                "covariance_weight": self.anticollapse.covariance_weight}
