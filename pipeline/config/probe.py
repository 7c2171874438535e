"""The `probe` block: the linear probe's penalty search and solver, the k-NN probe, the low-label probe."""
from __future__ import annotations

from dataclasses import dataclass

from pipeline.config.checks import require


@dataclass(frozen=True)
class ProbeConfig:
    val_fraction: float
    l2: tuple[float, ...]
    widen: int
    patience: int
    max_iter: int
    tolerance: float
    chunk_rows: int
    standardize: bool
    knn_k: int
    knn_temperature: float
    low_label: tuple[int, ...]
    low_label_draws: int
    workers: int

    def validate(self) -> None:
        require(0 < self.val_fraction < 1, "probe.val_fraction", self.val_fraction, "in (0, 1)")
        require(len(self.l2) > 0 and all(v > 0 for v in self.l2), "probe.l2", list(self.l2),
                 "a non-empty list of penalties > 0")
        require(self.widen >= 0, "probe.widen", self.widen, ">= 0 (decades tried beyond an edge of probe.l2)")
        require(self.patience >= 1, "probe.patience", self.patience,
                ">= 1 (fits in a row below the best validation top-1 that end the path)")
        require(self.max_iter >= 1, "probe.max_iter", self.max_iter, ">= 1")
        require(self.tolerance > 0, "probe.tolerance", self.tolerance, "> 0")
        require(self.chunk_rows >= 1, "probe.chunk_rows", self.chunk_rows, ">= 1")
        require(self.knn_k >= 1, "probe.knn_k", self.knn_k, ">= 1 (neighbours that vote)")
        require(self.knn_temperature > 0, "probe.knn_temperature", self.knn_temperature, "> 0")
        require(all(n >= 1 for n in self.low_label), "probe.low_label", list(self.low_label),
                "a list of labelled images per class >= 1 (empty: no low-label probe)")
        require(self.low_label_draws >= 1, "probe.low_label_draws", self.low_label_draws, ">= 1")
        require(self.workers >= 0, "probe.workers", self.workers, ">= 0 (0: one process per core)")


CONFIG = ProbeConfig
