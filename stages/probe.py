"""DVC stage `probe@<model>-<dataset>`: a linear probe on cached features, scored on the test split.

Usage: python stages/probe.py <model> <dataset>
Writes reports/probe/<model>/<dataset>.json (a DVC metric) and logs it to MLflow.
"""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # this checkout's code, also in `dvc exp --temp`

import torch  # noqa: E402

from pipeline import tracking  # noqa: E402
from pipeline.atomic import write_json  # noqa: E402
from pipeline.cli import run_stage  # noqa: E402
from pipeline.config import as_dict, load_params  # noqa: E402
from pipeline.errors import PipelineError  # noqa: E402
from pipeline.features import load_features  # noqa: E402
from pipeline.monitor import multi_information  # noqa: E402
from pipeline.probe import run_probe  # noqa: E402


def main(argv: list[str]) -> None:
    if len(argv) != 2:
        raise PipelineError("usage: python stages/probe.py <model> <dataset>")
    model, dataset = argv
    params = load_params(["seed", "probe"])
    f = load_features(Path("data/features") / model / f"{dataset}.npz")
    train_x, test_x = torch.from_numpy(f["train"]), torch.from_numpy(f["test"])
    train_y, test_y = torch.from_numpy(f["train_labels"]), torch.from_numpy(f["test_labels"])
    device = "cuda" if torch.cuda.is_available() else "cpu"
    result = run_probe(train_x, train_y, test_x, test_y, int(f["num_classes"]), params.probe, params.seed, device)
    record = {"model": model, "dataset": dataset, **result.to_dict(),
              # Same images for every model: the test split's pooled features.
              "multi_information": multi_information(test_x),
              "data": f["dataset"]}
    write_json(Path("reports/probe") / model / f"{dataset}.json", record)
    print(f"probe {model}/{dataset}: top-1 {result.top1:.2f}% (val {result.val_top1:.2f}%, lr {result.lr:g}, "
          f"weight decay {result.weight_decay:g})", flush=True)

    logged = {**f["encoder_params"], "seed": params.seed, **tracking.flatten("probe", as_dict(params.probe))}
    with tracking.Run("probe", model, dataset, params.seed, logged) as run:
        run.log_metrics({"top1": result.top1, "val_top1": result.val_top1, "chosen_lr": result.lr,
                         "chosen_weight_decay": result.weight_decay,
                         "multi_information": record["multi_information"]})


if __name__ == "__main__":
    run_stage(main)
