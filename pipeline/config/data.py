"""The `data` block: which datasets are pretrained on and probed, and at what size.

Dataset names are checked where datasets are read (pipeline/data/sources), not here: config sits below the
data package."""
from __future__ import annotations

from dataclasses import dataclass

from pipeline.config.checks import require


@dataclass(frozen=True)
class DataConfig:
    pretrain: str
    probe: tuple[str, ...]
    image_size: int

    def validate(self) -> None:
        require(self.image_size >= 8, "data.image_size", self.image_size, "at least 8 px")
        require(len(self.probe) > 0, "data.probe", list(self.probe), "a non-empty list of datasets")
        require(len(set(self.probe)) == len(self.probe), "data.probe", list(self.probe),
                "a list of distinct datasets (one is listed twice)")
        require(self.pretrain in self.probe, "data.pretrain", self.pretrain,
                 f"one of data.probe {list(self.probe)} (the pretraining set is also probed)")


CONFIG = DataConfig
