"""The `data` block: which datasets are pretrained on and probed, and at what size."""
from __future__ import annotations

from dataclasses import dataclass

from pipeline.core.params import require
from pipeline.data import sources


@dataclass(frozen=True)
class DataConfig:
    pretrain: str
    probe: tuple[str, ...]
    image_size: int

    def validate(self) -> None:
        require(self.image_size >= 8, "data.image_size", self.image_size, "at least 8 px")
        require(len(self.probe) > 0, "data.probe", list(self.probe), "a non-empty list of datasets")
        require(self.pretrain in self.probe, "data.pretrain", self.pretrain,
                 f"one of data.probe {list(self.probe)} (the pretraining set is also probed)")
        for name in self.probe:
            require(name in sources.known(), "data.probe", list(self.probe),
                     f"a list of known datasets ({', '.join(sources.known())})")


CONFIG = DataConfig
