"""The `anticollapse` block: the anti-collapse terms JEPA's bases add on the context encoder's output.

VICReg-JEPA reads the variance and covariance weights, SIGReg-JEPA the SIGReg weight and directions; both read
`pooling` (pipeline/methods/vicreg_jepa.py, sigreg_jepa.py; the math: pipeline/model/anticollapse.py).
"""
from __future__ import annotations

from dataclasses import dataclass

from pipeline.config.checks import require

# mean: one mean-pooled context token per image is a sample; tokens: every context token is one.
POOLINGS = ("mean", "tokens")


@dataclass(frozen=True)
class AntiCollapseConfig:
    variance_weight: float
    covariance_weight: float
    sigreg_weight: float
    sigreg_directions: int
    pooling: str

    def validate(self) -> None:
        require(self.variance_weight >= 0, "anticollapse.variance_weight", self.variance_weight, ">= 0")
        require(self.covariance_weight >= 0, "anticollapse.covariance_weight", self.covariance_weight, ">= 0")
        require(self.sigreg_weight >= 0, "anticollapse.sigreg_weight", self.sigreg_weight, ">= 0")
        require(self.sigreg_directions >= 1, "anticollapse.sigreg_directions", self.sigreg_directions,
                ">= 1 (random 1-D projections per step)")
        require(self.pooling in POOLINGS, "anticollapse.pooling", self.pooling, f"one of {', '.join(POOLINGS)}")


CONFIG = AntiCollapseConfig
