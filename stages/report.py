"""DVC stage `report`: the paper's table, pretraining facts and figures under reports/.

Usage: python stages/report.py   (columns: params.yaml's data.probe, in order)
Also logs the table and figures to MLflow and prints where to compare the runs in its UI.
"""
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # this checkout's code, also in `dvc exp --temp`

from pipeline import tracking  # noqa: E402
from pipeline.cli import run_stage  # noqa: E402
from pipeline.config import load_params  # noqa: E402
from pipeline.errors import PipelineError  # noqa: E402
from pipeline.report import build_report  # noqa: E402

MODELS = ["random", "jepa", "sparse_jepa"]
REPORTS = Path("reports")


def environment(pretrain_dataset: str) -> dict:
    summaries = {}
    for model in ("jepa", "sparse_jepa"):
        path = REPORTS / "pretrain" / model / "summary.json"
        if path.exists():
            summaries[model] = json.loads(path.read_text())
    env = {"pretrain_dataset": pretrain_dataset}
    if summaries:
        first = next(iter(summaries.values()))
        env["setting"] = first.get("setting", "")
        env["device"] = first.get("hardware", first.get("device", ""))
        env["wall_s"] = {m: s.get("wall_s") for m, s in summaries.items()}
    env["date"] = time.strftime("%Y-%m-%d")
    return env


def main(argv: list[str]) -> None:
    if argv:
        raise PipelineError("usage: python stages/report.py (it takes no arguments)")
    data = load_params(["data"]).data
    datasets = list(data.probe)
    out = build_report(REPORTS, MODELS, datasets, environment(data.pretrain))
    for name, path in out["written"].items():
        print(f"wrote {path}")
    for name, reason in out["skipped"].items():
        print(f"skipped {name}: {reason}")

    with tracking.Run("report") as run:
        top1 = {}
        for model in MODELS:
            for dataset in datasets:
                record = json.loads((REPORTS / "probe" / model / f"{dataset}.json").read_text())
                top1[f"top1.{model}.{dataset}"] = record["top1"]
        run.log_metrics(top1)
        run.log_artifacts(out["written"].values(), folder="report")
    if tracking.enabled():
        print_compare_links(datasets)


def print_compare_links(datasets: list[str]) -> None:
    """Where, in `mlflow ui`, this DVC experiment's probe runs sit side by side.

    A model whose probe DVC took from its cache (e.g. JEPA in a `-S sparsity.lambda=...` experiment)
    has no run in this experiment; its newest probe run stands in, the one that made the cached result.
    """
    import mlflow

    mlflow.set_tracking_uri(tracking.tracking_uri())
    experiment = mlflow.get_experiment_by_name(tracking.EXPERIMENT)
    runs = mlflow.search_runs([experiment.experiment_id], output_format="list",
                              filter_string="tags.stage = 'probe'", order_by=["attributes.start_time DESC"])
    this_exp = tracking.dvc_experiment()
    base = "http://127.0.0.1:5000/#"
    print(f"MLflow: run `mlflow ui --backend-store-uri {tracking.tracking_uri()} --host 127.0.0.1 --workers 1`, then")
    print(f"  all runs:  {base}/experiments/{experiment.experiment_id}/runs")
    for dataset in datasets:
        ids = []
        for model in MODELS:
            match = [r for r in runs if r.data.tags.get("model") == model and r.data.tags.get("dataset") == dataset]
            own = [r for r in match if r.data.tags.get("dvc_exp") == this_exp]
            ids += [r.info.run_id for r in (own or match)[:1]]
        if ids:
            quoted = ",".join(f'"{i}"' for i in ids)
            print(f"  {dataset} probes side by side: {base}/compare-runs?runs=[{quoted}]"
                  f"&experiments=[\"{experiment.experiment_id}\"]")


if __name__ == "__main__":
    run_stage(main)
