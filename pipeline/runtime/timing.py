"""Where a training step spends its time: wall time per named phase, for the benchmark.

A GPU runs asynchronously, so a phase's wall time only means something when the device is
waited for at each boundary. That wait costs throughput, so only the benchmark's breakdown pass
turns it on; training uses NO_TIMER, which does nothing.
"""
from __future__ import annotations

import contextlib
import time
from typing import Iterator

import torch


class PhaseTimer:
    def __init__(self, device: torch.device):
        self.device = torch.device(device)
        self.seconds: dict[str, float] = {}

    def _wait(self) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)

    @contextlib.contextmanager
    def __call__(self, phase: str) -> Iterator[None]:
        self._wait()
        start = time.perf_counter()
        try:
            yield
        finally:
            self._wait()
            self.seconds[phase] = self.seconds.get(phase, 0.0) + time.perf_counter() - start


class _NoTimer:
    @contextlib.contextmanager
    def __call__(self, phase: str) -> Iterator[None]:
        yield


NO_TIMER = _NoTimer()
