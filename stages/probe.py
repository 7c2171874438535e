"""DVC stage `probe-<method>` (and `probe-pixels`): the probes on cached features, scored on the test split:
the full linear probe, the k-NN probe and the low-label linear probe, each also on its validation split.

Usage: python -m stages.probe <method>     every seed, extracted encoder and probed dataset of the method
       python -m stages.probe pixels       the pixel controls (each seed of a drawn one; the others once)
Writes reports/probe/<method>/seed<k>/<encoder>/<dataset>.json or a pixel control's record (artifacts.probe_path;
DVC metrics; with a trailing --under <name>: features from data/<name>/, records under reports/<name>/)
and logs each to MLflow.
"""
import statistics

import torch

from pipeline import artifacts
from pipeline.artifacts.features import read_features
from pipeline.artifacts.records import ProbeRecord, write_probe
from pipeline.core.errors import PipelineError
from pipeline.core.hardware import resolve_device
from pipeline.config.params import load_params
from pipeline.eval.knn import run_knn
from pipeline.eval.low_label import run_low_label
from pipeline.eval.monitor import multi_information
from pipeline.eval.probe import run_probe
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
    for dataset in params.data.probe:
        for key, seed, encoder in runs:
            probe_one(key, dataset, seed, encoder, params, roots)


def probe_one(key: str, dataset: str, seed: int | None, encoder: str, params, roots: artifacts.Roots) -> None:
    # A control drawn once is probed with the first seed's validation split: one number, not a distribution.
    run_params = params.for_seed(params.seeds[0] if seed is None else seed)
    source = artifacts.features_path(key, dataset, seed, encoder, roots.data)
    f = read_features(source)
    train_x, test_x = torch.from_numpy(f["train"]), torch.from_numpy(f["test"])
    train_y, test_y = torch.from_numpy(f["train_labels"]), torch.from_numpy(f["test_labels"])
    device = resolve_device()
    cfg, num_classes = run_params.probe, int(f["num_classes"])
    result = run_probe(train_x, train_y, test_x, test_y, num_classes, cfg, run_params.seed, device)
    knn_val, knn_test = run_knn(train_x, train_y, test_x, test_y, num_classes, cfg.knn_k, cfg.knn_temperature,
                                cfg.val_fraction, run_params.seed, device)
    low_label = run_low_label(train_x, train_y, test_x, test_y, num_classes, cfg, run_params.seed, device)
    # multi_information: of the same images for every method, the test split's features.
    record = ProbeRecord.of(result, method=key, seed=seed, encoder=encoder, dataset=dataset,
                            multi_information=multi_information(test_x), knn_top1=knn_test, knn_val_top1=knn_val,
                            low_label=low_label, data=f["dataset"])
    write_probe(artifacts.probe_path(key, dataset, seed, encoder, roots.reports), record)
    label = f"{key}/{encoder}" if seed is None else f"{key}/seed{seed}/{encoder}"
    few = ", ".join(f"{n}/class {statistics.mean(r['top1']):.2f}%" for n, r in low_label.items())
    print(f"probe {label}/{dataset}: top-1 {result.top1:.2f}% (val {result.val_top1:.2f}%, l2 {result.l2:g}"
          f"{' ON A GRID EDGE' if result.on_edge else ''}, {result.iterations} L-BFGS iterations, gradient "
          f"{result.grad_norm:.1e}{'' if result.converged else ' NOT CONVERGED'}); k-NN {knn_test:.2f}%"
          f"{'; ' + few if few else ''}", flush=True)

    with tracking.Run("probe", key, dataset, seed, {**f["encoder_params"], **run_params.flat()},
                      encoder=encoder) as run:
        run.log_metrics({"top1": result.top1, "val_top1": result.val_top1, "chosen_l2": result.l2,
                         "on_edge": float(result.on_edge), "converged": float(result.converged),
                         "iterations": result.iterations, "grad_norm": result.grad_norm,
                         "multi_information": record.multi_information, "knn_top1": knn_test,
                         "knn_val_top1": knn_val,
                         **{f"low_label_{n}_top1": statistics.mean(r["top1"]) for n, r in low_label.items()}})


if __name__ == "__main__":
    run_stage(main)
