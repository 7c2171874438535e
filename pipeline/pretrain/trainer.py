"""Pretraining of any registered method: the step, the loop, resumable state.

One step: augment a batch, sample its masks, predict the target blocks' target-encoder
features from the context, AdamW step, the model's after-step hook (e.g. SparseJEPA's proximal
step), EMA update of the target encoder. The loop knows a method only through the hooks of
pipeline/methods/jepa.py. All randomness comes from generators saved in the checkpoint and
the data order is a function of (seed, epoch), so a killed run resumes exactly where it stopped.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Callable

import numpy as np
import torch
from torch.nn.parallel import DistributedDataParallel

from pipeline.artifacts.encoder import encoder_record
from pipeline.artifacts.records import PretrainSummary
from pipeline.core.errors import PipelineError
from pipeline.core.hardware import autocast, describe, resolve_device, to_device
from pipeline.config.params import Params
from pipeline.model.functional import ema_update_
from pipeline.model.vit import Encoder
from pipeline.pretrain import checkpoint
from pipeline.pretrain.augment import apply_augment, draw_augment
from pipeline.pretrain.distributed import World, current_world
from pipeline.pretrain.masks import check_feasible, sample_masks
from pipeline.pretrain.signals import encoder_signals
from pipeline.pretrain.schedules import Schedules
from pipeline.runtime.interrupts import StopRequest
from pipeline.runtime.progress import StepProgress
from pipeline.runtime.timing import NO_TIMER

if TYPE_CHECKING:
    from pipeline.methods.jepa import JEPA


@dataclass
class TrainResult:
    target_encoder: Encoder
    context_encoder: Encoder
    history: list[dict]
    summary: PretrainSummary
    outputs: dict[str, np.ndarray]  # the model's own arrays (its `outputs` hook)


@dataclass
class _Meter:
    """Sums of the loss terms since the last log line, kept on the device (no per-step sync)."""
    sums: dict[str, torch.Tensor] = field(default_factory=dict)
    steps: int = 0
    images: int = 0
    since: float = field(default_factory=time.perf_counter)

    def add(self, out: dict[str, torch.Tensor], images: int) -> None:
        for k, v in out.items():
            self.sums[k] = self.sums.get(k, 0) + v.detach().float()
        self.steps += 1
        self.images += images

    def means(self, world: World, device: torch.device) -> dict[str, float]:
        """Means over the steps since the last log line and over every process (a log step's sync).

        On the device: NCCL reduces only CUDA tensors (some sums, e.g. context_kept, live on the host).
        """
        keys = list(self.sums)
        sums = world.mean(torch.stack([torch.as_tensor(self.sums[k], device=device).float() for k in keys]))
        return {k: float(v) / self.steps for k, v in zip(keys, sums.tolist())}

    def rate(self) -> float:
        return self.images / max(time.perf_counter() - self.since, 1e-9)


class Trainer:
    """Trains the model `build(params, image_size)` returns (a JEPA subclass); `name` labels its logs."""

    def __init__(self, name: str, build: Callable[[Params, int], JEPA], params: Params, train_images: torch.Tensor,
                 train_labels: torch.Tensor, num_classes: int, run_dir: Path):
        self.name, self.params = name, params
        self.cfg = params.pretrain
        self.world = current_world()
        self.device = resolve_device(self.cfg.device, self.world.size > 1)
        # Resident on the device as uint8: the hot loop never waits on a host-side loader.
        self.images = train_images.to(self.device)
        self.labels = train_labels
        self.num_classes = num_classes
        self.run_dir = run_dir
        image_size = int(train_images.shape[1])

        n, batch = len(train_images), self.cfg.batch_size
        if n < batch:
            raise PipelineError(f"pretrain.batch_size={batch} exceeds the {n} training images; lower it")
        if batch % self.world.size:
            raise PipelineError(f"pretrain.batch_size={batch} does not split evenly over {self.world.size} processes; "
                                f"make it a multiple of pretrain.processes")
        self.steps_per_epoch = n // batch
        self.schedules = Schedules.for_run(self.cfg, self.steps_per_epoch)

        seed = params.seed
        torch.manual_seed(seed)
        self.model = build(params, image_size).to(self.device)
        self.grid = self.model.encoder.grid
        check_feasible(params.masks, self.grid)
        # DDP averages the gradients over processes; compile (on CUDA by default) fuses the step's kernels.
        # Dynamic shapes from the start: context and target lengths change from batch to batch.
        wrapped = self.model
        if self.world.size > 1:
            on_gpu = self.device.type == "cuda"
            wrapped = DistributedDataParallel(self.model, device_ids=[self.device.index] if on_gpu else None)
        self.compiled = self.cfg.compile == "on" or (self.cfg.compile == "auto" and self.device.type == "cuda")
        self.eager_forward = wrapped
        self.forward = torch.compile(wrapped, dynamic=True) if self.compiled else wrapped
        self._compile_proven = not self.compiled
        self.optimizer = torch.optim.AdamW(self.model.optimizer_groups(self.cfg.weight_decay[0]), lr=self.cfg.lr,
                                           betas=(0.9, 0.999), fused=self.device.type == "cuda")
        self.gen = torch.Generator().manual_seed(seed)  # crops and masks, on the host
        self.noise_gen = torch.Generator(device=self.device).manual_seed(seed)  # KL reparameterisation
        self.step = 0
        self.history: list[dict] = []
        self.extra: dict = {}  # carried through checkpoints (e.g. the MLflow run id)
        self.elapsed = 0.0
        self.resumed_from: int | None = None
        self._perm_epoch, self._perm = -1, torch.empty(0, dtype=torch.long)
        self._load_if_present()

    # -- resumable state ---------------------------------------------------------------------
    def _state(self) -> dict:
        return {"step": self.step, "model": self.model.state_dict(), "optimizer": self.optimizer.state_dict(),
                "gen": self.gen.get_state(), "noise_gen": self.noise_gen.get_state(),
                "torch_rng": torch.get_rng_state(), "history": self.history, "extra": self.extra,
                "elapsed": self.elapsed, "total_steps": self.schedules.total_steps}

    def save(self) -> None:
        if self.world.is_main:  # every process holds the same state
            checkpoint.save(self.run_dir / checkpoint.LAST, self._state())

    def _load_if_present(self) -> None:
        path = self.run_dir / checkpoint.LAST
        if not path.exists():
            return
        try:
            state = checkpoint.load(path)
            self.model.load_state_dict(state["model"])
            self.optimizer.load_state_dict(state["optimizer"])
            self.gen.set_state(state["gen"])
            torch.set_rng_state(state["torch_rng"])
            self.step, self.history, self.extra = state["step"], state["history"], state["extra"]
        except Exception as e:
            raise PipelineError(f"checkpoint {path} cannot be loaded ({type(e).__name__}: {e}); move it away "
                                f"to start this run afresh") from None
        try:
            self.noise_gen.set_state(state["noise_gen"])
        except RuntimeError:
            # Saved on another device type (CPU vs CUDA): the KL noise stream restarts, seeded by the step.
            self.noise_gen.manual_seed(self.params.seed * 1_000_003 + self.step)
        self.elapsed = state.get("elapsed", 0.0)
        self.resumed_from = self.step

    # -- one step ----------------------------------------------------------------------------
    def _batch_indices(self, step: int) -> torch.Tensor:
        epoch, i = divmod(step, self.steps_per_epoch)
        if self._perm_epoch != epoch:
            order = torch.Generator().manual_seed(self.params.seed * 1_000_003 + epoch)
            self._perm = torch.randperm(len(self.images), generator=order)
            self._perm_epoch = epoch
        batch = self.cfg.batch_size
        return self._perm[i * batch:(i + 1) * batch]

    def train_step(self, step: int, timer=NO_TIMER) -> dict[str, torch.Tensor]:
        """One update on the global batch of `step`; this process computes its own slice of it.

        Nothing here waits for the device: random draws happen on the host and reach the device by
        asynchronous copies, and the schedules are Python numbers. `timer` times the phases (benchmark).
        """
        with timer("data"):
            idx = self._batch_indices(step)
            rows = self.world.shard(len(idx))
            boxes, flip = draw_augment(len(idx), self.images.shape[1:3], self.cfg.crop_scale, self.gen, self.cfg.hflip)
            images = apply_augment(self.images[to_device(idx[rows], self.device)], to_device(boxes[rows], self.device),
                                   None if flip is None else to_device(flip[rows], self.device))
        with timer("masks"):
            masks = sample_masks(self.params.masks, len(idx), self.grid, self.gen)
            context, targets, centers = (to_device(t[rows], self.device)
                                         for t in (masks.context, masks.targets, masks.target_centers))
        out = self.update(step, images, context, targets, centers, timer)
        out["context_kept"] = torch.tensor(masks.context_kept)
        out["context_tokens"] = torch.tensor(float(masks.context.shape[1]))
        return out

    def update(self, step: int, images: torch.Tensor, context: torch.Tensor, targets: torch.Tensor,
               centers: torch.Tensor, timer=NO_TIMER) -> dict[str, torch.Tensor]:
        """The optimiser update of `step` on an augmented batch and its masks, all on the device."""
        lr, wd, momentum = self.schedules.lr(step), self.schedules.weight_decay(step), self.schedules.ema(step)
        for group in self.optimizer.param_groups:
            group["lr"] = lr
            if group["name"] == "decay":
                group["weight_decay"] = wd
        with timer("forward"), autocast(self.device):
            out = self._forward(images, context, targets, centers, self.noise_gen, (self.world.rank, self.world.size))
        with timer("backward"):
            self.optimizer.zero_grad(set_to_none=True)
            out["autograd_loss"].backward()
        with timer("optimizer"):
            self.optimizer.step()
            self.model.after_optimizer_step(self.schedules.lr_share(step))
        with timer("ema"):
            ema_update_(self.model.target_encoder, self.model.encoder, momentum)
        return out

    def _forward(self, *args) -> dict[str, torch.Tensor]:
        """The model's forward, compiled where asked. The first compiled call compiles; should this torch fail to
        compile the model (measured: torch 2.11's inductor on an H200), `auto` warns and trains eager, `on` stops."""
        if self._compile_proven:
            return self.forward(*args)
        try:
            out = self.forward(*args)
        except Exception as e:  # dynamo and inductor raise many types; the eager retry re-raises a model error
            first = str(e).strip().splitlines()[0] if str(e).strip() else ""
            if self.cfg.compile == "on":
                raise PipelineError(f"pretrain {self.name}: torch.compile failed on this torch {torch.__version__} "
                                    f"({type(e).__name__}: {first}); set -S pretrain.compile=auto or off") from e
            print(f"pretrain {self.name}: torch.compile failed ({type(e).__name__}: {first}); training eager",
                  flush=True)
            self.forward, self.compiled = self.eager_forward, False
            out = self.forward(*args)
        self._compile_proven = True
        return out

    # -- monitoring ----------------------------------------------------------------------------
    def monitor(self) -> dict[str, float]:
        """Online ridge probe and collapse signals of the target encoder on a fixed slice of the training set."""
        return encoder_signals(self.model.target_encoder, self.images, self.labels, self.num_classes, self.cfg.loss)

    # -- the loop ------------------------------------------------------------------------------
    def run(self, on_log: Callable[[dict], None] = lambda row: None, stop_after: int | None = None) -> TrainResult:
        """Train to the end of the schedule (or `stop_after` more steps, which is what a kill looks like)."""
        total = self.schedules.total_steps
        end = total if stop_after is None else min(total, self.step + stop_after)
        stop = StopRequest()
        meter = _Meter()
        bad = torch.zeros((), dtype=torch.bool, device=self.device)
        started = time.perf_counter() - self.elapsed
        label = f"pretrain {self.name}"
        with stop, StepProgress(label, total, completed=self.step) as bar:
            if self.resumed_from is not None:
                bar.log(f"{label}: resumed from step {self.resumed_from} ({self.run_dir / checkpoint.LAST})")
            self.model.train()
            while self.step < end:
                out = self.train_step(self.step)
                bad |= ~torch.isfinite(out["objective"])  # autograd_loss plus the terms outside it
                meter.add(out, self.cfg.batch_size)
                self.step += 1
                is_last = self.step == total
                monitor_now = is_last or (self.cfg.monitor_every and self.step % self.cfg.monitor_every == 0)
                if self.step % self.cfg.log_every == 0 or is_last or monitor_now:
                    self.elapsed = time.perf_counter() - started
                    row = self._log_row(meter, bad)
                    if monitor_now:
                        row.update(self.monitor())
                        self.model.train()
                    self.history.append(row)
                    on_log(row)
                    bar.update(self.step, f"objective {row['objective']:.4f} {row['img_per_s']:.0f} img/s")
                    meter = _Meter()
                checkpoint_now = self.step % self.cfg.checkpoint_every == 0 or self.step == end
                # Processes agree on stopping (a sync) only at log and checkpoint steps, so all stop together.
                if self.world.size == 1:
                    stop_now = stop.requested
                else:
                    boundary = checkpoint_now or self.step % self.cfg.log_every == 0
                    stop_now = boundary and self.world.any(stop.requested, self.device)
                if checkpoint_now or stop_now:
                    if self.world.any(bad, self.device):
                        raise self._nan_error()
                    self.elapsed = time.perf_counter() - started
                    self.save()
                self._keep_snapshot(bad)
                if stop_now:
                    raise KeyboardInterrupt
        return self._result()

    def _log_row(self, meter: _Meter, bad: torch.Tensor) -> dict:
        if self.world.any(bad, self.device):
            raise self._nan_error()
        means = meter.means(self.world, self.device)
        step = self.step
        return {"step": step, "epoch": step / self.steps_per_epoch, "images": step * self.cfg.batch_size,
                **means, "lr": self.schedules.lr(step - 1), "wd": self.schedules.weight_decay(step - 1),
                "ema": self.schedules.ema(step - 1), "img_per_s": meter.rate(), **self.model.log_terms()}

    def _nan_error(self) -> PipelineError:
        return PipelineError(f"pretrain {self.name}: the loss became NaN or infinite before step {self.step} "
                             f"(lr {self.schedules.lr(self.step):.2e}); lower pretrain.lr or check the data. "
                             f"The last good checkpoint in {self.run_dir} was kept")

    def _keep_snapshot(self, bad: torch.Tensor) -> None:
        every = self.cfg.keep_every_epochs
        if not every:
            return
        every_steps = max(1, round(every * self.steps_per_epoch))
        if self.step % every_steps == 0:
            if self.world.any(bad, self.device):
                raise self._nan_error()
            if self.world.is_main:
                snapshot = encoder_record(self.model.target_encoder, self.name, {"step": self.step})
                checkpoint.save(self.run_dir / f"encoder_step{self.step:07d}.pt", snapshot)

    def _result(self) -> TrainResult:
        last = self.history[-1] if self.history else {}
        online = [r["online_top1"] for r in self.history if "online_top1" in r]
        m = self.params.model
        setting = (f"ViT width {m.width} depth {m.depth} patch {m.patch_size} at {self.images.shape[1]}px, "
                   f"{len(self.images)} training images, {self.cfg.epochs:g} epochs of batch {self.cfg.batch_size}")
        summary = PretrainSummary(
            method=self.name, seed=self.params.seed, steps=self.step, device=str(self.device),
            hardware=describe(self.device), setting=setting, epochs=self.step / self.steps_per_epoch,
            images_seen=self.step * self.cfg.batch_size, wall_s=round(self.elapsed, 1),
            img_per_s=self.step * self.cfg.batch_size / max(self.elapsed, 1e-9),
            final_objective=last.get("objective"), final_autograd_loss=last.get("autograd_loss"),
            final_loss_jepa=last.get("loss_jepa"),
            online_top1_last=online[-1] if online else None, online_top1_best=max(online) if online else None,
            feature_std=last.get("feature_std"), effective_rank=last.get("effective_rank"),
            position_share=last.get("position_share"), position_loss=last.get("position_loss"),
            # EMA: target = prod(m) * init + ..., so this share of the probed encoder is still its init.
            ema_init_share=self.schedules.ema_init_share(self.step), own=self.model.summary())
        return TrainResult(self.model.target_encoder, self.model.encoder, self.history, summary,
                           self.model.outputs(self.images))
