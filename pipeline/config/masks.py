"""The `masks` block: I-JEPA multi-block masks, in units of the patch grid."""
from __future__ import annotations

from dataclasses import dataclass

from pipeline.config.checks import require


@dataclass(frozen=True)
class MaskConfig:
    num_targets: int
    target_scale: tuple[float, float]
    target_aspect: tuple[float, float]
    context_scale: tuple[float, float]
    min_context: int

    def validate(self) -> None:
        require(self.num_targets >= 1, "masks.num_targets", self.num_targets, ">= 1")
        for name in ("target_scale", "target_aspect", "context_scale"):
            lo, hi = getattr(self, name)
            require(0 < lo <= hi, f"masks.{name}", [lo, hi], "[low, high] with 0 < low <= high")
        require(self.context_scale[1] <= 1.0, "masks.context_scale", list(self.context_scale), "at most 1.0")
        require(self.min_context >= 1, "masks.min_context", self.min_context, ">= 1")


CONFIG = MaskConfig
