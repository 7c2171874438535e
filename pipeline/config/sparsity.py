"""The `sparsity` block: SparseJEPA's group lasso and KL term."""
from __future__ import annotations

from dataclasses import dataclass

from pipeline.core.params import require


@dataclass(frozen=True)
class SparsityConfig:
    lambda_: float
    beta: float
    groups: int

    def validate(self) -> None:
        require(self.lambda_ >= 0, "sparsity.lambda", self.lambda_, ">= 0")
        require(self.beta >= 0, "sparsity.beta", self.beta, ">= 0")
        require(self.groups >= 1, "sparsity.groups", self.groups, ">= 1")


CONFIG = SparsityConfig
