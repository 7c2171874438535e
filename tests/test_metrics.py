"""What DVC reads of a report: the compact metrics (the only `metrics:` entry) and the pretraining plot's table."""
import math

import pandas as pd
import pytest

from pipeline import methods
from pipeline.report.metrics import compact_metrics, pretrain_curves, row_label

NAN = math.nan


def summary() -> pd.DataFrame:
    return pd.DataFrame([
        ("pixels", "raw", "fashion_mnist", 83.333, NAN),  # drawn once: no std
        ("pixels", "gaussian", "fashion_mnist", 81.0, 0.2),
        ("jepa", "target", "fashion_mnist", 79.567, 0.48),
        ("jepa", "context", "fashion_mnist", 78.0, 0.5),
        ("sparse_jepa", "target", "clevr_count", NAN, NAN),  # a cell without a run is left out
        ("sparse_jepa", "target", "fashion_mnist", 79.5, 0.26)],
        columns=["method", "encoder", "dataset", "top1_mean", "top1_std"])


def test_rows_are_named_by_the_control_or_the_method_and_only_other_encoders_say_which():
    assert row_label("pixels", "pca", control=True) == "pca"
    assert row_label("jepa", "target", control=False) == "jepa"
    assert row_label("jepa", "context", control=False) == "jepa_context"


def test_the_compact_metrics_hold_top1_mean_and_std_per_dataset_and_the_goal_facts_means():
    facts = {"sparse_jepa": {0: {"zero_fraction": 0.4, "groups_per_latent": 2.0, "feature_std": 1.0},
                             1: {"zero_fraction": 0.6, "groups_per_latent": 3.0, "feature_std": 3.0}},
             "jepa": {0: {"feature_std": 1.0}}}
    out = compact_metrics(summary(), {"pixels"}, [methods.get("jepa"), methods.get("sparse_jepa")], facts)
    assert out["top1"] == {"fashion_mnist": {"raw": 83.33, "gaussian": 81.0, "jepa": 79.57, "jepa_context": 78.0,
                                             "sparse_jepa": 79.5}}
    assert out["top1_std"] == {"fashion_mnist": {"gaussian": 0.2, "jepa": 0.48, "jepa_context": 0.5, "sparse_jepa": 0.26}}
    # Only the facts a registry goal bounds (not every pretraining fact), averaged over seeds.
    assert out["facts"] == {"sparse_jepa": {"zero_fraction": 0.5, "groups_per_latent": 2.5}}
    assert "facts" not in compact_metrics(summary(), {"pixels"}, [methods.get("jepa")], facts)


def test_the_pretraining_plot_is_a_column_per_method_averaged_over_seeds_by_step():
    def history(losses, steps=(10, 20)):
        return pd.DataFrame({"step": list(steps), "loss_jepa": losses, "objective": [9.0] * len(steps)})

    table = pretrain_curves({("jepa", 0): history([0.4, 0.2]), ("jepa", 1): history([0.6, 0.4]),
                             ("sparse_jepa", 0): history([0.5, 0.3, 0.1], steps=(10, 20, 30)),
                             ("other", 0): pd.DataFrame({"step": [10], "objective": [1.0]})})
    assert list(table.columns) == ["step", "jepa", "sparse_jepa"]  # a history without the curve adds no line
    assert table["step"].tolist() == [10, 20, 30]
    assert table["jepa"].tolist()[:2] == pytest.approx([0.5, 0.3]) and math.isnan(table["jepa"].iloc[2])
    assert table["sparse_jepa"].tolist() == pytest.approx([0.5, 0.3, 0.1])
    assert pretrain_curves({}).columns.tolist() == ["step"]
