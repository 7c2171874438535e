"""The `extract` block: which encoders give frozen features, and how those are pooled."""
from __future__ import annotations

from dataclasses import dataclass

from pipeline.config.checks import require


@dataclass(frozen=True)
class ExtractConfig:
    batch_size: int
    layers: int
    pooling: str
    encoders: tuple[str, ...]

    def validate(self) -> None:
        require(len(self.encoders) > 0 and len(set(self.encoders)) == len(self.encoders)
                and set(self.encoders) <= set(ENCODERS) and "target" in self.encoders, "extract.encoders",
                list(self.encoders), f"distinct names from {', '.join(ENCODERS)}, target among them (the encoder "
                f"the paper probes and the gate checks)")
        require(self.batch_size >= 1, "extract.batch_size", self.batch_size, ">= 1")
        require(self.layers >= 1, "extract.layers", self.layers, ">= 1 (last N blocks, pooled and concatenated)")
        require(self.pooling in POOLINGS, "extract.pooling", self.pooling, f"one of {', '.join(POOLINGS)}")


# A JEPA's two encoders, in table order: the EMA target encoder (what I-JEPA and the paper probe) and the context
# encoder trained by gradient. An untrained reference has only the first.
ENCODERS = ("target", "context")
# The paper's protocol is `mean`; the others keep where a token was, which a mean discards.
POOLINGS = ("mean", "spatial_2x2", "tokens")


CONFIG = ExtractConfig
