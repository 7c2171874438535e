"""Benchmark of the probes on a pipeline's extracted features: where a probe stage's time goes.

    python -m pipeline.bench.probe                            # the default pipeline, FashionMNIST, every record
    python -m pipeline.bench.probe --under standard --seeds 0 --dataset fashion_mnist

For each record the probe stages make (the pixel controls, then every method's seeds and encoders, as
params.yaml's `seeds` and `probe` block say), it times the full linear probe (penalty search and refit), the
k-NN probe and the low-label probe at each size (all its draws), exactly as stages.probe runs them, on the
features the extract stages wrote (run `dvc repro` first). Prints the table and writes
reports/benchmarks/probe-<machine>[-<pipeline>].json and its .md (the README copies the default pipeline's).
"""
from __future__ import annotations

import argparse
import dataclasses
import sys
import time
from pathlib import Path

import torch

from pipeline import artifacts, methods
from pipeline.artifacts.features import read_features
from pipeline.bench import write_report
from pipeline.config.params import load_params
from pipeline.core.errors import PipelineError
from pipeline.core.hardware import describe
from pipeline.eval.knn import run_knn
from pipeline.eval.low_label import run_low_label
from pipeline.eval.probe import run_probe
from pipeline.eval.record import record_label
from pipeline.report.tables import markdown_table


def records(under: str | None, seeds: list[int], dataset: str, data: Path) -> list[tuple[str, int | None, str]]:
    """(method or pixels, seed, encoder or control) of every feature file the probe stages would read."""
    found = [(artifacts.PIXELS, seed, control) for control in artifacts.CONTROLS
             for seed in artifacts.control_seeds(control, tuple(seeds))]
    found += [(key, seed, encoder) for key in methods.pipeline_keys(under) for seed in seeds
              for encoder in artifacts.ENCODERS]
    return [r for r in found if artifacts.features_path(r[0], dataset, r[1], r[2], data).exists()]


def time_record(path: Path, probe, seed: int) -> dict:
    """Seconds of each probe on one feature file, and the linear probe's chosen penalty and iterations."""
    f = read_features(path)
    train_x, test_x = torch.from_numpy(f["train"]), torch.from_numpy(f["test"])
    train_y, test_y = torch.from_numpy(f["train_labels"]), torch.from_numpy(f["test_labels"])
    classes = int(f["num_classes"])
    start = time.perf_counter()
    result = run_probe(train_x, train_y, test_x, test_y, classes, probe, seed)
    seconds = {"linear": time.perf_counter() - start}
    start = time.perf_counter()
    run_knn(train_x, train_y, test_x, test_y, classes, probe.knn_k, probe.knn_temperature, probe.val_fraction, seed)
    seconds["knn"] = time.perf_counter() - start
    for n in probe.low_label:
        start = time.perf_counter()
        run_low_label(train_x, train_y, test_x, test_y, classes, dataclasses.replace(probe, low_label=(n,)), seed)
        seconds[f"low_label_{n}"] = time.perf_counter() - start
    return {"rows": len(train_x), "features": train_x.shape[1], "seconds": {k: round(v, 2) for k, v in seconds.items()},
            "l2": result.l2, "iterations": sum(t["iterations"] for t in result.grid) + result.iterations}


def run(under: str | None, dataset: str, seeds: list[int] | None) -> dict:
    params = load_params(["seeds", "data", "probe"])
    seeds = params.seeds if seeds is None else seeds
    roots = artifacts.split_under([] if under is None else ["--under", under])[1]
    found = records(under, seeds, dataset, roots.data)
    if not found:
        raise PipelineError(f"no features of {dataset} under {roots.data}/features; run `dvc repro` (or the "
                            f"pipeline's) first")
    out = []
    for key, seed, encoder in found:
        path = artifacts.features_path(key, dataset, seed, encoder, roots.data)
        run_seed = params.seeds[0] if seed is None else seed  # a control drawn once: the first seed's splits
        timed = time_record(path, params.for_seed(run_seed).probe, run_seed)
        out.append({"method": key, "seed": seed, "encoder": encoder, **timed})
        print(f"{record_label(key, seed, encoder)}: {timed['seconds']}", flush=True)
    return {"device": describe("cpu"), "pipeline": under or "default", "dataset": dataset, "seeds": seeds,
            "command": " ".join(["python -m pipeline.bench.probe", *sys.argv[1:]]),
            "date": time.strftime("%Y-%m-%d"), "records": out}


def table_md(report: dict) -> str:
    """A row per record (seconds per probe), then the totals and each probe's share of them."""
    kinds = list(report["records"][0]["seconds"])
    head = ["record", "rows x features", *(k.replace("low_label_", "") + (" / class" if k.startswith("low") else "")
                                          for k in kinds), "all", "chosen l2", "L-BFGS iterations"]
    rows, totals = [], dict.fromkeys(kinds, 0.0)
    for r in report["records"]:
        rows.append([record_label(r["method"], r["seed"], r["encoder"]), f"{r['rows']:,} x {r['features']:,}",
                     *(f"{r['seconds'][k]:.1f}" for k in kinds), f"{sum(r['seconds'].values()):.1f}", f"{r['l2']:g}",
                     f"{r['iterations']:,}"])
        for k in kinds:
            totals[k] += r["seconds"][k]
    whole = sum(totals.values())
    rows.append(["**all records**", "", *(f"{v:.0f} ({v / whole:.0%})" for v in totals.values()), f"{whole:.0f}", "",
                 ""])
    return (f"Probe seconds per record on {report['dataset']} ({report['pipeline']} pipeline, seeds "
            f"{', '.join(str(s) for s in report['seeds'])}), {report['device']}, {report['date']} "
            f"(`{report['command']}`):\n\n" + markdown_table(head, rows, align_right_from=2) + "\n")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m pipeline.bench.probe", description=__doc__.splitlines()[0])
    parser.add_argument("--under", default=None, help="a pipeline of the registry (ladder, bases, standard)")
    parser.add_argument("--dataset", default="fashion_mnist")
    parser.add_argument("--seeds", type=int, nargs="+", default=None, help="default: params.yaml's seeds")
    parser.add_argument("--out", type=Path, default=Path("reports/benchmarks"))
    args = parser.parse_args(argv)
    report = run(args.under, args.dataset, args.seeds)
    print(table_md(report))
    out = write_report(args.out, "probe", report, table_md(report),
                       "" if report["pipeline"] == "default" else f"-{report['pipeline']}")
    print(f"wrote {out} and {out.with_suffix('.md')}")


if __name__ == "__main__":
    try:
        main()
    except PipelineError as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)
