"""The linear probe and the representation statistics, on synthetic features."""
import math

import pytest
import torch
from conftest import repo_params

from pipeline.core.errors import PipelineError
from pipeline.eval.monitor import effective_rank, feature_std, multi_information, ridge_accuracy
from pipeline.eval.probe import accuracy, run_probe, split_train_val, train_heads

FAST = repo_params({"probe.epochs": 15, "probe.batch_size": 64, "probe.lrs": [1e-3, 1e-2],
                    "probe.weight_decays": [0.0, 1e-3]}).probe


def blobs(n_per_class: int, classes: int, dim: int, spread: float, seed: int):
    gen = torch.Generator().manual_seed(seed)
    centers = torch.randn(classes, dim, generator=gen) * 3
    y = torch.arange(classes).repeat_interleave(n_per_class)
    x = centers[y] + spread * torch.randn(len(y), dim, generator=gen)
    return x, y


def test_probe_separates_separable_features():
    x, y = blobs(60, 4, 8, spread=0.3, seed=0)
    tx, ty = blobs(20, 4, 8, spread=0.3, seed=0)
    result = run_probe(x, y, tx, ty, 4, FAST, seed=0)
    assert result.top1 == pytest.approx(100.0)
    assert result.n_train + result.n_val == len(x) and result.n_test == len(tx)
    assert len(result.grid) == 4 and (result.lr, result.weight_decay) in {(g["lr"], g["weight_decay"])
                                                                         for g in result.grid}


def test_probe_is_at_chance_on_random_labels():
    x, _ = blobs(100, 4, 8, spread=1.0, seed=1)
    y = torch.randint(0, 4, (len(x),), generator=torch.Generator().manual_seed(2))
    tx, _ = blobs(100, 4, 8, spread=1.0, seed=3)
    ty = torch.randint(0, 4, (len(tx),), generator=torch.Generator().manual_seed(4))
    assert run_probe(x, y, tx, ty, 4, FAST, seed=0).top1 < 40


def test_vectorised_heads_match_one_at_a_time():
    x, y = blobs(30, 3, 5, spread=1.0, seed=5)
    w, b = train_heads(x, y, 3, [1e-2, 1e-3], [0.0, 1e-2], epochs=3, batch_size=16, seed=0)
    w1, b1 = train_heads(x, y, 3, [1e-3], [1e-2], epochs=3, batch_size=16, seed=0)
    assert torch.allclose(w[1], w1[0], atol=1e-6) and torch.allclose(b[1], b1[0], atol=1e-6)
    assert accuracy(w, b, x, y).shape == (2,)


def test_validation_split_is_carved_from_train_and_disjoint():
    fit, val = split_train_val(100, 0.1, seed=0)
    assert len(val) == 10 and len(fit) == 90
    assert set(fit.tolist()).isdisjoint(val.tolist()) and set(fit.tolist()) | set(val.tolist()) == set(range(100))


def test_probe_rejects_nan_features():
    x, y = blobs(10, 2, 3, spread=0.1, seed=0)
    x[3, 1] = float("nan")
    with pytest.raises(PipelineError, match="NaN"):
        run_probe(x, y, x, y, 2, FAST, seed=0)


def test_multi_information_gaussian_estimate():
    gen = torch.Generator().manual_seed(0)
    independent = torch.randn(20000, 4, generator=gen)
    assert abs(multi_information(independent)) < 0.01
    rho = 0.8
    a = torch.randn(20000, generator=gen)
    b = rho * a + math.sqrt(1 - rho ** 2) * torch.randn(20000, generator=gen)
    expected = -0.5 * math.log(1 - rho ** 2)
    assert multi_information(torch.stack([a, b], dim=1)) == pytest.approx(expected, rel=0.05)
    # scale-free: multiplying a dimension changes nothing
    assert multi_information(torch.stack([a * 10, b], dim=1)) == pytest.approx(expected, rel=0.05)


def test_collapse_signals():
    gen = torch.Generator().manual_seed(0)
    healthy = torch.randn(500, 16, generator=gen)
    collapsed = torch.randn(500, 1, generator=gen) @ torch.randn(1, 16, generator=gen) * 0.01
    assert effective_rank(healthy) > 12 and effective_rank(collapsed) < 1.5
    assert feature_std(healthy) > 100 * feature_std(collapsed)


def test_ridge_online_probe_separates_blobs():
    x, y = blobs(50, 3, 6, spread=0.3, seed=0)
    assert ridge_accuracy(x[::2], y[::2], x[1::2], y[1::2], 3) == pytest.approx(100.0)
