"""The low-label linear probe: the linear probe fitted on a few labelled images per class.

With 10 or 100 labels per class the probe can no longer undo a bad geometry by fitting many weights on many
examples, so it tells an encoder whose classes are already compact from one whose classes are only linearly
separable given enough labels (the full probe reads a near-collapsed encoder like a random one).

Each draw takes `n` images per class from the linear probe's fitting split (seeded by the run seed, `n` and the
draw), chooses its penalty on the same validation split as the full probe (probe.search: the same grid, path
and plateau rule), and is scored on the test split. Features are standardised with the statistics of the whole
fitting split: they use no labels, and a few rows would give a noisy scale.
"""
from __future__ import annotations

import torch

from pipeline.eval.probe import DTYPE, Standardizer, accuracy, search, split_train_val
from pipeline.config.probe import ProbeConfig


def draw_per_class(labels: torch.Tensor, n: int, generator: torch.Generator) -> torch.Tensor | None:
    """Indices of `n` rows of every class present in `labels`, drawn without replacement; None when a class
    has fewer than `n` rows."""
    picked = []
    for c in labels.unique(sorted=True).tolist():
        rows = (labels == c).nonzero().flatten()
        if len(rows) < n:
            return None
        picked.append(rows[torch.randperm(len(rows), generator=generator)[:n].to(rows.device)])
    return torch.cat(picked)


def draw_seed(seed: int, per_class: int, draw: int) -> int:
    """One generator seed per (run seed, labels per class, draw): a draw does not depend on the others."""
    return (seed * 1_000_003 + per_class) * 1_009 + draw


def low_label_probe(fit_x: torch.Tensor, fit_y: torch.Tensor, val_x: torch.Tensor, val_y: torch.Tensor,
                    test_x: torch.Tensor, test_y: torch.Tensor, num_classes: int, per_class: tuple[int, ...],
                    draws: int, cfg: ProbeConfig, seed: int) -> dict[str, dict[str, list]]:
    """{str(n): {"top1": [...], "val_top1": [...], "l2": [...], "converged": [...]} one entry per draw} for every
    n of `per_class` that every class of the fitting split can supply (an n it cannot is left out); `converged`:
    whether the chosen penalty's fit reached `probe.tolerance`.

    The x are standardised features (fitting split's statistics), in the probe's dtype and device.
    """
    out = {}
    for n in per_class:
        runs: dict[str, list] = {"top1": [], "val_top1": [], "l2": [], "converged": []}
        for draw in range(draws):
            idx = draw_per_class(fit_y.cpu(), n, torch.Generator().manual_seed(draw_seed(seed, n, draw)))
            if idx is None:
                break
            idx = idx.to(fit_x.device)
            l2, chosen, trials, _ = search(fit_x[idx], fit_y[idx], val_x, val_y, num_classes, cfg)
            runs["top1"].append(accuracy(chosen, test_x, test_y))
            runs["val_top1"].append(trials[l2]["val_top1"])
            runs["l2"].append(l2)
            runs["converged"].append(chosen.converged)
        if runs["top1"]:
            out[str(n)] = runs
    return out


def run_low_label(train_x: torch.Tensor, train_y: torch.Tensor, test_x: torch.Tensor, test_y: torch.Tensor,
                  num_classes: int, cfg: ProbeConfig, seed: int,
                  device: torch.device | str = "cpu") -> dict[str, dict[str, list]]:
    """`low_label_probe` on the linear probe's own fitting and validation split of train (same seed)."""
    train_x, test_x = train_x.to(device, DTYPE), test_x.to(device, DTYPE)
    train_y, test_y = train_y.to(device), test_y.to(device)
    fit_idx, val_idx = (i.to(device) for i in split_train_val(len(train_x), cfg.val_fraction, seed))
    scale = Standardizer(train_x[fit_idx], cfg.standardize)
    return low_label_probe(scale(train_x[fit_idx]), train_y[fit_idx], scale(train_x[val_idx]), train_y[val_idx],
                           scale(test_x), test_y, num_classes, cfg.low_label, cfg.low_label_draws, cfg, seed)
