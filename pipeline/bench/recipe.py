"""One trial of the pretraining-recipe sweep (not a DVC stage): pretrain a method in-process exactly as the
pretrain stage does (same Trainer, same registry build), probe the target AND the context encoder's
features (pooled as params.yaml's `extract` block says) on the validation split, and append a row to
reports/recipe/validation.csv.

Choices are made on validation: every probe here (the full linear probe, k-NN, the low-label probe at each
`probe.low_label` size) is fitted on the probe's fitting split of the pretraining data's train split and
scored on its held-out validation split (`probe.val_fraction`, carved by the run seed), never on test. The
linear probe's `val_top1` is the best over its penalty path, so it is a little optimistic; k-NN has nothing
to choose. `--test` also reads the test split (a final configuration, once), as the earlier trials in
reports/recipe/results.csv and sparsity.csv did for every trial; `--no-probe` records the pretraining alone
(its facts and signals; the probe columns stay empty); `--keep DIR` also keeps the target encoder and the
outputs.json in the pipeline's layout under DIR (DIR/data/models/..., DIR/reports/pretrain/...), for
`python -m pipeline.bench.support_stability`.

Usage (repository root, after `dvc repro prepare@fashion_mnist`):
    python -m pipeline.bench.recipe <trial> <method> <seed> [key=value ...] [--test | --no-probe] [--keep DIR]
    python -m pipeline.bench.recipe <trial> pixels <seed>      # the raw-pixel control, same probes
    e.g. python -m pipeline.bench.recipe ema_0.9 <method> 0 'pretrain.ema=[0.9, 0.999]'

Values are YAML (`[0.9, 0.999]`, `true`, `0.001`). $RECIPE_RESULTS names another results file (e.g.
reports/recipe/sparsity.csv). A row holds the method's own facts (its registry `facts` and the facts its
`goals` bound) where its summary has them; an existing file keeps its own columns, each filled from the
summary where it holds that key. An untrained reference method probes its encoder of that seed and init.
Checkpoints go to $SPARSEJEPA_CHECKPOINTS/<trial>/<method>_s<seed>/<run fingerprint> (default
/tmp/recipe_ckpt/...): a killed trial, run again with the same arguments, resumes (after pretraining: at its
end); the folder is deleted once the trial's row is written. Data: $RECIPE_DATA (default data/prepared/fashion_mnist).
"""
from __future__ import annotations

import csv
import json
import os
import shutil
import time
from pathlib import Path

import torch

from pipeline import artifacts, methods
from pipeline.artifacts import PIXELS
from pipeline.artifacts.encoder import write_encoder
from pipeline.artifacts.prepared import PreparedDataset, load_prepared
from pipeline.artifacts.records import write_outputs
from pipeline.bench import key_values, take_option
from pipeline.config.params import Params, load_params
from pipeline.core.errors import PipelineError
from pipeline.eval.features import is_grey, pixel_features, pooled_features
from pipeline.eval.knn import knn_top1
from pipeline.eval.low_label import low_label_probe
from pipeline.eval.probe import DTYPE, Standardizer, run_probe, search, split_train_val
from pipeline.pretrain import checkpoint
from pipeline.pretrain.signals import encoder_signals
from pipeline.pretrain.trainer import TrainResult, Trainer
from pipeline.report.facts import method_facts
from pipeline.runtime.cli import run_stage

ROOT = Path.cwd()
RESULTS = ROOT / os.environ.get("RECIPE_RESULTS", "reports/recipe/validation.csv")
SCORES = ("val_top1", "knn_val_top1", "low_label_10_val_top1", "low_label_100_val_top1", "l2", "on_edge", "top1")
BASE_COLUMNS = ("trial", "method", "seed", "overrides", *(f"{e}_{k}" for e in ("target", "context") for k in SCORES),
                "wall_s", "final_objective", "ema_init_share", "position_share", "position_loss", "effective_rank",
                "feature_std", "online_top1", "final_loss_jepa")


def columns() -> tuple[str, ...]:
    """A new results file's header: the base columns, then every registry method's own facts."""
    every = [m for under in methods.pipelines() for m in methods.pipeline_methods(under)]
    return tuple(dict.fromkeys([*BASE_COLUMNS, *(k for m in every for k in method_facts(m))]))


def features(encoder, images, params, split: str) -> torch.Tensor:
    cfg = params.extract
    return pooled_features(encoder, images, cfg.batch_size, cfg.layers, cfg.pooling, label=f"features {split}")


def validation_scores(train_x: torch.Tensor, train_y: torch.Tensor, num_classes: int, params) -> dict:
    """Every probe fitted on the fitting split and scored on the validation split (the probe's own split)."""
    cfg = params.probe
    fit_idx, val_idx = split_train_val(len(train_x), cfg.val_fraction, params.seed)
    x = train_x.to(DTYPE)
    scale = Standardizer(x[fit_idx], cfg.standardize)
    fx, fy, vx, vy = scale(x[fit_idx]), train_y[fit_idx], scale(x[val_idx]), train_y[val_idx]
    l2, _, trials, on_edge = search(fx, fy, vx, vy, num_classes, cfg)
    out = {"val_top1": trials[l2]["val_top1"], "l2": l2, "on_edge": on_edge,
           "knn_val_top1": knn_top1(train_x[fit_idx], fy, train_x[val_idx], vy, num_classes, cfg.knn_k,
                                    cfg.knn_temperature)}
    # The low-label probe's `val_top1` per draw is its score on the validation split (its test rows unused here).
    for n, runs in low_label_probe(fx, fy, vx, vy, vx, vy, num_classes, cfg.low_label, cfg.low_label_draws, cfg,
                                   params.seed).items():
        out[f"low_label_{n}_val_top1"] = sum(runs["val_top1"]) / len(runs["val_top1"])
    return out


def probe(encoder, data, params, test: bool) -> dict:
    """The encoder's validation scores, and with `test` its full linear probe's test top-1 (`top1`)."""
    train_x, train_y = features(encoder, data.train_images, params, "train"), torch.from_numpy(data.train_labels)
    out = validation_scores(train_x, train_y, data.num_classes, params)
    if test:
        out["top1"] = run_probe(train_x, train_y, features(encoder, data.test_images, params, "test"),
                                torch.from_numpy(data.test_labels), data.num_classes, params.probe, params.seed).top1
    return out


def pretrain_resumable(key: str, params: Params, data: PreparedDataset, root: Path) -> tuple[Trainer, TrainResult]:
    """Pretrain registry method `key` as the pretrain stage does: its checkpoints under `root`, in a folder named
    by the run's fingerprint (method, params, data, code, as the stage names its own), so a killed trial resumes
    where it stopped and a changed one never resumes a foreign state. The caller removes `trainer.run_dir` when
    it no longer needs the run (a trial killed after pretraining then resumes at its end). The trainer, holding
    the trained model, and its result."""
    method = methods.get(key)
    run_dir = root / checkpoint.fingerprint(checkpoint.run_identity(method, params, data.meta))
    trainer = Trainer(key, method.build, params, torch.from_numpy(data.train_images),
                      torch.from_numpy(data.train_labels), data.num_classes, run_dir)
    return trainer, trainer.run()


def parse(argv: list[str]) -> tuple[str, str, str, dict, bool, bool, Path | None]:
    """(trial, method, seed, overrides, test, probed, keep) from the command line."""
    keep, argv = take_option(argv, "--keep", "--keep DIR")
    test, probed = "--test" in argv, "--no-probe" not in argv
    args = [a for a in argv if a not in ("--test", "--no-probe")]
    if len(args) < 3:
        raise PipelineError("usage: python -m pipeline.bench.recipe <trial> <method> <seed> [key=value ...] "
                            "[--test | --no-probe] [--keep DIR]")
    trial, key, seed, *pairs = args
    return trial, key, seed, key_values(pairs), test, probed, Path(keep) if keep else None


def main(argv: list[str]) -> None:
    trial, key, seed, overrides, test, probed, keep = parse(argv)
    if key == PIXELS:
        return pixels_row(trial, int(seed), overrides, test)
    method = methods.get(key)
    params = load_params([*method.params, "extract", "probe"], ROOT / "params.yaml", overrides).for_seed(int(seed))
    data = load_prepared(data_dir())
    images, labels = torch.from_numpy(data.train_images), torch.from_numpy(data.train_labels)

    row = {"trial": trial, "method": key, "seed": int(seed),
           "overrides": json.dumps(overrides)}
    summary: dict = {}  # the run's summary.json, as written
    if method.pretrained:
        ckpt = Path(os.environ.get("SPARSEJEPA_CHECKPOINTS", "/tmp/recipe_ckpt")) / trial / f"{key}_s{seed}"
        trainer, result = pretrain_resumable(key, params, data, ckpt)
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
        if keep is not None:
            write_outputs(artifacts.outputs_path(key, int(seed), keep / "reports"), result.outputs)
            write_encoder(artifacts.encoder_path(key, int(seed), "target", keep / "data"), target, key,
                          {"params": params.flat(), "encoder": "target"})
    else:
        target = context = method.build(params, data.image_size).eval()
        sig = encoder_signals(target, images, labels, data.num_classes, params.pretrain.loss
                              if "pretrain" in params.loaded else "smooth_l1")
        row.update(wall_s=0.0, ema_init_share=1.0, **{k: sig[k] for k in ("position_share", "position_loss",
                                                                           "effective_rank", "feature_std")},
                   online_top1=sig["online_top1"])
    if probed:
        started = time.perf_counter()
        scores = {"target": probe(target, data, params, test)}
        scores["context"] = scores["target"] if context is target else probe(context, data, params, test)
        row.update({f"{encoder}_{k}": v for encoder, found in scores.items() for k, v in found.items()})
        print(f"{trial} {key} seed {seed}: validation top-1 target {row['target_val_top1']:.2f} context "
              f"{row['context_val_top1']:.2f}, k-NN target {row['target_knn_val_top1']:.2f} (probes "
              f"{time.perf_counter() - started:.0f}s) position_share {row['position_share']:.3f} "
              f"ema_init_share {row['ema_init_share']:.3f}", flush=True)
    else:
        print(f"{trial} {key} seed {seed}: pretrained, not probed", flush=True)
    append(row, summary)
    if method.pretrained:  # only once the row is written: a trial killed while probing resumes at its end
        shutil.rmtree(trainer.run_dir, ignore_errors=True)


def data_dir() -> Path:
    return Path(os.environ.get("RECIPE_DATA", ROOT / "data/prepared/fashion_mnist"))


def pixels_row(trial: str, seed: int, overrides: dict, test: bool) -> None:
    """The raw-pixel control under the same validation probes (the context columns stay empty)."""
    params = load_params(["probe"], ROOT / "params.yaml", overrides).for_seed(seed)
    data = load_prepared(data_dir())
    grey = is_grey(data.train_images)
    train_x, train_y = pixel_features(data.train_images, grey), torch.from_numpy(data.train_labels)
    scores = validation_scores(train_x, train_y, data.num_classes, params)
    if test:
        scores["top1"] = run_probe(train_x, train_y, pixel_features(data.test_images, grey),
                                   torch.from_numpy(data.test_labels), data.num_classes, params.probe, seed).top1
    print(f"{trial} raw pixels seed {seed}: validation top-1 {scores['val_top1']:.2f}, k-NN "
          f"{scores['knn_val_top1']:.2f}", flush=True)
    append({"trial": trial, "method": PIXELS, "seed": seed, "overrides": json.dumps(overrides), "wall_s": 0.0,
            **{f"target_{k}": v for k, v in scores.items()}}, {})


def append(row: dict, summary: dict) -> None:
    """One row onto RESULTS, under the file's own header."""
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
    run_stage(main)
