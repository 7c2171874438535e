"""The `dvc exp show` column count sorts every header name into one kind, and says what it cannot explain."""
from pipeline.bench.exp_columns import classify, flat_keys, render


def test_flat_keys_are_dotted_leaves():
    assert flat_keys({"a": {"b": 1, "c": {"d": [1, 2]}}, "e": None}) == {"a.b", "a.c.d", "e"}


def test_every_header_name_is_counted_once_and_an_unknown_one_is_named():
    header = ["Experiment", "rev", "top1.x.jepa", "sparsity.lambda", "methods.jepa.build", "pipeline/model",
              "data/ladder/models/jepa", "mystery"]
    cols = classify(header, metrics={"top1.x.jepa"}, params={"sparsity.lambda"}, registry={"methods.jepa.build"},
                    paths={"pipeline/model", "data/ladder/models/jepa"})
    assert (cols.dvc, cols.metrics, cols.params, cols.registry, cols.dependencies) == (2, 1, 1, 1, 2)
    assert cols.unexplained == ("mystery",) and cols.total == len(header)
    text = render(cols)
    assert text.startswith("`dvc exp show --csv` on this commit has 8 columns: 2 of DVC's own")
    assert "1 none of these explain (mystery)" in text
