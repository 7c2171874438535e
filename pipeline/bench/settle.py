"""Where is the group lasso's fixed point? (issue 18, item 1; not a DVC stage.) Pretrain SparseJEPA as the pretrain
stage does, then freeze the encoders and the predictor and move the maps alone on fresh batches and masks, logging
every `every` steps the zero fraction, the support's changes and the KKT check: at the fixed point a live column's
averaged JEPA gradient has norm lambda / (G*K) and a zero column's at most that (`grad_live_mean_ratio`,
`grad_zero_max_ratio`: those norms over the threshold). Three rules move the maps:

- `prox` (the pretraining's own): momentum proximal SGD at a constant step. Its iterate keeps one batch's worth of
  noise, so columns whose gradient sits near the threshold are cut and revived without end.
- `rda`: regularised dual averaging (Xiao 2010, JMLR 11) centred on the pretrained maps W0: after t batches,
  W = prox_{a_t * lambda/(G*K)}(W0 - a_t * gbar_t), gbar_t the mean of all t gradients, a_t = step * sqrt(t) (its
  first step is prox's without momentum). A column is zero iff ||W0_j / a_t - gbar_j|| <= lambda / (G*K), which
  as a_t grows is the selection rule itself, read on an average whose noise falls as 1/sqrt(t); on convex
  problems dual averaging identifies the solution's support where proximal SGD does not (Lee and Wright 2012,
  JMLR 13). Here the maps' problem, the rest held fixed, is not convex: the bench measures whether it settles.
- `lazy`: the same with a_t = step * t, dual averaging at a constant step: W = prox_{step * t * lambda/(G*K)}(W0 -
  step * (sum of the t gradients)). The anchor's share of the test falls as 1/t rather than 1/sqrt(t), so
  pretrained maps that are large against a_t * lambda / (G*K) stop holding up columns sooner.

    python -m pipeline.bench.settle <trial> <method> <seed> <steps> <step> [key=value ...] [--setting NAME]
        [--rule RULE]
        # <method>: a registry method with maps to settle (one that reads params.yaml's `sparsity`); appends its
        # trajectory to reports/recipe/settle.csv ($RECIPE_DATA: the prepared data, as the recipe's;
        # --setting: a named setting's pretraining params (pipeline/settings/), on data prepared for it)
    python -m pipeline.bench.settle --table
        # reports/recipe/settle.md from it: per run, the zero fraction after pretraining and as the maps settle

Nothing here reads a probe.
"""
from __future__ import annotations

import csv
import shutil
from pathlib import Path
from typing import Iterator

import pandas as pd
import torch

from pipeline import methods
from pipeline.artifacts.prepared import load_prepared
from pipeline.bench import key_values, take_option
from pipeline.bench.recipe import ROOT, data_dir, pretrain_resumable
from pipeline.bench.recipe_table import ratio
from pipeline.config.params import load_params
from pipeline.core.atomic import atomic_path
from pipeline.core.errors import PipelineError
from pipeline.core.hardware import to_device
from pipeline.model.functional import (column_ratios, dual_averaging_step_, fold_grad_into_mean_, prox_threshold,
                                       proximal_sgd_step_)
from pipeline.pretrain.augment import apply_augment, draw_augment
from pipeline.pretrain.masks import sample_masks
from pipeline.pretrain.trainer import Trainer
from pipeline.report.tables import DASH, markdown_table
from pipeline.runtime.cli import run_stage
from pipeline.settings import overrides as setting_overrides

OUT = ROOT / "reports/recipe/settle.csv"
RULES = {"prox": None, "rda": 0.5, "lazy": 1.0}  # dual averaging's a_t = step * t ** power
COLUMNS = ("trial", "seed", "setting", "overrides", "rule", "step_size", "step", "zero_fraction", "support_flips",
           "support_stable_steps", "loss_jepa", "grad_live_mean_ratio", "grad_zero_max_ratio")


def settle(trainer: Trainer, steps: int, step_size: float, every: int = 50, rule: str = "prox") -> Iterator[dict]:
    """The maps of `trainer`'s trained model alone for `steps` steps of `rule` (RULES) at `step_size`: a row where
    pretraining left them, then one every `every` steps (and the last), each yielded as soon as it is measured (a
    long run killed midway keeps its rows). Under dual averaging the KKT ratios read its average, the rule's own
    test."""
    model, cfg, sparsity = trainer.model, trainer.params.pretrain, trainer.params.sparsity
    embed = model.group_embed
    for p in model.parameters():
        p.requires_grad_(False)
    embed.weight.requires_grad_(True)
    threshold = prox_threshold(embed.weight, 1.0, sparsity.lambda_)  # lambda / (G*K), the KKT bound

    def row(step: int, support: torch.Tensor, flips: int, stable: int, loss: float) -> dict:
        live, dead = column_ratios(embed.grad_avg, support, threshold)
        return {"step": step, "zero_fraction": float((~support).float().mean()), "support_flips": flips,
                "support_stable_steps": stable, "loss_jepa": loss, "grad_live_mean_ratio": live,
                "grad_zero_max_ratio": dead}

    device = trainer.device
    anchor = embed.weight.detach().clone() if RULES[rule] is not None else None  # dual averaging's centre
    support, flips, changed_at = embed.column_norms() > 0, 0, 0
    yield row(0, support, 0, 0, float("nan"))  # where pretraining left the maps
    for step in range(1, steps + 1):
        idx = torch.randint(len(trainer.images), (cfg.batch_size,), generator=trainer.gen)
        boxes, flip = draw_augment(len(idx), trainer.images.shape[1:3], cfg.crop_scale, trainer.gen, cfg.hflip)
        masks = sample_masks(trainer.params.masks, len(idx), trainer.grid, trainer.gen)
        images = apply_augment(trainer.images[to_device(idx, device)], to_device(boxes, device),
                               None if flip is None else to_device(flip, device))
        out = model(images, *(to_device(t, device) for t in (masks.context, masks.targets, masks.target_centers)),
                    trainer.noise_gen)
        out["loss_jepa"].backward()
        if RULES[rule] is not None:
            fold_grad_into_mean_(embed.weight, embed.grad_avg, step)
            dual_averaging_step_(embed.weight, embed.grad_avg, anchor, step, step_size, sparsity.lambda_, RULES[rule])
        else:
            proximal_sgd_step_(embed.weight, embed.grad_avg, step_size, sparsity.lambda_, sparsity.momentum)
        now = embed.column_norms() > 0
        if bool((now != support).any()):
            flips, changed_at = flips + int((now != support).sum()), step
        support = now
        if step % every == 0 or step == steps:
            yield row(step, support, flips, step - changed_at, float(out["loss_jepa"].detach()))


def table_md(frame: pd.DataFrame, shown: tuple[int, ...] = (200, 600)) -> str:
    """One row per run: the zero fraction and the live columns' gradient ratio after pretraining (step 0), the
    zero fraction at the `shown` steps and the last, how many columns changed between zero and non-zero in all
    (a rule that only cuts changes each once) and in the second half of the steps (churn where the fraction has
    settled), when the support last changed, the last row's KKT ratios, and the JEPA loss at the first logged
    step and the last."""
    header = ["setting", "trial", "seed", "change", "rule", "map step", "zero after pretraining",
              "live grad / threshold after pretraining", *(f"zero at step {s}" for s in shown), "steps",
              "zero at the end", "column flips", "flips in the second half", "support unchanged (steps)",
              "live grad / threshold", "largest zero-column grad / threshold",
              "JEPA loss (one batch), first logged -> last"]
    rows = []
    for (setting, trial, seed, rule, _), run in frame.groupby(["setting", "trial", "seed", "rule", "step_size"],
                                                              sort=False):
        at = run.set_index("step")
        last = run.iloc[-1]
        half = at.iloc[abs(at.index - last["step"] / 2).argmin()]  # the logged step nearest the middle
        rows.append([setting, trial, str(seed), str(last["overrides"]), rule, f"{last['step_size']:g}",
                     f"{at.loc[0, 'zero_fraction']:.1%}", ratio(at.loc[0, "grad_live_mean_ratio"]),
                     *(f"{at.loc[s, 'zero_fraction']:.1%}" if s in at.index else DASH for s in shown),
                     str(int(last["step"])), f"{last['zero_fraction']:.1%}", f"{int(last['support_flips']):,}",
                     f"{int(last['support_flips'] - half['support_flips']):,}",
                     str(int(last["support_stable_steps"])),
                     ratio(last["grad_live_mean_ratio"]), ratio(last["grad_zero_max_ratio"]),
                     f"{run.loc[run['step'] > 0, 'loss_jepa'].iloc[0]:.4f} -> {last['loss_jepa']:.4f}"])
    return markdown_table(header, rows, align_right_from=5)


def setting_params(name: str | None, blocks: tuple[str, ...]) -> dict:
    """The named setting's overrides of the `blocks` the method reads ({} for none: the quick setting). The
    data it prepares (its `data` and `subsets` keys) must be what $RECIPE_DATA holds: main checks the size."""
    if name is None:
        return {}
    return {k: v for k, v in setting_overrides(name).items() if k.split(".")[0] in blocks}


def main(argv: list[str]) -> None:
    if argv == ["--table"]:
        if not OUT.is_file():
            raise PipelineError(f"{OUT} not found; run python -m pipeline.bench.settle <trial> <method> <seed> "
                                f"<steps> <step>")
        md = table_md(pd.read_csv(OUT))
        with atomic_path(OUT.with_suffix(".md")) as tmp:
            tmp.write_text(md + "\n")
        return print(md)
    setting, argv = take_option(argv, "--setting", "--setting standard (pipeline/settings/)")
    rule, argv = take_option(argv, "--rule", f"--rule {' or '.join(RULES)}")
    rule = rule or "prox"
    if rule not in RULES:
        raise PipelineError(f"--rule {rule} is not a rule; use one of {', '.join(RULES)}")
    if len(argv) < 5:
        raise PipelineError("usage: python -m pipeline.bench.settle <trial> <method> <seed> <steps> <step> "
                            "[key=value ...] [--setting NAME] [--rule prox|rda|lazy] | --table")
    trial, key, seed, steps, step_size, *pairs = argv
    method = methods.get(key)
    if "sparsity" not in method.params:
        with_maps = [m.key for m in methods.all_methods() if "sparsity" in m.params]
        raise PipelineError(f"{key} has no maps to settle (its registry entry reads no `sparsity` block); "
                            f"name one that has: {', '.join(with_maps)}")
    overrides = {**setting_params(setting, method.params), **key_values(pairs)}
    params = load_params(method.params, ROOT / "params.yaml", overrides).for_seed(int(seed))
    data = load_prepared(data_dir())
    wanted = setting_overrides(setting).get("data.image_size") if setting else None
    if wanted is not None and data.image_size != wanted:
        raise PipelineError(f"setting {setting} pretrains at {wanted} px but {data_dir()} holds {data.image_size} px "
                            f"images; point RECIPE_DATA at data prepared for it")
    trainer, _ = pretrain_resumable(key, params, data, Path("/tmp/settle_ckpt") / f"{trial}_s{seed}")
    new = not OUT.exists()
    OUT.parent.mkdir(parents=True, exist_ok=True)
    with OUT.open("a", newline="") as f:
        writer = csv.DictWriter(f, COLUMNS)
        if new:
            writer.writeheader()
        for row in settle(trainer, int(steps), float(step_size), rule=rule):
            writer.writerow({"trial": trial, "seed": seed, "setting": setting or "quick",
                             "overrides": " ".join(pairs) or "-", "rule": rule, "step_size": step_size,
                             **{k: f"{v:.6g}" if isinstance(v, float) else v for k, v in row.items()}})
            f.flush()
            print(trial, row, flush=True)
    shutil.rmtree(trainer.run_dir, ignore_errors=True)  # settled: the pretraining is no longer needed


if __name__ == "__main__":
    run_stage(main)
