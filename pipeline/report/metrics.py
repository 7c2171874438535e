"""What DVC reads of a report: the compact metrics (reports[/<name>]/metrics.json) and the plots' tables.

dvc.yaml's only `metrics:` entry. It holds the headline, not the detail (the probe records stay committed
outputs under reports/probe, and results.csv holds every run): per probed dataset and results row (a pixel
control, or a method's encoder: `<method>` for the target encoder the paper probes, `<method>_context`) the
linear probe's top-1 mean and std over seeds, then per method the means of the pretraining facts its registry
goals bound (a zero fraction, groups per latent). Keys stay short because DVC makes each leaf a column
(`top1.<dataset>.<row>`, `top1_std.<dataset>.<row>`) and does not wrap a metric's header. The pretraining curves
DVC plots are one table, a column per method. (pure)
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Mapping

import pandas as pd

from pipeline.methods import Method
from pipeline.report.facts import mean_facts


def metrics_json(reports: Path) -> Path:
    """The compact metrics: its pipeline's only `metrics:` entry."""
    return reports / "metrics.json"


def plots_dir(reports: Path) -> Path:
    """The tables its pipeline's `plots:` read."""
    return reports / "plots"


def pretrain_curves_csv(reports: Path) -> Path:
    return plots_dir(reports) / "pretrain_curves.csv"


def row_label(method: str, encoder: str, control: bool) -> str:
    """A results row's key in the metrics: the control's name, the method for its target encoder, else
    <method>_<encoder>."""
    if control:
        return encoder
    return method if encoder == "target" else f"{method}_{encoder}"


def _number(value: Any, digits: int) -> float | None:
    """JSON has no NaN: a missing value (a control drawn once has no std) is left out as None."""
    value = float(value)
    return None if math.isnan(value) else round(value, digits)


def compact_metrics(summary: pd.DataFrame, controls: set[str], method_list: list[Method],
                    facts: Mapping[str, Mapping[int, dict[str, float]]]) -> dict:
    """{"top1": {dataset: {row: mean}}, "top1_std": {dataset: {row: std}}, "facts": {method: {fact: mean over
    seeds}}} from the report's summary frame (results_summary.csv: method, encoder, dataset, top1_mean,
    top1_std), the pixel controls' method key(s) in `controls`, and {method: {seed: facts}}. The means and the
    stds are separate trees so that `--keep 'top1\\.'` shows the means alone."""
    out: dict[str, dict] = {"top1": {}, "top1_std": {}}
    for r in summary.itertuples():
        row = row_label(r.method, r.encoder, r.method in controls)
        for tree, value in (("top1", r.top1_mean), ("top1_std", r.top1_std)):
            if (number := _number(value, 2)) is not None:
                out[tree].setdefault(r.dataset, {})[row] = number
    bounded = {}
    for method in method_list:
        keys = list(dict.fromkeys(g.fact for g in method.goals))
        if keys and method.key in facts:
            means, _ = mean_facts(facts[method.key])
            values = {k: _number(means[k], 4) for k in keys if k in means}
            bounded[method.key] = {k: v for k, v in values.items() if v is not None}
    return {**out, **({"facts": bounded} if bounded else {})}


# The history column DVC's pretraining plot shows: the prediction loss every method has (the objective adds
# each method's own terms, so it does not compare across methods).
CURVE = "loss_jepa"


def pretrain_curves(histories: Mapping[tuple[str, int], pd.DataFrame]) -> pd.DataFrame:
    """{(method, seed): history} -> one row per logged step, a column per method: its CURVE averaged over seeds
    (a step some seed has not logged averages the others)."""
    per_method: dict[str, list[pd.Series]] = {}
    for (method, _), history in histories.items():
        if CURVE in history and "step" in history:
            per_method.setdefault(method, []).append(history.set_index("step")[CURVE])
    columns = {m: pd.concat(series, axis=1).mean(axis=1) for m, series in per_method.items()}
    if not columns:
        return pd.DataFrame({"step": []})
    return pd.DataFrame(columns).sort_index().rename_axis("step").reset_index()
