"""The `model` block: the ViT encoder's shape."""
from __future__ import annotations

from dataclasses import dataclass

from pipeline.core.params import require


@dataclass(frozen=True)
class ModelConfig:
    patch_size: int
    width: int
    depth: int
    heads: int
    mlp_ratio: float

    def validate(self) -> None:
        require(self.patch_size >= 1, "model.patch_size", self.patch_size, ">= 1")
        require(self.depth >= 1, "model.depth", self.depth, ">= 1")
        require(self.heads >= 1 and self.width >= 1, "model.heads/width", (self.heads, self.width), ">= 1")
        require(self.width % self.heads == 0, "model.width", self.width,
                 f"divisible by model.heads={self.heads}")
        require(self.width % 4 == 0, "model.width", self.width, "divisible by 4 (2-D sin-cos positions)")


CONFIG = ModelConfig
