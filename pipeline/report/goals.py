"""The report's goals on the pretraining data, as Markdown bullets (pure).

Two kinds, both bounded by params.yaml's `report` block (pipeline/config/report.py):
  gains   `report.goals`: a target encoder's paired gain over a control or the untrained reference on one probe
  method  each method's registry `goals`: a pretraining fact (mean over seeds) against the bound its goal
          names by key, and, beside them, its target encoder within noise of the baseline's or above
"""
from __future__ import annotations

import math
from typing import Mapping

from pipeline.config.report import GainGoal, ReportConfig
from pipeline.core.errors import PipelineError
from pipeline.methods import Goal, Method
from pipeline.report.facts import mean_facts
from pipeline.report.stats import NON_INFERIOR, Difference, paired_difference
from pipeline.report.tables import (Row, Runs, against, controls, fmt_difference, fmt_points, method_name,
                                    references, row_label, score_by_seed, top1_by_seed)

Facts = Mapping[str, Mapping[int, dict[str, float]]]  # {method: {seed: {fact: value}}}


def _met(ok: bool) -> str:
    return "met" if ok else "not met"


def probe_scores(probe: str) -> tuple[str, str]:
    """A goal's probe -> (its test score, its validation score), as tables.score_by_seed names them."""
    if probe == "linear":
        return "top1", "val_top1"
    if probe == "knn":
        return "knn_top1", "knn_val_top1"
    n = probe.removeprefix("low_label_")
    return f"low_label:{n}", f"low_label_val:{n}"


def probe_label(probe: str) -> str:
    return {"linear": "linear probe", "knn": "k-NN"}.get(probe, f"{probe.removeprefix('low_label_')} labels per class")


def _mean(by_seed: Mapping) -> float:
    values = [v for v in by_seed.values() if not math.isnan(v)]
    return sum(values) / len(values) if values else math.nan


def subject(runs: Runs, rows: list[Row], goal: GainGoal, dataset: str, baseline: str) -> Row | None:
    """The target encoder a goal holds: the baseline's, or the pretrained one with the best validation mean."""
    targets = [r for r in rows if r.pretrained and r.encoder == "target"]
    if goal.of == "baseline":
        return next((r for r in targets if r.method == baseline), None)
    _, val = probe_scores(goal.probe)
    scored = [(_mean(score_by_seed(runs, r, dataset, val)), r) for r in targets]
    scored = [(v, r) for v, r in scored if not math.isnan(v)]
    return max(scored, key=lambda vr: vr[0])[1] if scored else None


def gain_goal_lines(runs: Runs, rows: list[Row], goal: GainGoal, dataset: str, baseline: str,
                    min_seeds: int, effect: float) -> list[str]:
    """One line per reference `goal.over` names: the paired gain, its interval, the bound and the verdict."""
    mine = subject(runs, rows, goal, dataset, baseline)
    test, _ = probe_scores(goal.probe)
    rule = (f"goal: ≥ {fmt_points(goal.points)} with its 95% interval above 0 over ≥ {min_seeds} seeds")
    if mine is None:
        return [f"- `{goal.name}`: no pretrained target encoder has {probe_label(goal.probe)} scores here ({rule}: "
                f"not met)"]
    others = references(rows) if goal.over == "untrained" else [r for r in controls(rows) if r.encoder == goal.over]
    chosen = " (best on validation)" if goal.of == "best" else ""
    lines = []
    for other in others:
        d = paired_difference(score_by_seed(runs, mine, dataset, test), against(runs, other, dataset, mine, test))
        ok = d.n >= min_seeds and d.mean >= goal.points and d.low > 0
        lines.append(f"- `{goal.name}`: {row_label(mine)}{chosen} − {_in_sentence(row_label(other))}, "
                     f"{probe_label(goal.probe)}: {fmt_difference(d)} ({rule}: {_met(ok)})"
                     f"{seeds_note(d, effect) if d.within_noise else ''}")
    return lines


def seeds_note(d: Difference, effect: float) -> str:
    """What an undecided comparison would need: "; 9 seeds would detect ±1.00 at this spread" (`effect` is
    params.yaml report.non_inferiority_margin: the same n resolves non-inferiority at that margin for a true
    difference of 0); empty where these seeds already detect it."""
    n = d.seeds_to_detect(effect)
    if n is None or n <= d.n:
        return ""
    return f"; {n} seeds would detect ±{effect:.2f} at this spread"


def gains_md(runs: Runs, rows: list[Row], dataset: str, baseline: str, config: ReportConfig) -> str:
    """params.yaml's `report.goals` on `dataset`, each with its bound and verdict."""
    return "\n".join(line for goal in config.gain_goals
                     for line in gain_goal_lines(runs, rows, goal, dataset, baseline, config.goal_min_seeds,
                                                 config.non_inferiority_margin))


def _in_sentence(label: str) -> str:
    """"Raw pixels" -> "raw pixels"; an acronym ("PCA of pixels") keeps its capitals."""
    return label if label[:2].isupper() else label[0].lower() + label[1:]


def bounds(config: ReportConfig, goal: Goal) -> tuple[float | None, float | None]:
    """The values of the params.yaml `report` keys a goal names (report.<name>): (at least, at most)."""
    def value(param: str | None) -> float | None:
        if param is None:
            return None
        name = param.removeprefix("report.")
        if not hasattr(config, name):
            raise PipelineError(f"a registry goal on '{goal.fact}' names {param}, which the `report` block "
                                f"does not have; add it to pipeline/config/report.py and params.yaml, or fix the "
                                f"goal in pipeline/methods/registry.yaml")
        return float(getattr(config, name))
    return value(goal.at_least), value(goal.at_most)


def goal_md(goal: Goal, value: float, low: float | None, high: float | None) -> str:
    """The goal's text of the value, then its bounds and verdict: "<says> (goal 25%-90%: met)"."""
    fmt = goal.bound.format
    rule = (f"{fmt(low)}-{fmt(high)}" if low is not None and high is not None
            else f"≥ {fmt(low)}" if low is not None else f"≤ {fmt(high)}")
    return f"{goal.says.format(value=value)} (goal {rule}: {_met(goal.met(value, low, high))})"


def method_goals_md(facts: Facts, runs: Runs, method_list: list[Method], dataset: str, baseline: str,
                    config: ReportConfig) -> str:
    """A line per method with registry goals whose facts every seed logged: each fact's mean over seeds
    against its bound, then (but for the baseline itself) its target encoder's paired difference to the
    baseline's on `dataset` (goal: non-inferior, the 95% interval's low end above -report.non_inferiority_margin;
    else "worse" where the whole interval is below 0, "undetermined" where it is not)."""
    base = top1_by_seed(runs, Row(baseline, "target"), dataset)
    lines = []
    for method in (m for m in method_list if m.goals):
        mean, _ = mean_facts(facts.get(method.key, {}))
        values = [mean.get(goal.fact, math.nan) for goal in method.goals]
        if any(math.isnan(v) for v in values):
            continue  # not logged (a record from before the method logged it)
        parts = [goal_md(goal, value, *bounds(config, goal)) for goal, value in zip(method.goals, values)]
        if method.key != baseline:
            d = paired_difference(top1_by_seed(runs, Row(method.key, "target"), dataset), base)
            margin = config.non_inferiority_margin
            verdict = d.non_inferiority(margin)
            outcome = ("met" + verdict.removeprefix(NON_INFERIOR) if verdict.startswith(NON_INFERIOR)
                       else f"not met, {verdict}")  # "met, better" where the interval lies above 0
            parts.append(f"target top-1 {fmt_difference(d)} against {method_name(baseline)} target (goal: "
                         f"non-inferior, 95% interval above -{margin:.2f}: {outcome})"
                         f"{seeds_note(d, margin) if verdict == 'undetermined' else ''}")
        lines.append(f"- {method_name(method.key)}: " + "; ".join(parts))
    return "\n".join(lines)


def goals_md(facts: Facts, runs: Runs, rows: list[Row], method_list: list[Method], dataset: str, baseline: str,
             config: ReportConfig) -> str:
    """Every goal line: the gains first, then the methods' own."""
    parts = (gains_md(runs, rows, dataset, baseline, config),
             method_goals_md(facts, runs, method_list, dataset, baseline, config))
    return "\n".join(p for p in parts if p)
