"""Pretraining throughput on this machine: our step against a straightforward DataLoader loop.

    python -m pipeline.bench.pretrain                  # batch 512 on CUDA, 128 on CPU
    python -m pipeline.bench.pretrain --batch 256 --steps 20 --compile off

The model is the paper's: ViT-Tiny, patch 4 at 32 px (8x8 patches), predictor width 192 depth 6,
on CIFAR-shaped random uint8 images (content does not change the cost). The variants:

  <method>            one per pretrained method of the registry (pipeline/methods/registry.yaml), in its
                      order: the pipeline's Trainer, data resident on the device as uint8, batched crops
                      and masks, bf16 autocast, fused AdamW and torch.compile on CUDA
  baseline            the loop a reference implementation would write: a torchvision Dataset with
                      per-image RandomResizedCrop, a DataLoader with workers, masks sampled image by
                      image in Python in the collate function (as I-JEPA's MaskCollator), then the
                      registry baseline method's update, uncompiled

For each: images/s over timed steps after warm-up (nothing waits for the device inside them), the
time per phase (data, masks, forward, backward, optimiser, EMA) from a separate pass that waits for
the device at every phase boundary, peak memory, model FLOPs per image (forward and backward,
counted by torch's FlopCounterMode) and the achieved TFLOP/s. Results go to
reports/benchmarks/pretrain-<device>.json, one file per device so figures never mix.
"""
from __future__ import annotations

import argparse
import json
import os
import random
import resource
import sys
import tempfile
import time
from pathlib import Path

import torch

from pipeline import methods
from pipeline.bench import write_report
from pipeline.core.hardware import describe
from pipeline.config.params import Params, load_params
from pipeline.pretrain.masks import draw_shape, valid_shapes
from pipeline.pretrain.trainer import Trainer
from pipeline.report.tables import markdown_table
from pipeline.runtime.timing import NO_TIMER, PhaseTimer

PHASES = ("data", "masks", "forward", "backward", "optimizer", "ema")
IMAGE_SIZE = 32


def paper_params(method, batch: int, compile_mode: str, device: str) -> Params:
    """params.yaml with the paper's model (see README: The paper's experiment) and benchmark-only overrides."""
    return load_params(method.params, overrides={
        "model.patch_size": 4, "model.width": 192, "model.depth": 12, "model.heads": 3,
        "predictor.width": 192, "predictor.depth": 6, "predictor.heads": 6,
        "pretrain.epochs": 100, "pretrain.batch_size": batch, "pretrain.warmup_epochs": 1,
        "pretrain.log_every": 10 ** 6, "pretrain.checkpoint_every": 10 ** 6, "pretrain.compile": compile_mode,
        "pretrain.device": device}).for_seed(0)


def synthetic_images(n: int) -> torch.Tensor:
    gen = torch.Generator().manual_seed(0)
    return torch.randint(0, 256, (n, IMAGE_SIZE, IMAGE_SIZE, 3), dtype=torch.uint8, generator=gen)


# ------------------------------------------------------------------------------------------ baseline

class PerImageMaskCollator:
    """Masks the way a reference implementation samples them: a Python loop over images and blocks.

    Same statistics as pipeline.pretrain.masks (one target and one context shape per batch, positions per
    image, context minus targets, contexts cut to the batch's shortest), written plainly.
    """

    def __init__(self, masks_cfg, grid: tuple[int, int], seed: int = 0):
        self.cfg, self.grid = masks_cfg, grid
        self.targets = valid_shapes(grid, masks_cfg.target_scale, masks_cfg.target_aspect)
        self.contexts = valid_shapes(grid, masks_cfg.context_scale, (1.0, 1.0))
        self.rng = random.Random(seed)
        self.gen = torch.Generator().manual_seed(seed)

    def __call__(self, batch: list[tuple[torch.Tensor, int]]):
        rows, cols = self.grid
        n = rows * cols
        # Block shapes as pipeline.pretrain.masks draws them, so both loops do the same work per step on average.
        th, tw = draw_shape(self.targets, self.cfg.target_scale, self.cfg.target_aspect, n, self.gen)
        ch, cw = draw_shape(self.contexts, self.cfg.context_scale, (1.0, 1.0), n, self.gen)
        targets, centers, contexts = [], [], []
        for _ in batch:
            blocks, covered = [], set()
            image_centers = []
            for _ in range(self.cfg.num_targets):
                top, left = self.rng.randint(0, rows - th), self.rng.randint(0, cols - tw)
                patches = [(top + r) * cols + left + c for r in range(th) for c in range(tw)]
                blocks.append(patches)
                covered.update(patches)
                image_centers.append([top + th / 2, left + tw / 2])
            top, left = self.rng.randint(0, rows - ch), self.rng.randint(0, cols - cw)
            context = [(top + r) * cols + left + c for r in range(ch) for c in range(cw)]
            contexts.append([p for p in context if p not in covered])
            targets.append(blocks)
            centers.append(image_centers)
        keep = min(len(c) for c in contexts)
        contexts = [sorted(self.rng.sample(c, keep)) for c in contexts]
        images = torch.stack([image for image, _ in batch])
        return images, torch.tensor(contexts), torch.tensor(targets), torch.tensor(centers, dtype=torch.float32)


class _ImageDataset(torch.utils.data.Dataset):
    def __init__(self, images: torch.Tensor, crop_scale: tuple[float, float]):
        from torchvision.transforms import v2

        from pipeline.model.vit import MEAN, STD

        self.images = images
        self.transform = v2.Compose([v2.RandomResizedCrop(IMAGE_SIZE, scale=crop_scale, antialias=True),
                                     v2.ToDtype(torch.float32, scale=True), v2.Normalize(MEAN, STD)])

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i: int):
        return self.transform(self.images[i].permute(2, 0, 1)), 0


def baseline_batches(trainer: Trainer, images: torch.Tensor, workers: int):
    """An endless stream of (images, context, targets, centres) on the trainer's device, from a DataLoader."""
    cfg = trainer.params.pretrain
    loader = torch.utils.data.DataLoader(
        _ImageDataset(images, cfg.crop_scale), batch_size=cfg.batch_size, shuffle=True, drop_last=True,
        num_workers=workers, persistent_workers=workers > 0, pin_memory=trainer.device.type == "cuda",
        collate_fn=PerImageMaskCollator(trainer.params.masks, trainer.grid))
    while True:
        for batch in loader:
            yield tuple(t.to(trainer.device, non_blocking=True) for t in batch)


def baseline_host_ms(trainer: Trainer, images: torch.Tensor, batches: int = 3) -> float:
    """Host CPU milliseconds the baseline spends making one batch (crops and masks), in one process.

    Its DataLoader workers spend this in parallel with training, but on the same cores; set beside
    our data + masks phases it compares the two data paths without the model's run-to-run noise.
    """
    cfg = trainer.params.pretrain
    dataset = _ImageDataset(images, cfg.crop_scale)
    collate = PerImageMaskCollator(trainer.params.masks, trainer.grid)
    start = time.perf_counter()
    for b in range(batches):
        collate([dataset[i] for i in range(b * cfg.batch_size, (b + 1) * cfg.batch_size)])
    return 1000 * (time.perf_counter() - start) / batches


# ------------------------------------------------------------------------------------------ measuring

def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


class Variant:
    """One way of training: a Trainer and its step function step_fn(step, timer), with its own step count."""

    def __init__(self, name: str, trainer: Trainer, step_fn):
        self.name, self.trainer, self.step_fn = name, trainer, step_fn
        self.step, self.seconds, self.timed_steps = 0, 0.0, 0
        self.timer = PhaseTimer(trainer.device)

    def run(self, steps: int, timer=NO_TIMER) -> float:
        """Wall seconds for `steps` steps, the device drained before and after."""
        _sync(self.trainer.device)
        start = time.perf_counter()
        for _ in range(steps):
            self.step_fn(self.step, timer)
            self.step += 1
        _sync(self.trainer.device)
        return time.perf_counter() - start


def measure(variants: list[Variant], warmup: int, rounds: int, steps_per_round: int, breakdown_steps: int) -> list[dict]:
    """Warm every variant up first (compilation, kernel caches for each new mask length), then time them in
    alternating rounds, so a slow spell of the machine does not fall on one variant only."""
    for v in variants:
        v.run(warmup)
    for _ in range(rounds):
        for v in variants:
            v.seconds += v.run(steps_per_round)
            v.timed_steps += steps_per_round
    results = []
    for v in variants:
        v.run(breakdown_steps, v.timer)
        results.append(_result(v, breakdown_steps))
    return results


def _result(v: Variant, breakdown_steps: int) -> dict:
    trainer, batch = v.trainer, v.trainer.cfg.batch_size
    img_per_s = v.timed_steps * batch / v.seconds
    flops = flops_per_image(trainer)
    result = {
        "variant": v.name, "batch": batch, "timed_steps": v.timed_steps, "seconds": round(v.seconds, 3),
        "images_per_s": round(img_per_s, 1), "step_ms": round(1000 * v.seconds / v.timed_steps, 1),
        "phase_ms": {p: round(1000 * v.timer.seconds.get(p, 0.0) / breakdown_steps, 2) for p in PHASES},
        "gflops_per_image": round(flops / 1e9, 3), "tflops_per_s": round(flops * img_per_s / 1e12, 3),
        "compiled": trainer.compiled,  # False where compiling was asked but this torch could not (trained eager)
    }
    if trainer.device.type == "cuda":
        result["peak_gpu_memory_gb"] = round(step_peak_memory(v) / 2**30, 2)
    # ru_maxrss is the process's high-water mark so far (kB on Linux), shared by all variants.
    result["process_peak_rss_gb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20, 2)
    return result


def step_peak_memory(v: Variant) -> int:
    """GPU bytes one variant needs at its peak: its resident tensors (images, weights, EMA copy, gradients,
    optimiser state) plus the most one step allocates on top; the other variants' memory is not counted."""
    trainer = v.trainer
    resident = trainer.images.nbytes + sum(t.nbytes for t in trainer.model.state_dict().values())
    resident += sum(p.numel() * p.element_size() for p in trainer.model.parameters() if p.requires_grad)  # grads
    resident += sum(t.nbytes for state in trainer.optimizer.state.values() for t in state.values()
                    if isinstance(t, torch.Tensor))
    _sync(trainer.device)
    before = torch.cuda.memory_allocated(trainer.device)
    torch.cuda.reset_peak_memory_stats(trainer.device)
    v.run(1)
    return resident + torch.cuda.max_memory_allocated(trainer.device) - before


def flops_per_image(trainer: Trainer) -> float:
    """Forward + backward FLOPs of one training batch of the model, per image (masks of one step)."""
    from torch.utils.flop_counter import FlopCounterMode

    from pipeline.pretrain.masks import sample_masks

    batch = trainer.cfg.batch_size
    images = torch.randn(batch, 3, IMAGE_SIZE, IMAGE_SIZE, device=trainer.device)
    masks = sample_masks(trainer.params.masks, batch, trainer.grid, torch.Generator().manual_seed(1))
    with FlopCounterMode(display=False) as counter:
        out = trainer.model(images, masks.context.to(trainer.device), masks.targets.to(trainer.device),
                            masks.target_centers.to(trainer.device))
        out["autograd_loss"].backward()
    trainer.optimizer.zero_grad(set_to_none=True)
    return counter.get_total_flops() / batch


def run(batch: int, rounds: int, steps_per_round: int, warmup: int, breakdown_steps: int, compile_mode: str,
        device: str, workers: int) -> dict:
    images = synthetic_images(max(4 * batch, 2048))
    labels = torch.zeros(len(images), dtype=torch.long)
    with tempfile.TemporaryDirectory() as scratch:
        variants = []
        for method in (m for m in methods.all_methods() if m.pretrained):
            params = paper_params(method, batch, compile_mode, device)
            trainer = Trainer(method.key, method.build, params, images, labels, 10, Path(scratch) / method.key)
            variants.append(Variant(method.key, trainer, trainer.train_step))
        reference = methods.get(methods.baseline())  # the method the reference loop trains
        base = Trainer(reference.key, reference.build, paper_params(reference, batch, "off", device), images, labels,
                       10, Path(scratch) / "baseline")
        batches = baseline_batches(base, images, workers)

        def baseline_step(step: int, timer) -> None:
            with timer("data"):  # the DataLoader's crops and masks (its "masks" phase), as they arrive
                x, context, targets, centers = next(batches)
            base.update(step, x, context, targets, centers, timer)

        variants.append(Variant("baseline", base, baseline_step))
        print(f"{', '.join(v.name for v in variants)}: batch {batch} on {base.device}, {warmup} warm-up steps each, "
              f"then {rounds} rounds of {steps_per_round} timed steps; baseline with {workers} DataLoader workers",
              flush=True)
        results = measure(variants, warmup, rounds, steps_per_round, breakdown_steps)
        results[-1]["host_data_ms_per_batch"] = round(baseline_host_ms(base, images), 1)
        for r in results[:-1]:
            r["host_data_ms_per_batch"] = round(r["phase_ms"]["data"] + r["phase_ms"]["masks"], 1)
    return {"device": describe(base.device), "torch": torch.__version__, "compile": compile_mode,
            "dataloader_workers": workers, "model": "ViT-Tiny/4 at 32 px, predictor 192 x 6",
            "command": " ".join(["python -m pipeline.bench.pretrain", *sys.argv[1:]]),
            "date": time.strftime("%Y-%m-%d"), "results": results}


def print_table(report: dict) -> None:
    print(f"\npretraining throughput on {report['device']}, compile={report['compile']}")
    header = ["variant", "img/s", "step ms", *[f"{p} ms" for p in PHASES], "GFLOP/img", "TFLOP/s", "peak mem GB"]
    print(" | ".join(header))
    for r in report["results"]:
        memory = r.get("peak_gpu_memory_gb", r["process_peak_rss_gb"])
        cells = [r["variant"], f"{r['images_per_s']:,.1f}", f"{r['step_ms']:,.0f}",
                 *[f"{r['phase_ms'][p]:,.1f}" for p in PHASES], f"{r['gflops_per_image']:.2f}",
                 f"{r['tflops_per_s']:.3f}", f"{memory:.2f}"]
        print(" | ".join(cells))
    by_variant = {r["variant"]: r for r in report["results"]}
    ours, base = by_variant[methods.baseline()], by_variant["baseline"]
    ratios = [f"{methods.display_name(methods.baseline())} vs baseline loop: "
              f"{ours['images_per_s'] / base['images_per_s']:.2f}x"]
    ratios += [f"{methods.display_name(r['variant'])} vs {methods.display_name(methods.baseline())}: "
               f"{r['images_per_s'] / ours['images_per_s']:.2f}x" for r in report["results"]
               if r is not ours and r is not base]
    print("; ".join(ratios))
    print(f"making one batch of crops and masks: {ours['host_data_ms_per_batch']:,.1f} ms here (data + masks phases) "
          f"vs {base['host_data_ms_per_batch']:,.1f} ms of host CPU for the baseline's Dataset and collate, "
          f"which its DataLoader workers spend beside training")


def _ms(value: float) -> str:
    return f"{value / 1000:.2f} s" if value >= 1000 else f"{value:.0f} ms" if value >= 100 else f"{value:.1f} ms"


def table_md(report: dict) -> str:
    """The report as the README's Markdown table (it copies reports/benchmarks/pretrain-<device>.md)."""
    gpu = any("peak_gpu_memory_gb" in r for r in report["results"])
    head = ["variant", "images/s", "step", "data", "masks", "forward", "backward", "optimiser", "EMA", "GFLOP/image",
            "TFLOP/s", "peak GPU memory" if gpu else "peak RSS"]
    rows = []
    for r in report["results"]:
        baseline = r["variant"] == "baseline"
        phases = [_ms(r["phase_ms"][p]) for p in PHASES]
        if baseline:  # the loop's data phase is its wait on the DataLoader; its masks come with the batch
            phases[0], phases[1] = f"{phases[0]} (waiting)", "—"
        rows.append(["baseline loop" if baseline else methods.display_name(r["variant"]),
                     f"{r['images_per_s']:,.0f}" if r["images_per_s"] >= 1000 else f"{r['images_per_s']:.1f}",
                     _ms(r["step_ms"]), *phases, f"{r['gflops_per_image']:.2f}",
                     f"{r['tflops_per_s']:.1f}" if r["tflops_per_s"] >= 1 else f"{r['tflops_per_s']:.3f}",
                     f"{r.get('peak_gpu_memory_gb', r['process_peak_rss_gb']):.2f} GB"])
    steps = report["results"][0]["timed_steps"]
    return (f"{report['device']}, batch {report['results'][0]['batch']}, {steps} timed steps per variant, "
            f"compile {report['compile']}, {report['date']} (`{report['command']}`):\n\n"
            + markdown_table(head, rows, align_right_from=1) + "\n")


def main(argv: list[str] | None = None) -> None:
    cuda = torch.cuda.is_available()
    parser = argparse.ArgumentParser(prog="python -m pipeline.bench.pretrain", description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=512 if cuda else 128)
    parser.add_argument("--rounds", type=int, default=5 if cuda else 6, help="alternating timing rounds")
    parser.add_argument("--steps", type=int, default=20 if cuda else 3, help="timed steps per variant and round")
    parser.add_argument("--warmup", type=int, default=10 if cuda else 3, help="untimed steps first (compilation)")
    parser.add_argument("--breakdown-steps", type=int, default=10 if cuda else 2)
    parser.add_argument("--compile", choices=("auto", "on", "off"), default="auto")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--workers", type=int, default=min(8, max(1, len(os.sched_getaffinity(0)))),
                        help="the baseline's DataLoader workers")
    parser.add_argument("--out", type=Path, default=Path("reports/benchmarks"))
    parser.add_argument("--table", type=Path, metavar="JSON", help="measure nothing: write the .md table of this "
                        "committed report beside it")
    args = parser.parse_args(argv)
    if args.table:
        report = json.loads(args.table.read_text())
        print(f"wrote {write_report(args.table.parent, 'pretrain', report, table_md(report)).with_suffix('.md')}")
        return
    report = run(args.batch, args.rounds, args.steps, args.warmup, args.breakdown_steps, args.compile, args.device,
                 args.workers)
    print_table(report)
    out = write_report(args.out, "pretrain", report, table_md(report))
    print(f"wrote {out} and {out.with_suffix('.md')}")


if __name__ == "__main__":
    main()
