"""DVC stage `report`: the results table with seed statistics, pretraining facts and figures under reports/.

Usage: python -m stages.report [--under <name>]   (rows: the pixel controls, then the method registry's order,
or another pipeline's (ladder, bases) with --under <name>, read from and written under reports/<name>; columns:
data.probe)
Also logs the table and figures to MLflow and prints where to compare the runs in its UI.
"""
from pipeline import artifacts, methods
from pipeline.core.errors import PipelineError
from pipeline.config.params import load_params
from pipeline.report import Setting, build_report, environment
from pipeline.runtime import tracking
from pipeline.runtime.cli import run_stage


def main(argv: list[str]) -> None:
    args, roots = artifacts.split_under(argv)
    if args:
        raise PipelineError("usage: python -m stages.report [--under <name>]")
    under = argv[-1] if argv else None  # split_under took `--under <name>`, the last two arguments
    params = load_params(["seeds", "data", "extract", "probe", "report"])
    method_list, seeds = methods.pipeline_methods(under), list(params.seeds)
    keys = [m.key for m in method_list]
    setting = Setting(seeds, list(params.data.probe), params.data.pretrain, params.report, params.probe,
                      params.extract.encoders)
    out = build_report(roots.reports, method_list, setting, environment(params.data.pretrain, keys, seeds,
                                                                        roots.reports), pipeline=under)
    for path in out["written"].values():
        print(f"wrote {path}")
    for name, reason in out["skipped"].items():
        print(f"skipped {name}: {reason}")

    summary = out["summary"]
    headline = {f"top1_mean.{r.method}.{r.encoder}.{r.dataset}": r.top1_mean for r in summary.itertuples()
                if r.top1_mean == r.top1_mean}
    with tracking.Run("report") as run:
        run.log_metrics(headline)
        run.log_artifacts(out["written"].values(), folder="report")
    tracking.finish_parent(headline, [out["written"]["results_md"], out["written"]["metrics_json"]])
    tracking.print_compare_links([artifacts.PIXELS, *keys], list(params.data.probe))


if __name__ == "__main__":
    run_stage(main)
