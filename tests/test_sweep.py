"""A swept method's sweep: experiments' per-seed records -> one row per value -> table, figure, report.

The swept method, its param and its facts come from the registry (SparseJEPA's sparsity.lambda)."""
import dataclasses
import math

import pytest

from pipeline import methods
from pipeline.report.sweep_results import (Sweep, columns, experiment_prefix, plot_sweep, read_sweep, sweep_caption,
                                           sweep_csv, sweep_frame, sweep_point, sweep_table_md)

SWEPT = methods.get("sparse_jepa")
FACTS = ["zero_fraction", "groups_per_used_latent", "support_stable_steps", "init_survival_r", "groups_per_latent"]  # its registry facts, then the facts its goals bound


def points() -> list[dict]:
    """Newest first, as `collect` lists them."""
    return [sweep_point("lambda-0.1-again", 0.1, [70.0, 72.0], [80.0], [{}], [1.0], FACTS),
            sweep_point("lambda-0.1", 0.1, [80.0, 81.0, 82.0], [80.5, 80.5, 80.5],
                        [{"zero_fraction": 0.5, "groups_per_latent": 2.0}] * 3, [3.0, 4.0, 5.0], FACTS),
            sweep_point("lambda-0.01", 0.01, [79.0, 79.0], [80.0, 81.0], [{"zero_fraction": 0.0,
                                                                           "groups_per_latent": 4.0}] * 2, [6.0, 6.0],
                        FACTS)]


def test_the_registry_names_what_is_swept():
    assert methods.swept() == [SWEPT] and SWEPT.sweep == "sparsity.lambda"
    assert experiment_prefix(SWEPT) == "lambda-" and sweep_csv(SWEPT).name == "lambda_sweep.csv"
    assert columns(SWEPT) == ("experiment", "value", "seeds", "top1_mean", "top1_std", "baseline_top1_mean", *FACTS,
                              "multi_information")


def test_a_sweep_point_is_the_seed_means_and_the_top1_spread():
    p = points()[1]
    assert p["seeds"] == 3 and p["top1_mean"] == pytest.approx(81.0) and p["top1_std"] == pytest.approx(1.0)
    assert p["zero_fraction"] == 0.5 and p["groups_per_latent"] == 2.0 and p["multi_information"] == 4.0
    assert p["baseline_top1_mean"] == 80.5
    assert math.isnan(sweep_point("x", 1.0, [80.0], [], [{}], [], FACTS)["top1_std"])  # one seed has no spread


def test_the_frame_has_one_row_per_value_the_newest_and_by_increasing_value():
    frame = sweep_frame(points(), SWEPT)
    assert list(frame["value"]) == [0.01, 0.1]
    assert frame.loc[1, "experiment"] == "lambda-0.1-again"  # a re-run of a value replaces the older one
    md = sweep_table_md(Sweep(SWEPT, frame))
    # Headers: the param's leaf, the baseline's display name, the facts; formats: the facts' (registry).
    assert md.splitlines()[0] == ("| lambda | experiment | seeds | top-1 | JEPA top-1 | zero fraction | "
                                  "groups per used latent | support stable steps | init survival r | groups per latent | "
                                  "multi-information |")
    assert md.splitlines()[1] == "| ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
    # A fact these runs did not record is a dash, not "nan".
    assert "| 0.01 | lambda-0.01 | 2 | 79.00 ± 0.00 | 80.50 | 0.0% | — | — | — | 4.00 | 6.00 |" in md
    assert sweep_caption(Sweep(SWEPT, frame)) == ("SparseJEPA's lambda sweep: top-1, zero fraction, groups per used "
                                                  "latent, support stable steps, init survival r, groups per latent, "
                                                  "multi-information")


def test_a_swept_method_without_facts_has_a_plainer_sweep():
    plain = dataclasses.replace(SWEPT, facts={}, goals=())
    frame = sweep_frame([sweep_point("lambda-1", 1.0, [80.0, 81.0], [80.0], [{"zero_fraction": 0.5}] * 2, [2.0], [])],
                        plain)
    assert "zero_fraction" not in frame
    assert sweep_table_md(Sweep(plain, frame)).splitlines()[0] == (
        "| lambda | experiment | seeds | top-1 | JEPA top-1 | multi-information |")


def test_the_sweep_figure_is_drawn(tmp_path):
    from test_report import _assert_png_not_blank

    frame = sweep_frame(points()[1:] + [sweep_point("lambda-0", 0.0, [80.0, 80.2], [80.1], [{}], [2.0], FACTS)],
                        SWEPT)
    path = tmp_path / "figures" / "lambda_sweep.png"
    plot_sweep(Sweep(SWEPT, frame), path, "fashion_mnist")
    _assert_png_not_blank(path)


def test_the_report_draws_a_collected_sweep_and_tables_it(tmp_path):
    from test_report import ENV, METHODS, SETTING, _write_fixture

    from pipeline.report import build_report

    reports = _write_fixture(tmp_path / "reports")
    assert "lambda_sweep" not in build_report(reports, METHODS, SETTING, ENV)["written"]  # none collected yet
    assert read_sweep(SWEPT, reports) is None
    sweep_csv(SWEPT, reports).parent.mkdir(parents=True)
    sweep_frame(points(), SWEPT).to_csv(sweep_csv(SWEPT, reports), index=False)
    out = build_report(reports, METHODS, SETTING, ENV)
    assert out["written"]["lambda_sweep"].exists()
    md = out["written"]["results_md"].read_text()
    assert "#### Lambda sweep" in md and "| 0.1 | lambda-0.1-again |" in md
    assert "`reports/figures/lambda_sweep.png`" in md
    assert ("SparseJEPA's lambda sweep (fashion_mnist top-1 of the target encoder, mean ± std over seeds; JEPA's from "
            "the same experiments).") in md
    # A report without the swept method has no sweep, and no figure left from one.
    out = build_report(reports, METHODS[:2], SETTING, ENV)
    assert "lambda_sweep" not in out["written"] and not (reports / "figures" / "lambda_sweep.png").exists()
    assert "#### Lambda sweep" not in out["written"]["results_md"].read_text()


def test_the_collecting_command_runs_as_a_module_of_the_report_package():
    import subprocess
    import sys

    from conftest import REPO

    # -W error: runpy warns when the package has already imported the module it is asked to run.
    done = subprocess.run([sys.executable, "-W", "error::RuntimeWarning", "-m", "pipeline.report.sweep", "--help"],
                          cwd=REPO, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert "sweep" in done.stdout


def test_collect_reads_the_swept_methods_experiments_and_the_baselines_top1(monkeypatch):
    from pipeline import artifacts
    from pipeline.report import sweep

    params = {"workspace": 0.0225, "a1": 0.1, "a3": 0.3, "a4": 0.4}
    top1 = {"workspace": 80.0, "a1": 70.0, "a3": 60.0}  # a4: its second seed's record is missing (failed)

    def read_json(rev, path):
        if path.name == "summary.json":
            return {"zero_fraction": 0.5, "groups_per_latent": 1.5}
        key, seed = path.parts[-4], int(path.parts[-3].removeprefix("seed"))
        if key == "jepa":
            return {"top1": 81.0}
        if rev == "a4" and seed == 1:
            return {}
        return {"top1": top1.get(rev, 50.0) + seed, "multi_information": 5.0}

    monkeypatch.setattr(sweep, "experiments", lambda prefix: [("lambda-0.1", "a1"), ("lambda-0.4", "a4")]
                        if prefix == "lambda-" else [("other-0.3", "a3")])
    monkeypatch.setattr(sweep, "_read_params", lambda rev: {"seeds": [0, 1], "sparsity": {"lambda": params[rev]}})
    monkeypatch.setattr(sweep, "_read_json", read_json)
    assert artifacts.probe_path("jepa", "fashion_mnist", 0).parts[-4:] == ("jepa", "seed0", "target", "fashion_mnist.json")
    assert artifacts.summary_path("jepa", 0).parts[-3:] == ("jepa", "seed0", "summary.json")
    points = sweep.collect(SWEPT, "fashion_mnist")
    assert [(p["experiment"], p["value"]) for p in points] == [("workspace", 0.0225), ("lambda-0.1", 0.1)]
    assert points[1]["top1_mean"] == 70.5 and points[1]["baseline_top1_mean"] == 81.0
    assert points[1]["zero_fraction"] == 0.5 and points[1]["groups_per_latent"] == 1.5
    assert points[1]["multi_information"] == 5.0


def test_experiments_are_found_on_every_commit_by_their_git_refs_newest_first(tmp_path, monkeypatch):
    import subprocess

    from pipeline.report import sweep

    def git(*args, date: str = "2026-01-01T00:00:00") -> str:
        env = {"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t", "GIT_COMMITTER_NAME": "t",
               "GIT_COMMITTER_EMAIL": "t@t", "PATH": "/usr/bin:/bin", "GIT_COMMITTER_DATE": date,
               "GIT_AUTHOR_DATE": date}
        return subprocess.run(["git", *args], cwd=tmp_path, check=True, capture_output=True, text=True,
                              env=env).stdout.strip()

    git("init", "-q")
    shas = []
    for i, name in enumerate(("lambda-0.01", "lambda-0.1", "other-0.3", "stash")):
        (tmp_path / "f").write_text(name)
        git("add", "f")
        git("commit", "-qm", name, date=f"2026-01-0{i + 1}T00:00:00")
        shas.append(git("rev-parse", "HEAD"))
    # Experiments on two baselines (as after a commit that follows a sweep); DVC's queue refs are none.
    git("update-ref", f"refs/exps/{shas[0][:2]}/{shas[0][2:]}/lambda-0.01", shas[0])
    git("update-ref", f"refs/exps/{shas[1][:2]}/{shas[1][2:]}/lambda-0.1", shas[1])
    git("update-ref", f"refs/exps/{shas[1][:2]}/{shas[1][2:]}/other-0.3", shas[2])
    git("update-ref", "refs/exps/celery/stash", shas[3])
    monkeypatch.chdir(tmp_path)
    assert sweep.experiments("lambda-") == [("lambda-0.1", shas[1]), ("lambda-0.01", shas[0])]
