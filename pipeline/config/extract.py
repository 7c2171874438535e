"""The `extract` block: how frozen features are pooled."""
from __future__ import annotations

from dataclasses import dataclass

from pipeline.config.checks import require


@dataclass(frozen=True)
class ExtractConfig:
    batch_size: int
    layers: int
    pooling: str

    def validate(self) -> None:
        require(self.batch_size >= 1, "extract.batch_size", self.batch_size, ">= 1")
        require(self.layers >= 1, "extract.layers", self.layers, ">= 1 (last N blocks, pooled and concatenated)")
        require(self.pooling in POOLINGS, "extract.pooling", self.pooling, f"one of {', '.join(POOLINGS)}")


# The paper's protocol is `mean`; the others keep where a token was, which a mean discards.
POOLINGS = ("mean", "spatial_2x2", "tokens")


CONFIG = ExtractConfig
