"""Several processes, one global batch: launching under torchrun, the process group, rank helpers.

`pretrain.processes: N` (N > 1) makes the pretrain stage re-launch itself under torchrun with N
processes (one per GPU; gloo on CPU). Every process draws the same global batch, masks and crops
from the same seeded generators and keeps its own slice of them; DistributedDataParallel averages
the gradients, so an update equals the single-process update on the same global batch (a test
checks this with two CPU processes).
"""
from __future__ import annotations

import os
import sys
from dataclasses import dataclass

import torch
import torch.distributed as dist

from pipeline.core.errors import PipelineError


@dataclass(frozen=True)
class World:
    rank: int = 0
    size: int = 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def shard(self, batch: int) -> slice:
        """This process's rows of a global batch."""
        per = batch // self.size
        return slice(self.rank * per, (self.rank + 1) * per)

    def mean(self, value: torch.Tensor) -> torch.Tensor:
        """The average over processes (a sync: call it only where a number must be read)."""
        if self.size == 1:
            return value
        value = value.detach().clone().float()
        dist.all_reduce(value)
        return value / self.size

    def any(self, flag: bool | torch.Tensor, device: torch.device) -> bool:
        """Whether any process has `flag` set (a sync)."""
        value = torch.as_tensor(flag, dtype=torch.float32, device=device).reshape(())
        if self.size > 1:
            dist.all_reduce(value, op=dist.ReduceOp.MAX)
        return bool(value)


def current_world() -> World:
    if dist.is_available() and dist.is_initialized():
        return World(dist.get_rank(), dist.get_world_size())
    return World()


def init_from_env(device_type: str) -> World:
    """Join the process group torchrun describes in the environment; a single process needs none."""
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1:
        return World()
    if not dist.is_initialized():
        if device_type == "cuda":
            torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
        dist.init_process_group("nccl" if device_type == "cuda" else "gloo")
    return current_world()


def relaunch_under_torchrun(processes: int, module: str, argv: list[str]) -> None:
    """Run `python -m module argv` as `processes` torchrun processes and exit with their status (from the
    launcher only)."""
    if processes <= 1 or "WORLD_SIZE" in os.environ:
        return
    if torch.cuda.is_available() and torch.cuda.device_count() < processes:
        raise PipelineError(f"pretrain.processes={processes} but only {torch.cuda.device_count()} GPUs are visible; "
                            f"lower it to at most the GPU count")
    from torch.distributed.run import main as torchrun

    print(f"launching {processes} processes with torchrun", flush=True)
    try:
        torchrun(["--standalone", f"--nproc-per-node={processes}", "-m", module, *argv])
    except Exception as e:  # torchrun raises ChildFailedError with every rank's traceback
        raise PipelineError(f"a torchrun process failed ({type(e).__name__}); its error is printed above") from None
    sys.exit(0)
