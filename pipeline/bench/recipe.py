"""One trial of the pretraining-recipe sweep (not a DVC stage): pretrain a method in-process exactly as the
pretrain stage does (same Trainer, same registry build), probe the target AND the context encoder's
features (pooled as params.yaml's `extract` block says) with the repo's converged probe, and append a row to
reports/recipe/results.csv (the measurements params.yaml's recipe comments cite).

Usage (repository root, after `dvc repro prepare@fashion_mnist`):
    python -m pipeline.bench.recipe <trial> <method> <seed> [key=value ...]
    e.g. python -m pipeline.bench.recipe ema_0.9 <method> 0 'pretrain.ema=[0.9, 0.999]'

Values are YAML (`[0.9, 0.999]`, `true`, `0.001`). $RECIPE_RESULTS names another results file (e.g.
reports/recipe/sparsity.csv). A row holds the method's own facts (its registry `facts` and the facts its
`goals` bound) where its summary has them; an existing file keeps its own columns, each filled from the
summary where it holds that key. An untrained reference method probes its encoder of that seed and init.
Checkpoints go to a temporary folder ($SPARSEJEPA_CHECKPOINTS/<trial>, default /tmp/recipe_ckpt/<trial>),
deleted afterwards. Data: $RECIPE_DATA (default data/prepared/fashion_mnist).
"""
from __future__ import annotations

import csv
import json
import os
import shutil
import sys
import time
from pathlib import Path

import torch
import yaml

from pipeline import methods
from pipeline.artifacts.prepared import load_prepared
from pipeline.config.params import load_params
from pipeline.eval.features import pooled_features
from pipeline.eval.probe import run_probe
from pipeline.pretrain.signals import encoder_signals
from pipeline.pretrain.trainer import Trainer
from pipeline.report.facts import method_facts

ROOT = Path.cwd()
RESULTS = ROOT / os.environ.get("RECIPE_RESULTS", "reports/recipe/results.csv")
BASE_COLUMNS = ("trial", "method", "seed", "overrides", "target_top1", "context_top1", "target_l2",
                "target_on_edge", "context_l2", "context_on_edge", "wall_s", "final_objective", "ema_init_share",
                "position_share", "position_loss", "effective_rank", "feature_std", "online_top1", "final_loss_jepa")


def columns() -> tuple[str, ...]:
    """A new results file's header: the base columns, then every registry method's own facts."""
    every = [m for under in methods.pipelines() for m in methods.pipeline_methods(under)]
    return tuple(dict.fromkeys([*BASE_COLUMNS, *(k for m in every for k in method_facts(m))]))


def probe(encoder, data, params) -> tuple[float, float, bool]:
    cfg = params.extract
    feats = [pooled_features(encoder, getattr(data, f"{split}_images"), cfg.batch_size, cfg.layers, cfg.pooling,
                             label=f"features {split}") for split in ("train", "test")]
    result = run_probe(feats[0], torch.from_numpy(data.train_labels), feats[1], torch.from_numpy(data.test_labels),
                       data.num_classes, params.probe, params.seed, "cpu")
    return result.top1, result.l2, result.on_edge


def main(argv: list[str]) -> None:
    trial, key, seed, *pairs = argv
    overrides = {}
    for pair in pairs:
        k, v = pair.split("=", 1)
        overrides[k] = yaml.safe_load(v)
    method = methods.get(key)
    params = load_params([*method.params, "extract", "probe"], ROOT / "params.yaml", overrides).for_seed(int(seed))
    data = load_prepared(Path(os.environ.get("RECIPE_DATA", ROOT / "data/prepared/fashion_mnist")))
    images, labels = torch.from_numpy(data.train_images), torch.from_numpy(data.train_labels)

    row = {"trial": trial, "method": key, "seed": int(seed),
           "overrides": json.dumps(overrides)}
    summary: dict = {}  # the run's summary.json, as written
    if method.pretrained:
        ckpt = Path(os.environ.get("SPARSEJEPA_CHECKPOINTS", "/tmp/recipe_ckpt")) / trial / f"{key}_s{seed}"
        shutil.rmtree(ckpt, ignore_errors=True)
        try:
            trainer = Trainer(key, method.build, params, images, labels, data.num_classes, ckpt)
            result = trainer.run()
        finally:
            shutil.rmtree(ckpt, ignore_errors=True)
        s = result.summary
        summary = s.to_json()
        if params.pretrain.monitor_every:  # the online-probe trajectory, for a look at when the probe peaks
            hist = RESULTS.parent / "history" / f"{trial}_{key}_s{seed}.csv"
            hist.parent.mkdir(parents=True, exist_ok=True)
            names = sorted({k for r in result.history for k in r})
            with hist.open("w", newline="") as f:
                csv.DictWriter(f, names).writeheader()
                csv.DictWriter(f, names).writerows(result.history)
        row.update(wall_s=s.wall_s, final_objective=s.final_objective, ema_init_share=s.ema_init_share,
                   position_share=s.position_share, position_loss=s.position_loss,
                   effective_rank=s.effective_rank, feature_std=s.feature_std, online_top1=s.online_top1_last,
                   final_loss_jepa=s.final_loss_jepa, **{k: s.value(k) for k in method_facts(method)})
        target, context = result.target_encoder.eval(), trainer.model.encoder.eval()
    else:
        target = context = method.build(params, data.image_size).eval()
        sig = encoder_signals(target, images, labels, data.num_classes, params.pretrain.loss
                              if "pretrain" in params.loaded else "smooth_l1")
        row.update(wall_s=0.0, ema_init_share=1.0, **{k: sig[k] for k in ("position_share", "position_loss",
                                                                           "effective_rank", "feature_std")},
                   online_top1=sig["online_top1"])
    started = time.perf_counter()
    row["target_top1"], row["target_l2"], row["target_on_edge"] = probe(target, data, params)
    if context is target:
        row["context_top1"], row["context_l2"], row["context_on_edge"] = (row["target_top1"], row["target_l2"],
                                                                          row["target_on_edge"])
    else:
        row["context_top1"], row["context_l2"], row["context_on_edge"] = probe(context, data, params)
    print(f"{trial} {key} seed {seed}: target {row['target_top1']:.2f} context {row['context_top1']:.2f} "
          f"(probes {time.perf_counter() - started:.0f}s) position_share {row['position_share']:.3f} "
          f"ema_init_share {row['ema_init_share']:.3f}", flush=True)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    new = not RESULTS.exists()
    # An existing file keeps its own columns (an older sweep's): a row never shifts under another header.
    header = columns() if new else next(csv.reader(RESULTS.open()))
    row.update({k: summary[k] for k in header if k in summary and k not in row})
    with RESULTS.open("a", newline="") as f:
        writer = csv.DictWriter(f, header, extrasaction="ignore")
        if new:
            writer.writeheader()
        writer.writerow({k: (f"{v:.6g}" if isinstance(v, float) else v) for k, v in row.items()})


if __name__ == "__main__":
    main(sys.argv[1:])
