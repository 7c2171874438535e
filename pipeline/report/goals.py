"""The report's goals on the pretraining data, as Markdown bullets (pure).

Two kinds, both bounded by params.yaml's `report` block (pipeline/config/report.py):
  gains   every pretrained encoder's gain over the untrained references and over the pixel controls
  method  each method's registry `goals`: a pretraining fact (mean over seeds) against the bound its goal
          names by key, and, beside them, its target encoder within noise of the baseline's or above
"""
from __future__ import annotations

import math
from typing import Mapping

from pipeline.config.report import ReportConfig
from pipeline.core.errors import PipelineError
from pipeline.methods import Goal, Method
from pipeline.report.facts import mean_facts
from pipeline.report.stats import paired_difference
from pipeline.report.tables import (Row, Runs, against, controls, fmt_difference, method_name, references, row_label,
                                    top1_by_seed)

Facts = Mapping[str, Mapping[int, dict[str, float]]]  # {method: {seed: {fact: value}}}


def _met(ok: bool) -> str:
    return "met" if ok else "not met"


def gains_md(runs: Runs, rows: list[Row], dataset: str, config: ReportConfig) -> str:
    """Each pretrained encoder's gain on `dataset` over the untrained references and over the pixel controls
    (paired by seed, with its interval), against the goals: over the references and over the raw pixels, a goal
    is met when the mean gain reaches it; the interval says whether that mean is itself beyond noise."""
    lines = []
    for row in (r for r in rows if r.pretrained):
        mine = top1_by_seed(runs, row, dataset)
        parts = []
        for ref in references(rows):
            d = paired_difference(mine, top1_by_seed(runs, ref, dataset))
            parts.append(f"{fmt_difference(d)} over the {method_name(ref.method).lower()} "
                         f"(goal ≥ {config.min_gain_over_random:+g}: {_met(d.mean >= config.min_gain_over_random)})")
        for control in controls(rows):
            d = paired_difference(mine, against(runs, control, dataset, row))
            goal = (f" (goal ≥ {config.min_gain_over_pixels:+g}: {_met(d.mean >= config.min_gain_over_pixels)})"
                    if control.encoder == "raw" else "")
            parts.append(f"{fmt_difference(d)} over {_in_sentence(row_label(control))}{goal}")
        lines.append(f"- {row_label(row)}: " + "; ".join(parts))
    return "\n".join(lines)


def _in_sentence(label: str) -> str:
    """"Raw pixels" -> "raw pixels"; an acronym ("PCA of pixels") keeps its capitals."""
    return label if label[:2].isupper() else label[0].lower() + label[1:]


def bound(config: ReportConfig, goal: Goal) -> float:
    """The value of the params.yaml `report` key a goal names (report.<name>)."""
    name = goal.bound_param.removeprefix("report.")
    if not hasattr(config, name):
        raise PipelineError(f"a registry goal on '{goal.fact}' names {goal.bound_param}, which the `report` block "
                            f"does not have; add it to pipeline/config/report.py and params.yaml, or fix the goal "
                            f"in pipeline/methods/registry.yaml")
    return float(getattr(config, name))


def goal_md(goal: Goal, value: float, limit: float) -> str:
    """The goal's text of the value, then its bound and verdict: "<says> (goal ≥ 25%: met)"."""
    return (f"{goal.says.format(value=value)} (goal {'≥' if goal.at_least else '≤'} {goal.bound.format(limit)}: "
            f"{_met(goal.met(value, limit))})")


def method_goals_md(facts: Facts, runs: Runs, method_list: list[Method], dataset: str, baseline: str,
                    config: ReportConfig) -> str:
    """A line per method with registry goals whose facts every seed logged: each fact's mean over seeds
    against its bound, then (but for the baseline itself) its target encoder's paired difference to the
    baseline's on `dataset` (goal: within noise or above, i.e. the interval's upper end >= 0)."""
    base = top1_by_seed(runs, Row(baseline, "target"), dataset)
    lines = []
    for method in (m for m in method_list if m.goals):
        mean, _ = mean_facts(facts.get(method.key, {}))
        values = [mean.get(goal.fact, math.nan) for goal in method.goals]
        if any(math.isnan(v) for v in values):
            continue  # not logged (a record from before the method logged it)
        parts = [goal_md(goal, value, bound(config, goal)) for goal, value in zip(method.goals, values)]
        if method.key != baseline:
            d = paired_difference(top1_by_seed(runs, Row(method.key, "target"), dataset), base)
            kept = not math.isnan(d.high) and d.high >= 0
            parts.append(f"target top-1 {fmt_difference(d)} against {method_name(baseline)} target (goal: within "
                         f"noise or above: {_met(kept)})")
        lines.append(f"- {method_name(method.key)}: " + "; ".join(parts))
    return "\n".join(lines)


def goals_md(facts: Facts, runs: Runs, rows: list[Row], method_list: list[Method], dataset: str, baseline: str,
             config: ReportConfig) -> str:
    """Every goal line: the gains first, then the methods' own."""
    parts = (gains_md(runs, rows, dataset, config), method_goals_md(facts, runs, method_list, dataset, baseline,
                                                                    config))
    return "\n".join(p for p in parts if p)
