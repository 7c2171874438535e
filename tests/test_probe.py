"""The linear probe and the representation statistics, on synthetic features."""
import dataclasses
import math

import pytest
import torch
from conftest import repo_params

from pipeline.core.errors import PipelineError
from pipeline.eval.monitor import (effective_rank, feature_std, multi_information, position_loss, position_share,
                                   ridge_accuracy)
from pipeline.eval.probe import DTYPE, accuracy, fit, objective, run_probe, split_train_val

CFG = repo_params().probe  # the committed probe


def blobs(n_per_class: int, classes: int, dim: int, spread: float, seed: int):
    gen = torch.Generator().manual_seed(seed)
    centers = torch.randn(classes, dim, generator=gen) * 3
    y = torch.arange(classes).repeat_interleave(n_per_class)
    x = centers[y] + spread * torch.randn(len(y), dim, generator=gen)
    return x, y


def newton_optimum(x: torch.Tensor, y: torch.Tensor, classes: int, l2: float) -> tuple[torch.Tensor, torch.Tensor]:
    """The reference solver: Newton's method with the exact Hessian, in float64, to machine precision."""
    d = x.shape[1]
    theta = torch.zeros(d * classes + classes, dtype=torch.float64)

    def f(t):
        return objective(t[:d * classes].view(d, classes), t[d * classes:], x, y, l2)

    for _ in range(100):
        g = torch.autograd.functional.jacobian(f, theta)
        if g.abs().max() < 1e-13:
            break
        h = torch.autograd.functional.hessian(f, theta)
        # The bias is unpenalised and the softmax is shift-invariant: a tiny ridge keeps H invertible.
        theta = theta - torch.linalg.solve(h + 1e-12 * torch.eye(len(theta), dtype=h.dtype), g)
    return theta[:d * classes].view(d, classes), theta[d * classes:]


@pytest.mark.parametrize("collinear", [False, True])
def test_probe_reaches_the_optimum_of_a_reference_solver(collinear):
    x, y = blobs(60, 3, 5, spread=2.0, seed=7)
    if collinear:  # what a collapsed encoder's features look like: nearly dependent dimensions
        x[:, 3] = x[:, 0] + 1e-4 * x[:, 3]
        x[:, 4] = 2 * x[:, 1] - x[:, 0] + 1e-5 * x[:, 4]
    x = ((x - x.mean(0)) / x.std(0)).to(DTYPE)
    l2 = 1e-3
    w_ref, b_ref = newton_optimum(x, y, 3, l2)
    ours = fit(x, y, 3, l2, CFG)
    assert ours.converged and ours.grad_norm <= CFG.tolerance
    best = float(objective(w_ref, b_ref, x, y, l2))
    assert float(objective(ours.w, ours.b, x, y, l2)) - best < 1e-9
    # Same classifier: the logits agree (the bias is defined up to a constant shift across classes).
    logits, ref = x @ ours.w + ours.b, x @ w_ref + b_ref
    assert torch.allclose(logits - logits.mean(1, keepdim=True), ref - ref.mean(1, keepdim=True), atol=1e-3)


def test_a_fit_that_runs_out_of_iterations_says_so():
    x, y = blobs(60, 3, 5, spread=2.0, seed=7)
    short = dataclasses.replace(CFG, max_iter=1)
    result = fit(x.to(DTYPE), y, 3, 1e-6, short)
    assert not result.converged and result.grad_norm > CFG.tolerance


def test_probe_separates_separable_features():
    x, y = blobs(60, 4, 8, spread=0.3, seed=0)
    tx, ty = blobs(20, 4, 8, spread=0.3, seed=0)
    result = run_probe(x, y, tx, ty, 4, CFG, seed=0)
    assert result.top1 == pytest.approx(100.0)
    assert result.n_train + result.n_val == len(x) and result.n_test == len(tx)
    assert result.l2 in {g["l2"] for g in result.grid} and result.converged


@pytest.mark.parametrize("peak, grid, tried, chosen, on_edge", [
    (1e-9, (10.0, 100.0), [0.1, 1.0, 10.0, 100.0], 0.1, True),   # far below the grid: widens twice, flagged
    (3e-4, (1e-6, 1e-4, 1e-2, 1.0), [1e-6, 1e-4, 1e-2, 1.0], 1e-4, False),  # inside: no widening
    (0.1, (1e-4, 1e-2), [1e-4, 1e-2, 0.1, 1.0], 0.1, False),    # above: widening brackets the peak
])
def test_a_best_penalty_on_the_grid_edge_widens_the_search_then_is_flagged(monkeypatch, peak, grid, tried, chosen,
                                                                           on_edge):
    from pipeline.eval import probe

    # A stand-in fit whose validation top-1 peaks at `peak` (log scale), so the search alone is tested.
    monkeypatch.setattr(probe, "covariance_eig", lambda x: None)
    monkeypatch.setattr(probe, "fit", lambda x, y, k, l2, cfg, start=None, eig=None: probe.Fit(l2, None, 1, 0.0, True))
    monkeypatch.setattr(probe, "accuracy", lambda f, x, y: -abs(math.log10(f.w / peak)))
    best, _, trials, edge = probe.search(None, None, None, None, 2, dataclasses.replace(CFG, l2=grid, widen=2))
    assert sorted(trials) == pytest.approx(tried) and best == pytest.approx(chosen) and edge is on_edge


@pytest.mark.parametrize("patience, tried", [
    (2, [1e-4, 1e-3, 1e-2, 0.1, 1.0]),        # two falls past the peak end the path: 1e-5 and 1e-6 never fitted
    (3, [1e-5, 1e-4, 1e-3, 1e-2, 0.1, 1.0]),
])
def test_the_path_stops_once_validation_has_fallen_patience_times(monkeypatch, patience, tried):
    from pipeline.eval import probe

    fitted = []
    monkeypatch.setattr(probe, "covariance_eig", lambda x: None)
    monkeypatch.setattr(probe, "fit", lambda x, y, k, l2, cfg, start=None, eig=None: fitted.append(l2) or probe.Fit(l2, None, 1,
                                                                                                           0.0, True))
    monkeypatch.setattr(probe, "accuracy", lambda f, x, y: -abs(math.log10(f.w / 1e-2)))
    grid = (1e-6, 1e-5, 1e-4, 1e-3, 1e-2, 0.1, 1.0)
    best, _, trials, edge = probe.search(None, None, None, None, 2,
                                         dataclasses.replace(CFG, l2=grid, widen=2, patience=patience))
    assert fitted == sorted(tried, reverse=True)  # strong to weak, and nothing after the stop
    assert sorted(trials) == pytest.approx(tried) and best == pytest.approx(1e-2) and not edge


@pytest.mark.parametrize("grid, scores, widen, tried, chosen, on_edge", [
    # A plateau of equal validation scores inside the grid: its middle, no widening.
    ((1e-4, 1e-3, 1e-2, 0.1, 1.0), {1e-4: 80, 1e-3: 90, 1e-2: 90, 0.1: 90, 1.0: 70}, 2,
     [1e-4, 1e-3, 1e-2, 0.1, 1.0], 1e-2, False),
    # Two middles: the stronger penalty.
    ((1e-4, 1e-3, 1e-2, 0.1), {1e-4: 80, 1e-3: 90, 1e-2: 90, 0.1: 70}, 2, [1e-4, 1e-3, 1e-2, 0.1], 1e-2, False),
    # Flat everywhere (a tiny validation split): widens at the weak end, then the strong end, then picks
    # the middle of the whole flat run, which is no longer an end.
    ((1e-4, 1e-3, 1e-2), {}, 2, [1e-5, 1e-4, 1e-3, 1e-2, 0.1], 1e-3, False),
    # Flat with no room to widen: the middle of the grid, not its strongest end.
    ((1e-4, 1e-3, 1e-2), {}, 0, [1e-4, 1e-3, 1e-2], 1e-3, False),
    # A single best at an end that widening may not leave: flagged.
    ((1e-4, 1e-3, 1e-2), {1e-4: 99}, 0, [1e-4, 1e-3, 1e-2], 1e-4, True),
])
def test_ties_choose_the_middle_of_the_best_plateau(monkeypatch, grid, scores, widen, tried, chosen, on_edge):
    from pipeline.eval import probe

    monkeypatch.setattr(probe, "covariance_eig", lambda x: None)
    monkeypatch.setattr(probe, "fit", lambda x, y, k, l2, cfg, start=None, eig=None: probe.Fit(l2, None, 1, 0.0, True))
    monkeypatch.setattr(probe, "accuracy",
                        lambda f, x, y: next((v for k, v in scores.items() if math.isclose(k, f.w)), 50.0))
    best, _, trials, edge = probe.search(None, None, None, None, 2, dataclasses.replace(CFG, l2=grid, widen=widen))
    assert sorted(trials) == pytest.approx(tried) and best == pytest.approx(chosen) and edge is on_edge


def test_probe_is_at_chance_on_random_labels():
    x, _ = blobs(100, 4, 8, spread=1.0, seed=1)
    y = torch.randint(0, 4, (len(x),), generator=torch.Generator().manual_seed(2))
    tx, _ = blobs(100, 4, 8, spread=1.0, seed=3)
    ty = torch.randint(0, 4, (len(tx),), generator=torch.Generator().manual_seed(4))
    assert run_probe(x, y, tx, ty, 4, CFG, seed=0).top1 < 40


def test_chunked_gradient_equals_one_piece():
    x, y = blobs(30, 3, 5, spread=1.0, seed=5)
    x = x.to(DTYPE)
    whole = fit(x, y, 3, 1e-3, CFG)
    chunked = fit(x, y, 3, 1e-3, dataclasses.replace(CFG, chunk_rows=7))
    assert torch.allclose(whole.w, chunked.w, atol=1e-6) and accuracy(whole, x, y) == accuracy(chunked, x, y)


def test_validation_split_is_carved_from_train_and_disjoint():
    fit_idx, val = split_train_val(100, 0.1, seed=0)
    assert len(val) == 10 and len(fit_idx) == 90
    assert set(fit_idx.tolist()).isdisjoint(val.tolist()) and set(fit_idx.tolist()) | set(val.tolist()) == set(range(100))


def test_probe_rejects_nan_features():
    x, y = blobs(10, 2, 3, spread=0.1, seed=0)
    x[3, 1] = float("nan")
    with pytest.raises(PipelineError, match="NaN"):
        run_probe(x, y, x, y, 2, CFG, seed=0)


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


def test_position_share_and_the_position_mean_predictor():
    gen = torch.Generator().manual_seed(0)
    by_position = torch.randn(1, 9, 4, generator=gen).expand(50, 9, 4)  # every image: the same token per position
    noise = torch.randn(50, 9, 4, generator=gen)
    assert position_share(by_position + 1e-3 * noise) > 0.99
    assert position_loss(by_position, "l2") == pytest.approx(0.0, abs=1e-12)
    assert abs(position_share(noise)) < 0.05  # position explains nothing of i.i.d. tokens
    assert position_loss(noise, "l2") == pytest.approx(float((noise - noise.mean(0)).pow(2).mean()), rel=1e-6)


def test_ema_init_share_is_the_product_of_the_momenta():
    from pipeline.pretrain.schedules import Schedules

    cfg = dataclasses.replace(repo_params().pretrain, epochs=1.0, warmup_epochs=0.0, ema=(0.99, 1.0))
    schedules = Schedules.for_run(cfg, 234)
    assert schedules.ema_init_share(0) == 1.0
    share = schedules.ema_init_share(234)
    assert share == pytest.approx(math.prod(0.99 + 0.01 * s / 234 for s in range(234)), rel=1e-12)
    assert 0.3 < share < 0.32  # the estimate for the quick setting: 31% of the target is its init
