"""DVC stage `report`: the paper's table, pretraining facts and figures under reports/ (pipeline/report/).

Usage: python -m stages.report   (rows: the method registry's order; columns: params.yaml's data.probe)
Also logs the table and figures to MLflow and prints where to compare the runs in its UI.
"""
from pipeline import artifacts, methods
from pipeline.core.errors import PipelineError
from pipeline.core.params import load_params
from pipeline.report import build_report, environment
from pipeline.runtime import tracking
from pipeline.runtime.cli import run_stage


def main(argv: list[str]) -> None:
    if argv:
        raise PipelineError("usage: python -m stages.report (it takes no arguments)")
    data = load_params(["data"]).data
    models, datasets = methods.keys(), list(data.probe)
    out = build_report(artifacts.REPORTS, models, datasets, environment(data.pretrain, models))
    for path in out["written"].values():
        print(f"wrote {path}")
    for name, reason in out["skipped"].items():
        print(f"skipped {name}: {reason}")

    with tracking.Run("report") as run:
        run.log_metrics({f"top1.{m}.{d}": top1 for (m, d), top1 in out["top1"].items()})
        run.log_artifacts(out["written"].values(), folder="report")
    tracking.print_compare_links(models, datasets)


if __name__ == "__main__":
    run_stage(main)
