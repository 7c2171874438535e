"""Per-step schedules as pure functions of the step, so a resumed run needs only the step count."""
from __future__ import annotations

import math
from dataclasses import dataclass

from pipeline.config.pretrain import PretrainConfig


def warmup_cosine(step: int, total: int, warmup: int, start: float, peak: float, final: float) -> float:
    """Linear warm-up from `start` to `peak` over `warmup` steps, then cosine decay to `final`."""
    if step < warmup:
        return start + (peak - start) * step / warmup
    progress = min(1.0, (step - warmup) / max(1, total - warmup))
    return final + (peak - final) * 0.5 * (1 + math.cos(math.pi * progress))


def cosine_increase(step: int, total: int, start: float, end: float) -> float:
    """Weight decay rises from `start` to `end` along half a cosine (I-JEPA)."""
    progress = min(1.0, step / max(1, total))
    return end + (start - end) * 0.5 * (1 + math.cos(math.pi * progress))


def linear(step: int, total: int, start: float, end: float) -> float:
    return start + (end - start) * min(1.0, step / max(1, total))


@dataclass(frozen=True)
class Schedules:
    total_steps: int
    warmup_steps: int
    cfg: PretrainConfig
    lr_sum: float = 0.0  # sum of lr over the run's steps (for_run fills it)

    @classmethod
    def for_run(cls, cfg: PretrainConfig, steps_per_epoch: int) -> "Schedules":
        shape = cls(total_steps=max(1, round(cfg.epochs * steps_per_epoch)),
                    warmup_steps=round(cfg.warmup_epochs * steps_per_epoch), cfg=cfg)
        return cls(shape.total_steps, shape.warmup_steps, cfg, sum(shape.lr(s) for s in range(shape.total_steps)))

    def lr(self, step: int) -> float:
        c = self.cfg
        return warmup_cosine(step, self.total_steps, self.warmup_steps, c.start_lr, c.lr, c.final_lr)

    def lr_share(self, step: int) -> float:
        """This step's share of the run's summed learning rate: shares sum to 1 over any schedule length."""
        return self.lr(step) / self.lr_sum if self.lr_sum > 0 else 1.0 / self.total_steps

    def weight_decay(self, step: int) -> float:
        return cosine_increase(step, self.total_steps, *self.cfg.weight_decay)

    def ema(self, step: int) -> float:
        return linear(step, self.total_steps, *self.cfg.ema)

    def ema_init_share(self, steps: int) -> float:
        """The weight the EMA target encoder still puts on its initialisation after `steps` updates:
        the product of the momenta (target_t = m_t target_{t-1} + (1 - m_t) online_t)."""
        return math.prod(self.ema(step) for step in range(steps))
