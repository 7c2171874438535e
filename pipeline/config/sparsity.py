"""The `sparsity` block: SparseJEPA's group lasso and KL term."""
from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from pipeline.config.checks import require


@dataclass(frozen=True)
class SparsityConfig:
    SPELLED: ClassVar[dict[str, str]] = {"lambda_": "lambda"}  # params.yaml's key is a Python keyword
    lambda_: float
    step_sum: float
    momentum: float
    init_std: float
    init_spread: float
    bias: bool
    kl: bool
    beta: float
    groups: int
    regions: str
    map_optimizer: str
    map_step: float
    map_window: int
    map_warmup: int

    def validate(self) -> None:
        require(self.lambda_ >= 0, "sparsity.lambda", self.lambda_, ">= 0")
        require(self.step_sum > 0, "sparsity.step_sum", self.step_sum, "> 0 (the sum of the group maps' SGD steps over the run)")
        require(0 <= self.momentum < 1, "sparsity.momentum", self.momentum, "in [0, 1)")
        require(self.init_std >= 0, "sparsity.init_std", self.init_std, ">= 0 (0: every link starts cut)")
        require(self.init_spread >= 1, "sparsity.init_spread", self.init_spread, ">= 1 (1: no spread)")
        require(self.beta >= 0, "sparsity.beta", self.beta, ">= 0")
        require(not self.kl or self.beta > 0, "sparsity.beta", self.beta, "> 0 when sparsity.kl is true")
        require(self.groups >= 1, "sparsity.groups", self.groups, ">= 1")
        require(self.regions in ("centre", "random"), "sparsity.regions", self.regions, "centre or random")
        require(self.map_optimizer in ("proximal", "dual_averaging", "adamw"), "sparsity.map_optimizer",
                self.map_optimizer, "proximal, dual_averaging or adamw")
        require(self.map_step > 0, "sparsity.map_step", self.map_step, "> 0 (dual averaging's step)")
        require(self.map_window >= 0, "sparsity.map_window", self.map_window,
                ">= 0 (steps per dual-averaging window; 0: one window for the whole run)")
        require(self.map_warmup >= 0, "sparsity.map_warmup", self.map_warmup,
                ">= 0 (dual averaging's first steps at lambda 0)")
        # AdamW on the penalty's subgradient never lands a column on exactly 0: a lasso there would cut nothing.
        require(self.map_optimizer != "adamw" or self.lambda_ == 0, "sparsity.lambda", self.lambda_,
                "0 when sparsity.map_optimizer is adamw (only a proximal step makes exact zeros)")


CONFIG = SparsityConfig
