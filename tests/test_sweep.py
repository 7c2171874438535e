"""SparseJEPA's lambda sweep: experiments' per-seed records -> one row per lambda -> table, figure, report."""
import math

import numpy as np
import pandas as pd
import pytest

from pipeline.report.sweep import plot_sweep, sweep_frame, sweep_markdown, sweep_point


def points() -> list[dict]:
    """Newest first, as `collect` lists them."""
    return [sweep_point("lambda-0.1-again", 0.1, [70.0, 72.0], [80.0], [{}], [1.0]),
            sweep_point("lambda-0.1", 0.1, [80.0, 81.0, 82.0], [80.5, 80.5, 80.5],
                        [{"zero_fraction": 0.5, "groups_per_latent": 2.0}] * 3, [3.0, 4.0, 5.0]),
            sweep_point("lambda-0.01", 0.01, [79.0, 79.0], [80.0, 81.0], [{"zero_fraction": 0.0,
                                                                           "groups_per_latent": 4.0}] * 2, [6.0, 6.0])]


def test_a_sweep_point_is_the_seed_means_and_the_top1_spread():
    p = points()[1]
    assert p["seeds"] == 3 and p["top1_mean"] == pytest.approx(81.0) and p["top1_std"] == pytest.approx(1.0)
    assert p["zero_fraction"] == 0.5 and p["groups_per_latent"] == 2.0 and p["multi_information"] == 4.0
    assert math.isnan(sweep_point("x", 1.0, [80.0], [], [{}], [])["top1_std"])  # one seed has no spread


def test_the_frame_has_one_row_per_lambda_the_newest_and_by_increasing_lambda():
    frame = sweep_frame(points())
    assert list(frame["lambda"]) == [0.01, 0.1]
    assert frame.loc[1, "experiment"] == "lambda-0.1-again"  # a re-run of a lambda replaces the older one
    md = sweep_markdown(frame, "fashion_mnist")
    assert "| 0.01 | lambda-0.01 | 2 | 79.00 ± 0.00 | 80.50 | 0.0% | 4.00 | 6.00 |" in md


def test_the_sweep_figure_is_drawn(tmp_path):
    from test_report import _assert_png_not_blank

    frame = sweep_frame(points()[1:] + [sweep_point("lambda-0", 0.0, [80.0, 80.2], [80.1], [{}], [2.0])])
    path = tmp_path / "figures" / "lambda_sweep.png"
    plot_sweep(frame, path, "fashion_mnist")
    _assert_png_not_blank(path)


def test_the_report_draws_a_collected_sweep_and_tables_it(tmp_path):
    from test_report import ENV, MODELS, SETTING, _write_fixture

    from pipeline.report import build_report
    from pipeline.report.sweep import sweep_csv

    reports = _write_fixture(tmp_path / "reports")
    assert "lambda_sweep" not in build_report(reports, MODELS, SETTING, ENV)["written"]  # none collected yet
    sweep_csv(reports).parent.mkdir(parents=True)
    sweep_frame(points()).to_csv(sweep_csv(reports), index=False)
    out = build_report(reports, MODELS, SETTING, ENV)
    assert out["written"]["lambda_sweep"].exists()
    md = out["written"]["results_md"].read_text()
    assert "#### Lambda sweep" in md and "| 0.1 | lambda-0.1-again |" in md and "`reports/figures/lambda_sweep.png`" in md
