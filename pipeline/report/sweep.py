"""SparseJEPA's lambda sweep, collected from DVC experiments into one table and one figure.

Queue and run it (README, *Lambda sweep*):

    for l in 0.01 0.02 0.03 0.1; do dvc exp run --queue -n lambda-$l -S sparsity.lambda=$l; done
    dvc queue start && dvc queue status        # one at a time: they share the 2 cores
    python -m pipeline.report.sweep            # -> reports/sweep/lambda_sweep.csv
    dvc repro report                           # -> reports/figures/lambda_sweep.png and its table in results.md

The report stage draws the figure (reports/figures is its output, which DVC empties before it runs) from
the collected CSV in reports/sweep/, a dep of the report stage.

Each point is one experiment (named lambda-*, plus the workspace at params.yaml's lambda): SparseJEPA's
target-encoder top-1 on the pretraining dataset (mean +- std over seeds), its zero fraction and groups
per latent (pretraining summaries) and the multi-information of its pooled test features (probe
records), beside JEPA's top-1 from the same experiment (JEPA does not re-run: the same for every lambda).
"""
from __future__ import annotations

import argparse
import json
import math
import statistics
import subprocess
from pathlib import Path

import pandas as pd

from pipeline import artifacts
from pipeline.core.atomic import atomic_path
from pipeline.core.errors import PipelineError

COLUMNS = ("experiment", "lambda", "seeds", "top1_mean", "top1_std", "jepa_top1_mean", "zero_fraction",
           "groups_per_latent", "multi_information")
PREFIX = "lambda-"


def _mean(values: list[float]) -> float:
    values = [v for v in values if v is not None and not math.isnan(v)]
    return statistics.fmean(values) if values else math.nan


def sweep_point(name: str, lam: float, top1: list[float], jepa_top1: list[float], summaries: list[dict],
                multi_information: list[float]) -> dict:
    """One experiment's row: per-seed values in, seed means (and the top-1's std) out."""
    return {"experiment": name, "lambda": lam, "seeds": len(top1), "top1_mean": _mean(top1),
            "top1_std": statistics.stdev(top1) if len(top1) > 1 else math.nan, "jepa_top1_mean": _mean(jepa_top1),
            "zero_fraction": _mean([s.get("zero_fraction") for s in summaries]),
            "groups_per_latent": _mean([s.get("groups_per_latent") for s in summaries]),
            "multi_information": _mean(multi_information)}


def sweep_frame(points: list[dict]) -> pd.DataFrame:
    """One row per lambda, by increasing lambda; `points` come in priority order (the first of a lambda wins:
    `collect` lists the workspace, then experiments newest first)."""
    frame = pd.DataFrame(points, columns=COLUMNS)
    return frame.drop_duplicates("lambda", keep="first").sort_values("lambda").reset_index(drop=True)


def sweep_markdown(frame: pd.DataFrame, dataset: str) -> str:
    lines = [f"SparseJEPA's lambda sweep ({dataset} top-1 of the target encoder, mean ± std over seeds; "
             "JEPA's from the same experiments).", "",
             "| lambda | experiment | seeds | top-1 | JEPA top-1 | zero fraction | groups per latent | "
             "multi-information |", "| ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for r in frame.to_dict("records"):
        lines.append(f"| {r['lambda']:g} | {r['experiment']} | {r['seeds']} | {r['top1_mean']:.2f} ± "
                     f"{r['top1_std']:.2f} | {r['jepa_top1_mean']:.2f} | {r['zero_fraction']:.1%} | "
                     f"{r['groups_per_latent']:.2f} | {r['multi_information']:.2f} |")
    return "\n".join(lines) + "\n"


def plot_sweep(frame: pd.DataFrame, path: Path, dataset: str) -> None:
    from pipeline.report.figures import _pyplot, _save

    plt = _pyplot()
    fig, axes = plt.subplots(1, 4, figsize=(15, 3.4))
    try:
        lam = frame["lambda"].where(frame["lambda"] > 0)  # lambda 0 has no place on a log axis
        ax = axes[0]
        ax.errorbar(lam, frame["top1_mean"], yerr=frame["top1_std"], marker="o", capsize=3, label="SparseJEPA")
        ax.axhline(frame["jepa_top1_mean"].mean(), color="grey", ls="--", label="JEPA")
        ax.set_ylabel(f"{dataset} top-1 (%)")
        ax.legend(fontsize=8)
        for ax, column, label in ((axes[1], "zero_fraction", "columns exactly zero"),
                                  (axes[2], "groups_per_latent", "groups per latent"),
                                  (axes[3], "multi_information", "multi-information (nats)")):
            ax.plot(lam, frame[column], marker="o")
            ax.set_ylabel(label)
        for ax in axes:
            ax.set_xscale("log")
            ax.set_xlabel("sparsity.lambda")
            ax.grid(alpha=0.3)
        fig.suptitle("SparseJEPA's lambda sweep (each point one DVC experiment, mean over seeds)", fontsize=10)
        fig.tight_layout()
        _save(fig, path)
    finally:
        plt.close(fig)


def _read_json(rev: str, path: Path) -> dict:
    """A file of an experiment's commit (`git show`), or of the workspace."""
    if rev == "workspace":
        return json.loads(path.read_text()) if path.exists() else {}
    shown = subprocess.run(["git", "show", f"{rev}:{path.as_posix()}"], capture_output=True, text=True)
    return json.loads(shown.stdout) if shown.returncode == 0 else {}


def collect(dataset: str) -> list[dict]:
    """A sweep point for the workspace and every experiment named lambda-* that `dvc exp show` lists, in its
    order: the workspace first, then experiments newest first (so a re-run of a lambda replaces the older)."""
    import dvc.api

    points = []
    for row in dvc.api.exp_show(num=1):
        name = row.get("Experiment") or ""
        if not (row["rev"] == "workspace" or name.startswith(PREFIX)) or row.get("sparsity.lambda") is None:
            continue
        if row.get("State") not in (None, "Success"):
            continue  # queued, running (its metrics are still the workspace's) or failed
        seeds = row.get("seeds") or []
        seeds = seeds if isinstance(seeds, list) else json.loads(str(seeds))
        probe = {m: [row.get(f"{artifacts.probe_path(m, dataset, int(k), 'target').as_posix()}:{key}")
                     for k in seeds] for m, key in (("sparse_jepa", "top1"), ("jepa", "top1"))}
        mi = [row.get(f"{artifacts.probe_path('sparse_jepa', dataset, int(k), 'target').as_posix()}:multi_information")
              for k in seeds]
        if any(v is None for v in probe["sparse_jepa"]):
            continue  # not finished, or failed
        summaries = [_read_json(row["rev"], artifacts.summary_path("sparse_jepa", int(k))) for k in seeds]
        points.append(sweep_point(name or "workspace", float(row["sparsity.lambda"]), probe["sparse_jepa"],
                                  [v for v in probe["jepa"] if v is not None], summaries, mi))
    return points


def sweep_csv(reports: Path = artifacts.REPORTS) -> Path:
    return reports / "sweep" / "lambda_sweep.csv"


def read_sweep(reports: Path = artifacts.REPORTS) -> pd.DataFrame | None:
    """The collected sweep, or None before one was collected."""
    path = sweep_csv(reports)
    return pd.read_csv(path) if path.exists() else None


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Collect SparseJEPA's lambda sweep (DVC experiments lambda-*).")
    parser.add_argument("--dataset", help="the probed dataset the sweep reads (default: params.yaml data.pretrain)")
    args = parser.parse_args(argv)
    if args.dataset is None:
        from pipeline.core.params import load_params

        args.dataset = load_params(["data"]).data.pretrain
    frame = sweep_frame(collect(args.dataset))
    if frame.empty:
        raise PipelineError("no finished lambda-* experiment or workspace run found; queue the sweep first "
                            "(README, *Lambda sweep*)")
    path = sweep_csv()
    with atomic_path(path) as tmp:
        frame.to_csv(tmp, index=False, na_rep="NaN")
    print(sweep_markdown(frame, args.dataset))
    print(f"wrote {path}; `dvc repro report` draws reports/figures/lambda_sweep.png from it")


if __name__ == "__main__":
    main()
