"""A swept method's collected sweep (reports/sweep/<leaf>_sweep.csv): its points, its table and its figure.

The registry names the param a method's sweep varies (`sweep`, "<block>.<leaf>"; its leaf names the
experiments, <leaf>-<value>, and the files); `python -m pipeline.report.sweep` collects the experiments
into the CSV (pipeline/report/sweep.py) and the report draws and tables it from there. A point is one
experiment: the method's target-encoder top-1 on the pretraining dataset (mean +- std over seeds), the
baseline's from the same experiment, the method's registry facts (pretraining summaries, mean over
seeds) and the multi-information of its pooled test features (probe records).
"""
from __future__ import annotations

import math
import statistics
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import pandas as pd

from pipeline import artifacts, methods
from pipeline.methods import Method
from pipeline.report.facts import fact_format, method_facts
from pipeline.report.tables import DASH


def leaf(method: Method) -> str:
    """The swept param's last name: "<leaf>" of "<block>.<leaf>" (the table's first header)."""
    return str(method.sweep).rsplit(".", 1)[-1]


def sweep_name(method: Method) -> str:
    """The stem of the sweep's CSV and figure, "<leaf>_sweep"."""
    return f"{leaf(method)}_sweep"


def experiment_prefix(method: Method) -> str:
    """What the sweep's DVC experiments are named with, "<leaf>-" (`dvc exp run -n <leaf>-0.1`)."""
    return f"{leaf(method)}-"


def sweep_csv(method: Method, reports: Path = artifacts.REPORTS) -> Path:
    return reports / "sweep" / f"{sweep_name(method)}.csv"


def columns(method: Method) -> tuple[str, ...]:
    return ("experiment", "value", "seeds", "top1_mean", "top1_std", "baseline_top1_mean", *method_facts(method),
            "multi_information")


def _mean(values: list[float]) -> float:
    values = [v for v in values if v is not None and not math.isnan(v)]
    return statistics.fmean(values) if values else math.nan


def sweep_point(name: str, value: float, top1: list[float], baseline_top1: list[float], summaries: list[dict],
                multi_information: list[float], facts: Sequence[str]) -> dict:
    """One experiment's row: per-seed values in, seed means (and the top-1's std) out; `facts` are the
    summary keys to average (the method's registry facts)."""
    return {"experiment": name, "value": value, "seeds": len(top1), "top1_mean": _mean(top1),
            "top1_std": statistics.stdev(top1) if len(top1) > 1 else math.nan,
            "baseline_top1_mean": _mean(baseline_top1),
            **{k: _mean([s.get(k) for s in summaries]) for k in facts},
            "multi_information": _mean(multi_information)}


def sweep_frame(points: list[dict], method: Method) -> pd.DataFrame:
    """One row per value, by increasing value; `points` come in priority order (the first of a value wins:
    `collect` lists the workspace, then experiments newest first)."""
    frame = pd.DataFrame(points, columns=columns(method))
    return frame.drop_duplicates("value", keep="first").sort_values("value").reset_index(drop=True)


@dataclass(frozen=True)
class Sweep:
    """A method's collected sweep: one row per value of its swept param (`columns`)."""
    method: Method
    frame: pd.DataFrame

    @property
    def facts(self) -> list[str]:
        return [k for k in method_facts(self.method) if k in self.frame]

    def label(self, fact: str) -> str:
        return fact.replace("_", " ")


def read_sweep(method: Method, reports: Path = artifacts.REPORTS) -> Sweep | None:
    """The method's collected sweep, or None before one was collected (or when it holds no point)."""
    path = sweep_csv(method, reports)
    frame = pd.read_csv(path) if path.exists() else None
    return None if frame is None or frame.empty else Sweep(method, frame)


def sweep_table_md(sweep: Sweep) -> str:
    """The sweep as a Markdown table: value, experiment, seeds, top-1, the baseline's top-1, the facts, MI."""
    method, facts = sweep.method, sweep.facts
    header = [leaf(method), "experiment", "seeds", "top-1", f"{methods.display_name(methods.baseline())} top-1",
              *(sweep.label(k) for k in facts), "multi-information"]
    lines = ["| " + " | ".join(header) + " |",
             "| " + " | ".join("---" if name == "experiment" else "---:" for name in header) + " |"]
    for r in sweep.frame.to_dict("records"):
        cells = [f"{r['value']:g}", str(r["experiment"]), str(r["seeds"]),
                 f"{r['top1_mean']:.2f} ± {r['top1_std']:.2f}", f"{r['baseline_top1_mean']:.2f}",
                 *(DASH if math.isnan(r[k]) else fact_format(method, k).format(r[k]) for k in facts),
                 f"{r['multi_information']:.2f}"]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def sweep_caption(sweep: Sweep) -> str:
    """What the figure shows: "<method>'s <leaf> sweep: top-1, <facts>, multi-information"."""
    shown = ", ".join(["top-1", *(sweep.label(k) for k in sweep.facts), "multi-information"])
    return f"{sweep.method.name}'s {leaf(sweep.method)} sweep: {shown}"


def plot_sweep(sweep: Sweep, path: Path, dataset: str) -> None:
    """Top-1 (the baseline's as a dashed line), then each fact and the multi-information, against the value."""
    from pipeline.report.figures import pyplot, save

    method, frame = sweep.method, sweep.frame
    panels = [*sweep.facts, "multi_information"]
    labels = [*(sweep.label(k) for k in sweep.facts), "multi-information (nats)"]
    plt = pyplot()
    fig, axes = plt.subplots(1, 1 + len(panels), figsize=(3.75 * (1 + len(panels)), 3.4))
    try:
        value = frame["value"].where(frame["value"] > 0)  # 0 has no place on a log axis
        ax = axes[0]
        ax.errorbar(value, frame["top1_mean"], yerr=frame["top1_std"], marker="o", capsize=3, label=method.name)
        ax.axhline(frame["baseline_top1_mean"].mean(), color="grey", ls="--",
                   label=methods.display_name(methods.baseline()))
        ax.set_ylabel(f"{dataset} top-1 (%)")
        ax.legend(fontsize=8)
        for ax, column, label in zip(axes[1:], panels, labels):
            ax.plot(value, frame[column], marker="o")
            ax.set_ylabel(label)
        for ax in axes:
            ax.set_xscale("log")
            ax.set_xlabel(str(method.sweep))
            ax.grid(alpha=0.3)
        fig.suptitle(f"{method.name}'s {leaf(method)} sweep (each point one DVC experiment, mean over seeds)",
                     fontsize=10)
        fig.tight_layout()
        save(fig, path)
    finally:
        plt.close(fig)
