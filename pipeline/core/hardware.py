"""The machine a stage runs on: which device, the one autocast rule, host-to-device copies, and a one-line
description of the machine a result came from (reports and MLflow)."""
from __future__ import annotations

import os
import platform

import torch

from pipeline.core.errors import PipelineError


def cpu_name() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def to_device(tensor: torch.Tensor, device: torch.device) -> torch.Tensor:
    """A host tensor on `device` without a stream sync: from a copy of pageable memory CUDA first waits
    for every queued kernel, so on CUDA the tensor is pinned and copied asynchronously."""
    if device.type != "cuda":
        return tensor.to(device)
    return tensor.pin_memory().to(device, non_blocking=True)


def describe(device: torch.device | str) -> str:
    device = torch.device(device)
    if device.type == "cuda":
        return f"{torch.cuda.get_device_name(device)} (CUDA {torch.version.cuda}, torch {torch.__version__})"
    return (f"{cpu_name()}, {os.cpu_count()} cores, {torch.get_num_threads()} torch threads "
            f"(torch {torch.__version__})")


def resolve_device(name: str = "auto", distributed: bool = False) -> torch.device:
    """A device name (`pretrain.device`: auto, cpu, cuda, cuda:N) as a torch device: auto is CUDA when one is
    visible, else the CPU; under torchrun (`distributed`) each process gets the GPU torchrun gave it."""
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise PipelineError(f"pretrain.device is '{name}' but no CUDA device is visible; "
                            f"use -S pretrain.device=auto (CPU fallback) or run on a GPU machine")
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cuda" and distributed:
        return torch.device("cuda", torch.cuda.current_device())
    return torch.device(name)


def autocast(device: torch.device):
    """bf16 autocast on CUDA, nothing on the CPU (where bf16 is slower and changes the numbers)."""
    return torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda")
