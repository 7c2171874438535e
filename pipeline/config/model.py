"""The `model` block: the ViT encoder's shape."""
from __future__ import annotations

from dataclasses import dataclass

from pipeline.config.checks import require

# The patch embedding's initialisation. Weight: trunc_normal (std 0.02 on the flattened patch, I-JEPA and
# timm) or xavier (uniform, fan-in + fan-out, MAE): at 4 px x 3 channels (fan-in 48) std 0.02 makes the
# content ~5x smaller than the sin-cos positions it is added to. Bias: torch (PyTorch's Conv2d default,
# uniform +-1/sqrt(fan-in)) or zero (I-JEPA's code).
PATCH_WEIGHT_INITS = ("trunc_normal", "xavier")
PATCH_BIAS_INITS = ("torch", "zero")


@dataclass(frozen=True)
class ModelConfig:
    patch_size: int
    width: int
    depth: int
    heads: int
    mlp_ratio: float
    patch_weight: str
    patch_bias: str

    def validate(self) -> None:
        require(self.patch_size >= 1, "model.patch_size", self.patch_size, ">= 1")
        require(self.depth >= 1, "model.depth", self.depth, ">= 1")
        require(self.heads >= 1 and self.width >= 1, "model.heads/width", (self.heads, self.width), ">= 1")
        require(self.width % self.heads == 0, "model.width", self.width,
                 f"divisible by model.heads={self.heads}")
        require(self.width % 4 == 0, "model.width", self.width, "divisible by 4 (2-D sin-cos positions)")
        require(self.patch_weight in PATCH_WEIGHT_INITS, "model.patch_weight", self.patch_weight,
                 " or ".join(f"'{k}'" for k in PATCH_WEIGHT_INITS))
        require(self.patch_bias in PATCH_BIAS_INITS, "model.patch_bias", self.patch_bias,
                 " or ".join(f"'{k}'" for k in PATCH_BIAS_INITS))


CONFIG = ModelConfig
