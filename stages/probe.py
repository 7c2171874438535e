"""DVC stage `probe-<method>` (and `probe-pixels`): linear probes on cached features, scored on the test split.

Usage: python -m stages.probe <method>     every seed, saved encoder and probed dataset of the method
       python -m stages.probe pixels       the raw-pixel reference (probed once: it has no seed)
Writes reports/probe/<method>/seed<k>/<encoder>/<dataset>.json or reports/probe/pixels/<dataset>.json
(DVC metrics; with a trailing --under <name>: features from data/<name>/, records under reports/<name>/)
and logs each to MLflow.
"""
import torch

from pipeline import artifacts
from pipeline.artifacts.features import read_features
from pipeline.artifacts.records import ProbeRecord, write_probe
from pipeline.core.errors import PipelineError
from pipeline.core.hardware import resolve_device
from pipeline.config.params import load_params
from pipeline.eval.monitor import multi_information
from pipeline.eval.probe import run_probe
from pipeline.runtime import tracking
from pipeline.runtime.cli import run_stage


def main(argv: list[str]) -> None:
    argv, roots = artifacts.split_under(argv)
    if len(argv) != 1:
        raise PipelineError(f"usage: python -m stages.probe <method>|{artifacts.PIXELS} [--under <name>]")
    params = load_params(["seeds", "data", "probe"])
    if argv[0] == artifacts.PIXELS:
        # The validation split is the first seed's: the reference is one number, not a distribution.
        runs = [(artifacts.PIXELS, None, "pixels")]
    else:
        runs = [(argv[0], seed, name) for seed in params.seeds
                for name in artifacts.saved_encoders(argv[0], seed, roots.data)]
    for dataset in params.data.probe:
        for key, seed, encoder in runs:
            probe_one(key, dataset, seed, encoder, params, roots)


def probe_one(key: str, dataset: str, seed: int | None, encoder: str, params, roots: artifacts.Roots) -> None:
    run_params = params.for_seed(params.seeds[0] if seed is None else seed)
    source = artifacts.features_path(key, dataset, seed, encoder, roots.data)
    f = read_features(source)
    train_x, test_x = torch.from_numpy(f["train"]), torch.from_numpy(f["test"])
    train_y, test_y = torch.from_numpy(f["train_labels"]), torch.from_numpy(f["test_labels"])
    device = resolve_device()
    result = run_probe(train_x, train_y, test_x, test_y, int(f["num_classes"]), run_params.probe, run_params.seed,
                       device)
    # multi_information: of the same images for every method, the test split's features.
    record = ProbeRecord.of(result, method=key, seed=seed, encoder=encoder, dataset=dataset,
                            multi_information=multi_information(test_x), data=f["dataset"])
    write_probe(artifacts.probe_path(key, dataset, seed, encoder, roots.reports), record)
    label = key if seed is None else f"{key}/seed{seed}/{encoder}"
    print(f"probe {label}/{dataset}: top-1 {result.top1:.2f}% (val {result.val_top1:.2f}%, l2 {result.l2:g}"
          f"{' ON A GRID EDGE' if result.on_edge else ''}, {result.iterations} L-BFGS iterations, gradient "
          f"{result.grad_norm:.1e}{'' if result.converged else ' NOT CONVERGED'})", flush=True)

    with tracking.Run("probe", key, dataset, seed, {**f["encoder_params"], **run_params.flat()},
                      encoder=encoder) as run:
        run.log_metrics({"top1": result.top1, "val_top1": result.val_top1, "chosen_l2": result.l2,
                         "on_edge": float(result.on_edge), "converged": float(result.converged),
                         "iterations": result.iterations, "grad_norm": result.grad_norm,
                         "multi_information": record.multi_information})


if __name__ == "__main__":
    run_stage(main)
