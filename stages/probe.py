"""DVC stage `probe-<method>` (and `probe-pixels`): the probes on cached features, scored on the test split:
the full linear probe, the k-NN probe and the low-label linear probe, each also on its validation split.

Usage: python -m stages.probe <method>     every seed, extracted encoder and probed dataset of the method
       python -m stages.probe pixels       the pixel controls (each seed of a drawn one; the others once)
Writes reports/probe/<method>/seed<k>/<encoder>/<dataset>.json or a pixel control's record (artifacts.probe_path;
DVC metrics; with a trailing --under <name>: features from data/<name>/, records under reports/<name>/)
and logs each to MLflow. On the CPU the records are probed in `probe.workers` processes at once.
"""
import os
import statistics

from pipeline import artifacts
from pipeline.artifacts.records import ProbeRecord, write_probe
from pipeline.config.params import load_params
from pipeline.core.errors import PipelineError
from pipeline.core.hardware import resolve_device
from pipeline.core.workers import cpu_workers, in_processes
from pipeline.eval.record import dataset_input, probe_features, record_label
from pipeline.runtime import tracking
from pipeline.runtime.cli import run_stage


def main(argv: list[str]) -> None:
    argv, roots = artifacts.split_under(argv)
    if len(argv) != 1:
        raise PipelineError(f"usage: python -m stages.probe <method>|{artifacts.PIXELS} [--under <name>]")
    params = load_params(["seeds", "data", "probe", "extract"])
    if argv[0] == artifacts.PIXELS:
        runs = [(artifacts.PIXELS, seed, control) for control in artifacts.CONTROLS
                for seed in artifacts.control_seeds(control, params.seeds)]
    else:
        runs = [(argv[0], seed, name) for seed in params.seeds
                for name in artifacts.saved_encoders(argv[0], seed, params.extract.encoders, roots.data)]
    # A control drawn once is probed with the first seed's validation split: one number, not a distribution.
    calls = [(artifacts.features_path(key, dataset, seed, encoder, roots.data), key, seed, encoder, dataset,
              params.for_seed(params.seeds[0] if seed is None else seed))
             for dataset in params.data.probe for key, seed, encoder in runs]
    # The largest first, so the workers finish together (a missing file fails in its job, with its fix).
    calls.sort(key=lambda call: -(os.path.getsize(call[0]) if os.path.exists(call[0]) else 0))
    workers = cpu_workers(params.probe.workers, len(calls), resolve_device())
    for (_, key, seed, encoder, dataset, run_params), (record, encoder_params, span) in in_processes(
            probe_features, calls, workers):
        write_probe(artifacts.probe_path(key, dataset, seed, encoder, roots.reports), record)
        report(record, run_params, encoder_params, span)


def report(record: ProbeRecord, run_params, encoder_params: dict, span: tuple[float, float]) -> None:
    """The record's line on the console and its MLflow run."""
    key, seed, encoder, dataset = record.method, record.seed, record.encoder, record.dataset
    label = record_label(key, seed, encoder)
    low_label = record.low_label
    few = ", ".join(f"{n}/class {statistics.mean(r['top1']):.2f}%" for n, r in low_label.items())
    print(f"probe {label}/{dataset}: top-1 {record.top1:.2f}% (val {record.val_top1:.2f}%, l2 {record.l2:g}"
          f"{' ON A GRID EDGE' if record.on_edge else ''}, {record.iterations} L-BFGS iterations, gradient "
          f"{record.grad_norm:.1e}{'' if record.converged else ' NOT CONVERGED'}); k-NN {record.knn_top1:.2f}%"
          f"{'; ' + few if few else ''}", flush=True)

    with tracking.Run("probe", key, dataset, seed, {**encoder_params, **run_params.flat()}, encoder=encoder,
                      inputs=[tracking.DatasetInput(**dataset_input(record))], span=span) as run:
        run.log_metrics({"top1": record.top1, "val_top1": record.val_top1, "chosen_l2": record.l2,
                         "on_edge": float(record.on_edge), "converged": float(record.converged),
                         "iterations": record.iterations, "grad_norm": record.grad_norm,
                         "multi_information": record.multi_information, "knn_top1": record.knn_top1,
                         "knn_val_top1": record.knn_val_top1,
                         **{f"low_label_{n}_top1": statistics.mean(r["top1"]) for n, r in low_label.items()}})


if __name__ == "__main__":
    run_stage(main)
