"""The `pretrain` block: the optimisation, schedules and where and how pretraining runs."""
from __future__ import annotations

from dataclasses import dataclass

from pipeline.config.checks import require


@dataclass(frozen=True)
class PretrainConfig:
    epochs: float
    batch_size: int
    lr: float
    start_lr: float
    final_lr: float
    warmup_epochs: float
    weight_decay: tuple[float, float]
    ema: tuple[float, float]
    loss: str
    target_norm: str
    crop_scale: tuple[float, float]
    hflip: bool
    device: str
    compile: str
    processes: int
    log_every: int
    checkpoint_every: int
    monitor_every: int
    keep_every_epochs: float

    def validate(self) -> None:
        require(self.epochs > 0, "pretrain.epochs", self.epochs, "> 0")
        require(self.batch_size >= 2, "pretrain.batch_size", self.batch_size, ">= 2")
        for name in ("lr", "start_lr", "final_lr"):
            require(getattr(self, name) >= 0, f"pretrain.{name}", getattr(self, name), ">= 0")
        require(0 <= self.warmup_epochs < self.epochs, "pretrain.warmup_epochs", self.warmup_epochs,
                 f"in [0, pretrain.epochs={self.epochs})")
        require(all(w >= 0 for w in self.weight_decay), "pretrain.weight_decay", list(self.weight_decay),
                 "[start, end], both >= 0")
        require(all(0 <= m <= 1 for m in self.ema), "pretrain.ema", list(self.ema),
                 "[start, end] momenta in [0, 1]")
        require(self.loss in ("smooth_l1", "l2"), "pretrain.loss", self.loss, "'smooth_l1' or 'l2'")
        require(self.target_norm in ("layer", "center", "standardize"), "pretrain.target_norm", self.target_norm,
                 "'layer' (I-JEPA), 'center' or 'standardize'")
        require(0 < self.crop_scale[0] <= self.crop_scale[1] <= 1, "pretrain.crop_scale",
                 list(self.crop_scale), "[low, high] with 0 < low <= high <= 1")
        require(self.device in ("auto", "cpu", "cuda") or self.device.startswith("cuda:"),
                 "pretrain.device", self.device, "'auto', 'cpu', 'cuda' or 'cuda:N'")
        require(self.compile in ("auto", "on", "off"), "pretrain.compile", self.compile,
                 "'auto' (on CUDA only), 'on' or 'off'")
        require(self.processes >= 1, "pretrain.processes", self.processes, ">= 1 (torchrun processes, one per GPU)")
        require(self.processes == 1 or self.device in ("auto", "cuda", "cpu"), "pretrain.device", self.device,
                 "'auto', 'cuda' or 'cpu' when pretrain.processes > 1 (torchrun assigns each process its GPU)")
        for name in ("log_every", "checkpoint_every"):
            require(getattr(self, name) >= 1, f"pretrain.{name}", getattr(self, name), ">= 1")
        require(self.monitor_every >= 0, "pretrain.monitor_every", self.monitor_every, ">= 0 (0 = at the end only)")
        require(self.keep_every_epochs >= 0, "pretrain.keep_every_epochs", self.keep_every_epochs, ">= 0 (0 = none)")


CONFIG = PretrainConfig
