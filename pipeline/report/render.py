"""The report's renderer: the read Report and its drawn figures -> reports/results.md.

The prose lives in results.md.tmpl beside this file; here is only what fills each of its blocks (the
tables of tables.py, the goals of goals.py, the sweeps' tables, the run facts and the figure list).
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

from pipeline import methods
from pipeline.report.draw import Figure
from pipeline.report.goals import goals_md
from pipeline.report.read import Report
from pipeline.report.sweep_results import Sweep, leaf, sweep_table_md
from pipeline.report.tables import (DASH, comparisons, data_table_md, diagnostics_table_md, differences_table_md,
                                    fmt_duration, method_name, pretrain_table_md, probe_check_md,
                                    probe_differences_table_md, probes_table_md, results_table_md)
from pipeline.report.template import fill

TEMPLATE = Path(__file__).with_name("results.md.tmpl")

_ENV_LABELS = {
    "setting": "Setting",
    "pretrain_dataset": "Pretraining data",
    "device": "Hardware",
    "torch": "PyTorch",
    "date": "Date",
    "wall_s": "Pretraining wall time per seed",
}


def environment_md(environment: Mapping[str, Any]) -> str:
    """Render whatever run facts the caller passes as a short bullet list, in the given order."""
    return "\n".join(f"- {_ENV_LABELS.get(key, key)}: {_env_value(key, value)}" for key, value in environment.items())


def _env_value(key: str, value: Any) -> str:
    if isinstance(value, Mapping):
        return ", ".join(f"{method_name(str(k))} {_env_value(key, v)}" for k, v in value.items())
    if isinstance(value, (list, tuple)):
        return ", ".join(_env_value(key, v) for v in value)
    if key.endswith("wall_s") and isinstance(value, (int, float)):
        return fmt_duration(float(value))
    return str(value)


def _sweep_block(sweep: Sweep, dataset: str) -> dict:
    return {"title": leaf(sweep.method).capitalize(), "method": sweep.method.name, "leaf": leaf(sweep.method),
            "dataset": dataset, "baseline": method_name(methods.baseline()), "table": sweep_table_md(sweep)}


def probe_settings(report: Report) -> dict:
    """The k-NN and low-label settings and the probed encoders the prose names, as the records cannot say them."""
    probe = report.setting.probe
    return {"knn_k": probe.knn_k, "knn_temperature": f"{probe.knn_temperature:g}", "draws": probe.low_label_draws,
            "context_note": ", *context* the encoder trained by gradient" if "context" in report.setting.encoders
            else "; this setting leaves the context encoder unprobed (params.yaml `extract.encoders`)"}


def render(report: Report, figures: list[Figure], environment: Mapping[str, Any], link: Path) -> str:
    """results.md: `figures` are listed as links under `link` (their folder as seen from the repository root)."""
    setting, rows, runs = report.setting, report.rows, report.runs
    datasets, pretrain, baseline = setting.datasets, setting.pretrain_dataset, methods.baseline()
    shown = report.names.get(pretrain, pretrain)
    goals = ""
    if pretrain in datasets:  # goals are held on the pretraining data, when it is probed
        environment = {**environment, "pretrain_dataset": shown}
        goals = goals_md(report.facts, runs, rows, report.methods, pretrain, baseline, setting.report)
    n = len(setting.seeds)
    return fill(TEMPLATE, {
        "results": {"n_seeds": n, "plural": "s" if n != 1 else "", "seeds": ", ".join(map(str, setting.seeds)),
                    "dash": DASH, "baseline": method_name(baseline),
                    "results_table": results_table_md(report.summary, rows, datasets),
                    "probe_check": probe_check_md(runs, rows, datasets),
                    "probes_table": probes_table_md(report.summary, rows, datasets),
                    **probe_settings(report),
                    "differences_table": differences_table_md(runs, comparisons(rows, baseline), datasets)},
        "goals": {"pretrain_dataset": shown, "goals": goals} if goals else None,
        "probe_differences": {"pretrain_dataset": shown, "table": probe_differences_table_md(
            runs, comparisons(rows, baseline), pretrain)} if pretrain in datasets else None,
        "data": {"data_table": data_table_md(runs, datasets)},
        "run": {"environment": environment_md(environment)} if environment else None,
        "pretraining": {"pretrain_table": pretrain_table_md(report.facts, runs, rows, datasets, report.methods),
                        "diagnostics_table": diagnostics_table_md(report.facts, [m.key for m in report.methods])},
        "sweep": [_sweep_block(s, shown) for s in report.sweeps.values()],
        "figures": {"figures": ", ".join(f"`{(link / f.path.name).as_posix()}` ({f.caption})" for f in figures)}
                   if figures else None,
    })
