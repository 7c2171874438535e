"""The `report` block: the targets the report checks each pretrained encoder against."""
from __future__ import annotations

from dataclasses import dataclass

from pipeline.core.params import require


@dataclass(frozen=True)
class ReportConfig:
    min_gain_over_random: float
    min_gain_over_pixels: float

    def validate(self) -> None:
        for name in ("min_gain_over_random", "min_gain_over_pixels"):
            require(abs(getattr(self, name)) <= 100, f"report.{name}", getattr(self, name), "in [-100, 100] points")


CONFIG = ReportConfig
