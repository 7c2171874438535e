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
baseline does not re-run in a sweep: its top-1 is the same for every value. Experiments are found on every
commit (their git refs), so committing after a sweep does not lose it; `dvc exp remove` does.
"""
from __future__ import annotations

import argparse
import json
import subprocess
from pathlib import Path

import yaml

from pipeline import artifacts, methods
from pipeline.config.params import read_params_file
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


def _read_params(rev: str) -> dict:
    if rev == "workspace":
        return read_params_file(Path("params.yaml"))
    shown = subprocess.run(["git", "show", f"{rev}:params.yaml"], capture_output=True, text=True)
    return (yaml.safe_load(shown.stdout) or {}) if shown.returncode == 0 else {}


def experiments(prefix: str) -> list[tuple[str, str]]:
    """(name, commit) of every finished DVC experiment named prefix*, whatever commit it was run on, newest
    first. DVC keeps a finished experiment as the git ref refs/exps/<baseline sha split 2/38>/<name> (queued,
    running and failed ones live elsewhere under refs/exps), so a sweep outlives the commits after it, where
    `dvc exp show` lists only the current commit's (and with -A reads every commit's metrics: minutes)."""
    listed = subprocess.run(["git", "for-each-ref", "--sort=-creatordate", "--format=%(refname) %(objectname)",
                             "refs/exps"], capture_output=True, text=True)
    if listed.returncode != 0:
        raise PipelineError(f"git for-each-ref failed ({listed.stderr.strip()}); run this in the repository")
    found = []
    for line in listed.stdout.splitlines():
        ref, commit = line.split()
        parts = ref.split("/")  # refs, exps, <2 hex>, <38 hex>, <name>
        if len(parts) == 5 and len(parts[2]) == 2 and len(parts[3]) == 38 and parts[4].startswith(prefix):
            found.append((parts[4], commit))
    return found


def _dig(params: dict, key: str):
    for part in key.split("."):
        params = params.get(part) if isinstance(params, dict) else None
    return params


def collect(method: Method, dataset: str) -> list[dict]:
    """A sweep point for the workspace and every finished experiment named <leaf>-*, on any commit: the
    workspace first, then experiments newest first (so a re-run of a value replaces the older). Each point
    reads its commit's params.yaml (the swept value, the seeds) and probe records and summaries."""
    baseline = methods.baseline()
    points = []
    for name, rev in [("workspace", "workspace"), *experiments(experiment_prefix(method))]:
        params = _read_params(rev)
        value, seeds = _dig(params, method.sweep), params.get("seeds") or []
        if value is None or not seeds:
            continue

        def column(key: str, field: str) -> list:
            return [_read_json(rev, artifacts.probe_path(key, dataset, k, "target")).get(field) for k in seeds]

        top1, base = column(method.key, "top1"), column(baseline, "top1")
        if any(v is None for v in top1):
            continue  # not finished, or failed
        summaries = [_read_json(rev, artifacts.summary_path(method.key, k)) for k in seeds]
        points.append(sweep_point(name, float(value), top1, [v for v in base if v is not None], summaries,
                                  column(method.key, "multi_information"), method_facts(method)))
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
