"""DVC stage `probe@<method>-<dataset>`: a linear probe on cached features, scored on the test split.

Usage: python -m stages.probe <method> <dataset>
Writes reports/probe/<method>/<dataset>.json (a DVC metric) and logs it to MLflow.
"""
import torch

from pipeline import artifacts
from pipeline.artifacts.features import read_features
from pipeline.artifacts.records import write_probe
from pipeline.core.errors import PipelineError
from pipeline.core.params import load_params
from pipeline.eval.monitor import multi_information
from pipeline.eval.probe import run_probe
from pipeline.runtime import tracking
from pipeline.runtime.cli import run_stage


def main(argv: list[str]) -> None:
    if len(argv) != 2:
        raise PipelineError("usage: python -m stages.probe <method> <dataset>")
    method, dataset = argv
    params = load_params(["seed", "probe"])
    f = read_features(artifacts.features_path(method, dataset))
    train_x, test_x = torch.from_numpy(f["train"]), torch.from_numpy(f["test"])
    train_y, test_y = torch.from_numpy(f["train_labels"]), torch.from_numpy(f["test_labels"])
    device = "cuda" if torch.cuda.is_available() else "cpu"
    result = run_probe(train_x, train_y, test_x, test_y, int(f["num_classes"]), params.probe, params.seed, device)
    record = {"model": method, "dataset": dataset, **result.to_dict(),
              # Same images for every method: the test split's pooled features.
              "multi_information": multi_information(test_x),
              "data": f["dataset"]}
    write_probe(artifacts.probe_path(method, dataset), record)
    print(f"probe {method}/{dataset}: top-1 {result.top1:.2f}% (val {result.val_top1:.2f}%, l2 {result.l2:g}"
          f"{' ON A GRID EDGE' if result.on_edge else ''}, {result.iterations} L-BFGS iterations, gradient "
          f"{result.grad_norm:.1e}{'' if result.converged else ' NOT CONVERGED'})", flush=True)

    with tracking.Run("probe", method, dataset, params.seed, {**f["encoder_params"], **params.flat()}) as run:
        run.log_metrics({"top1": result.top1, "val_top1": result.val_top1, "chosen_l2": result.l2,
                         "on_edge": float(result.on_edge), "converged": float(result.converged),
                         "iterations": result.iterations, "grad_norm": result.grad_norm,
                         "multi_information": record["multi_information"]})


if __name__ == "__main__":
    run_stage(main)
