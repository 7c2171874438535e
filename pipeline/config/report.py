"""The `report` block: the targets the report checks each pretrained encoder (and SparseJEPA's maps) against."""
from __future__ import annotations

from dataclasses import dataclass

from pipeline.config.checks import require


@dataclass(frozen=True)
class ReportConfig:
    min_gain_over_random: float
    min_gain_over_pixels: float
    min_zero_fraction: float
    max_groups_per_latent: float

    def validate(self) -> None:
        for name in ("min_gain_over_random", "min_gain_over_pixels"):
            require(abs(getattr(self, name)) <= 100, f"report.{name}", getattr(self, name), "in [-100, 100] points")
        require(0 <= self.min_zero_fraction <= 1, "report.min_zero_fraction", self.min_zero_fraction, "in [0, 1]")
        require(self.max_groups_per_latent >= 0, "report.max_groups_per_latent", self.max_groups_per_latent, ">= 0")


CONFIG = ReportConfig
