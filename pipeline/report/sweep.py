"""Collect each swept method's sweep from DVC experiments into reports/sweep/<leaf>_sweep.csv.

A swept method is one whose registry entry names a `sweep` param (pipeline/methods/registry.yaml), say
<block>.<leaf>; its experiments are named <leaf>-<value> (the README's sweep section):

    for v in ...; do dvc exp run --queue -n <leaf>-$v -S <block>.<leaf>=$v; done
    dvc queue start && dvc queue status        # one at a time: they share the 2 cores
    python -m pipeline.report.sweep            # -> reports/sweep/<leaf>_sweep.csv
    dvc repro report                           # -> reports/figures/<leaf>_sweep.png and its table in results.md

The report stage draws the figure (reports/figures is its output, which DVC empties before it runs) from
the collected CSV in reports/sweep/, a dep of the report stage (pipeline/report/sweep_results.py).

Each point is one experiment (plus the workspace at params.yaml's value): see sweep_results. The
baseline does not re-run in a sweep: its top-1 is the same for every value.
"""
from __future__ import annotations

import argparse
import json
import subprocess
from pathlib import Path

from pipeline import artifacts, methods
from pipeline.core.atomic import atomic_path
from pipeline.core.errors import PipelineError
from pipeline.methods import Method
from pipeline.report.facts import method_facts
from pipeline.report.sweep_results import (Sweep, experiment_prefix, sweep_csv, sweep_frame, sweep_point,
                                           sweep_table_md)


def _read_json(rev: str, path: Path) -> dict:
    """A file of an experiment's commit (`git show`), or of the workspace."""
    if rev == "workspace":
        return json.loads(path.read_text()) if path.exists() else {}
    shown = subprocess.run(["git", "show", f"{rev}:{path.as_posix()}"], capture_output=True, text=True)
    return json.loads(shown.stdout) if shown.returncode == 0 else {}


def collect(method: Method, dataset: str) -> list[dict]:
    """A sweep point for the workspace and every experiment named <leaf>-* that `dvc exp show` lists, in its
    order: the workspace first, then experiments newest first (so a re-run of a value replaces the older)."""
    import dvc.api

    baseline = methods.baseline()
    points = []
    for row in dvc.api.exp_show(num=1):
        name = row.get("Experiment") or ""
        ours = row["rev"] == "workspace" or name.startswith(experiment_prefix(method))
        if not ours or row.get(method.sweep) is None:
            continue
        if row.get("State") not in (None, "Success"):
            continue  # queued, running (its metrics are still the workspace's) or failed
        seeds = row.get("seeds") or []
        seeds = [int(k) for k in (seeds if isinstance(seeds, list) else json.loads(str(seeds)))]

        def metric(key: str, column: str) -> list:
            return [row.get(f"{artifacts.probe_path(key, dataset, k, 'target').as_posix()}:{column}") for k in seeds]

        top1, base = metric(method.key, "top1"), metric(baseline, "top1")
        if any(v is None for v in top1):
            continue  # not finished, or failed
        summaries = [_read_json(row["rev"], artifacts.summary_path(method.key, k)) for k in seeds]
        points.append(sweep_point(name or "workspace", float(row[method.sweep]), top1,
                                  [v for v in base if v is not None], summaries, metric(method.key, "multi_information"),
                                  method_facts(method)))
    return points


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Collect every swept method's sweep (its DVC experiments "
                                                 "<leaf>-*; pipeline/methods/registry.yaml `sweep`).")
    parser.add_argument("--dataset", help="the probed dataset the sweep reads (default: params.yaml data.pretrain)")
    args = parser.parse_args(argv)
    if args.dataset is None:
        from pipeline.config.params import load_params

        args.dataset = load_params(["data"]).data.pretrain
    for method in methods.swept():
        frame = sweep_frame(collect(method, args.dataset), method)
        if frame.empty:
            raise PipelineError(f"no finished {experiment_prefix(method)}* experiment or workspace run of "
                                f"{method.name} found; queue the sweep first (the README's sweep section)")
        path = sweep_csv(method)
        with atomic_path(path) as tmp:
            frame.to_csv(tmp, index=False, na_rep="NaN")
        print(sweep_table_md(Sweep(method, frame)))
        print(f"wrote {path}; `dvc repro report` draws reports/figures/{path.stem}.png from it")


if __name__ == "__main__":
    main()
