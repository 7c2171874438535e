"""Pretraining facts: the scalars of a run's summary.json (its history.csv as fallback) the report shows.

Every pretrained method's trainer logs the same base facts (BASE); a method's own facts are what its
registry entry names (its `facts`, shown in the pretraining table, and the facts its `goals` hold to a
bound), so this module names none.
"""
from __future__ import annotations

import math
from string import Formatter
from typing import Any, Iterable, Mapping

import pandas as pd

from pipeline.artifacts.records import PretrainSummary, as_float
from pipeline.methods import Method
from pipeline.report.stats import spread

# Facts every run's summary holds: report key -> (summary key, history column; None: the summary's only).
BASE = {
    "img_per_s": ("img_per_s", "img_per_s"),
    "wall_s": ("wall_s", None),
    "steps": ("steps", "step"),
    "final_loss_jepa": ("final_loss_jepa", "loss_jepa"),  # the prediction loss alone, without a method's regularisers
    "feature_std": ("feature_std", "feature_std"),
    "effective_rank": ("effective_rank", "effective_rank"),
    "position_share": ("position_share", "position_share"),
    "position_loss": ("position_loss", "position_loss"),
    "ema_init_share": ("ema_init_share", None),
}


def method_facts(method: Method) -> list[str]:
    """The summary keys a method's registry entry names: its facts, then those its goals hold to a bound."""
    return list(dict.fromkeys([*method.facts, *(g.fact for g in method.goals)]))


def fact_format(method: Method, key: str) -> str:
    """How a method's fact is written: its Fact's format, else the one its goal's text gives {value}."""
    if key in method.facts:
        return method.facts[key].format
    for goal in method.goals:
        if goal.fact == key:
            spec = next((s for _, field, s, _ in Formatter().parse(goal.says) if field == "value"), None)
            if spec is not None:
                return f"{{:{spec}}}"
    return "{:g}"


def pretrain_facts(summary: PretrainSummary | None, history: pd.DataFrame | None,
                   keys: Iterable[str] = ()) -> dict[str, float]:
    """The base facts and `keys` (a method's own, each a summary key and history column) of one run: from
    summary.json first, the history's last value as fallback."""
    def last(column: str | None) -> float:
        if history is None or column is None or column not in history:
            return math.nan
        values = history[column].dropna()
        return float(values.iloc[-1]) if len(values) else math.nan

    def pick(key: str, column: str | None) -> float:
        value = math.nan if summary is None else summary.value(key)
        return last(column) if math.isnan(value) else value

    sources = {**BASE, **{k: (k, k) for k in keys}}
    return {name: pick(key, column) for name, (key, column) in sources.items()}


def mean_facts(facts: Mapping[Any, dict[str, float]]) -> tuple[dict[str, float], dict[str, float]]:
    """Per fact, the mean and std over seeds ({seed: facts} -> ({fact: mean}, {fact: std}))."""
    keys = sorted({k for f in facts.values() for k in f})
    spreads = {k: spread([as_float(f.get(k)) for f in facts.values()]) for k in keys}
    return {k: s.mean for k, s in spreads.items()}, {k: s.std for k, s in spreads.items()}
