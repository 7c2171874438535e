"""The `predictor` block: the narrow JEPA predictor's shape."""
from __future__ import annotations

from dataclasses import dataclass

from pipeline.config.checks import require


@dataclass(frozen=True)
class PredictorConfig:
    width: int
    depth: int
    heads: int

    def validate(self) -> None:
        require(self.depth >= 1, "predictor.depth", self.depth, ">= 1")
        require(self.heads >= 1 and self.width >= 1, "predictor.heads/width", (self.heads, self.width), ">= 1")
        require(self.width % self.heads == 0, "predictor.width", self.width,
                 f"divisible by predictor.heads={self.heads}")
        require(self.width % 4 == 0, "predictor.width", self.width, "divisible by 4 (2-D sin-cos positions)")


CONFIG = PredictorConfig
