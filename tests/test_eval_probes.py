"""The controls and the probes beside the full linear probe (k-NN, low-label), on tiny synthetic features."""
import dataclasses

import pytest
import torch
from conftest import repo_params

from pipeline.core.errors import PipelineError
from pipeline.eval import controls
from pipeline.eval.controls import gaussian_basis, pca_basis, project
from pipeline.eval.features import feature_width
from pipeline.eval.knn import knn_predict, knn_top1, run_knn
from pipeline.eval.low_label import draw_per_class, low_label_probe, run_low_label
from pipeline.eval.probe import run_probe

CFG = repo_params(sections=["probe"]).probe
# A short penalty path: these fits are tiny and must take milliseconds, not the committed grid's weak ends.
FAST = dataclasses.replace(CFG, l2=(1.0, 0.1, 0.01), widen=0, max_iter=300)


def blobs(n_per_class: int, classes: int, dim: int, seed: int, noise: float = 0.3, centres_seed: int = 0):
    """Gaussian blobs around `classes` fixed centres (centres_seed), noise drawn from `seed`."""
    centres = torch.randn(classes, dim, generator=torch.Generator().manual_seed(centres_seed)) * 3
    y = torch.arange(classes).repeat_interleave(n_per_class)
    return centres[y] + noise * torch.randn(len(y), dim, generator=torch.Generator().manual_seed(seed + 1)), y


# -- k-NN --------------------------------------------------------------------------------------------------------

def test_knn_votes_by_cosine_weighted_neighbours():
    bank = torch.tensor([[1.0, 0.0], [0.9, 0.1], [0.0, 1.0]])
    labels = torch.tensor([0, 0, 1])
    # Nearest by cosine: the query points along class 1's direction, whatever its length.
    assert knn_predict(bank, labels, torch.tensor([[0.0, 5.0], [3.0, 0.2]]), 2, k=1, temperature=0.07).tolist() == [1, 0]
    # k = 3: two class-0 votes against one closer class-1 vote; a low temperature lets the closest win.
    query = torch.tensor([[0.45, 0.55]])
    assert knn_predict(bank, labels, query, 2, k=3, temperature=0.01).tolist() == [1]
    assert knn_predict(bank, labels, query, 2, k=3, temperature=100.0).tolist() == [0]  # near-equal weights: majority


def test_knn_chunks_and_k_beyond_the_bank_change_nothing():
    x, y = blobs(20, 3, 8, seed=0)
    q, _ = blobs(5, 3, 8, seed=1)
    whole = knn_predict(x, y, q, 3, k=20, temperature=0.07, chunk_rows=10_000)
    assert torch.equal(whole, knn_predict(x, y, q, 3, k=20, temperature=0.07, chunk_rows=4))
    assert knn_predict(x[:5], y[:5], q, 3, k=50, temperature=0.07).shape == (15,)
    with pytest.raises(PipelineError, match="empty"):
        knn_predict(x[:0], y[:0], q, 3, k=20, temperature=0.07)


def test_knn_sees_what_a_standardised_linear_probe_cannot():
    """The class signal is one dimension ten times smaller than twenty class-free ones: the linear probe on
    standardised features finds it, cosine k-NN (the raw geometry) cannot; the reason k-NN reads a
    near-collapsed encoder lower than the full linear probe does."""
    gen = torch.Generator().manual_seed(0)
    y = torch.arange(2).repeat(200)
    signal = (y[:, None] * 2.0 - 1.0) * 0.2 + 0.02 * torch.randn(400, 1, generator=gen)
    x = torch.cat([signal, 2.0 * torch.randn(400, 20, generator=gen)], dim=1)
    linear = run_probe(x[:300], y[:300], x[300:], y[300:], 2, FAST, seed=0)
    knn = knn_top1(x[:300], y[:300], x[300:], y[300:], 2, k=20, temperature=0.07)
    assert linear.top1 > 95 and knn < 70


def test_run_knn_scores_validation_and_test():
    x, y = blobs(30, 3, 8, seed=0)
    tx, ty = blobs(10, 3, 8, seed=1)
    val, test = run_knn(x, y, tx, ty, 3, 20, 0.07, 0.2, seed=0)
    assert val == 100.0 and test == 100.0


# -- low-label ---------------------------------------------------------------------------------------------------

def test_draw_per_class_takes_n_of_each_class_reproducibly():
    y = torch.tensor([0] * 5 + [1] * 3 + [2] * 7)
    idx = draw_per_class(y, 3, torch.Generator().manual_seed(0))
    assert sorted(y[idx].tolist()) == [0, 0, 0, 1, 1, 1, 2, 2, 2] and len(set(idx.tolist())) == 9
    assert torch.equal(idx, draw_per_class(y, 3, torch.Generator().manual_seed(0)))
    assert not torch.equal(idx, draw_per_class(y, 3, torch.Generator().manual_seed(1)))
    assert draw_per_class(y, 4, torch.Generator().manual_seed(0)) is None  # class 1 has 3


def test_low_label_probe_records_every_draw_and_leaves_out_a_size_a_class_cannot_supply():
    x, y = blobs(30, 3, 8, seed=0, noise=4.0)
    vx, vy = blobs(30, 3, 8, seed=1, noise=4.0)
    out = low_label_probe(x.double(), y, vx.double(), vy, vx.double(), vy, 3, (2, 10, 31), 3, FAST, seed=0)
    assert set(out) == {"2", "10"}  # 31 per class: no class has that many
    assert all(len(out[n][key]) == 3 for n in out for key in ("top1", "val_top1", "l2"))
    assert len(set(out["2"]["top1"])) > 1  # the draws differ
    mean = {n: sum(r["top1"]) / 3 for n, r in out.items()}
    assert mean["10"] >= mean["2"]  # more labels, no worse (on the same noisy blobs)


def test_run_low_label_is_reproducible_and_seeded():
    x, y = blobs(40, 3, 8, seed=0, noise=4.0)
    tx, ty = blobs(40, 3, 8, seed=1, noise=4.0)
    cfg = dataclasses.replace(FAST, low_label=(3,), low_label_draws=2)
    a = run_low_label(x, y, tx, ty, 3, cfg, seed=0)
    assert a == run_low_label(x, y, tx, ty, 3, cfg, seed=0)
    assert a["3"]["top1"] != run_low_label(x, y, tx, ty, 3, cfg, seed=1)["3"]["top1"]


# -- the pixel controls ------------------------------------------------------------------------------------------

def test_pca_basis_is_the_top_principal_directions(monkeypatch):
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(200, 6, generator=gen) * torch.tensor([5.0, 4.0, 3.0, 0.3, 0.2, 0.1]) + 7.0
    mean, basis = pca_basis(x, 3)
    assert basis.shape == (6, 3)
    torch.testing.assert_close(mean, x.double().mean(0))
    _, _, vh = torch.linalg.svd(x.double() - mean, full_matrices=False)
    torch.testing.assert_close(basis.abs(), vh[:3].T.abs(), atol=1e-8, rtol=0)  # up to each direction's sign
    monkeypatch.setattr(controls, "CHUNK_ROWS", 7)  # accumulated chunk by chunk: the same basis
    mean7, basis7 = pca_basis(x, 3)
    torch.testing.assert_close(mean7, mean)
    torch.testing.assert_close(basis7.abs(), basis.abs())
    projected = project(x, basis, mean)
    assert projected.dtype == torch.float32 and projected.var(0)[0] > 20 > projected.var(0)[2] > 5
    assert pca_basis(x[:3], 10)[1].shape == (6, 2)  # at most N - 1 directions
    with pytest.raises(PipelineError, match="at least 2"):
        pca_basis(x[:1], 3)


def test_gaussian_basis_is_seeded_and_scaled():
    a = gaussian_basis(784, 128, seed=0)
    assert torch.equal(a, gaussian_basis(784, 128, seed=0)) and not torch.equal(a, gaussian_basis(784, 128, seed=1))
    assert a.std().item() == pytest.approx(128 ** -0.5, rel=0.02)


def test_feature_width_is_what_extraction_returns():
    model = repo_params(sections=["model"]).model
    assert feature_width(model, 28, 1, "mean") == model.width
    assert feature_width(model, 28, 2, "spatial_2x2") == 2 * 4 * model.width
    assert feature_width(model, 28, 1, "tokens") == (28 // model.patch_size) ** 2 * model.width


def test_a_fit_with_fewer_rows_than_features_reaches_the_optimum_in_the_rows_span():
    """A few labelled images of many pixels: solved in the rows' span, it must still be the optimum in W (the
    gradient in W below the tolerance; the objective is strictly convex) and W must lie in that span."""
    from pipeline.eval.probe import DTYPE, fit, gradient_norm

    gen = torch.Generator().manual_seed(0)
    x = torch.randn(12, 40, generator=gen, dtype=DTYPE)
    y = torch.arange(3).repeat(4)
    for l2 in (1.0, 1e-3):
        f = fit(x, y, 3, l2, FAST)
        assert f.converged and gradient_norm(f.w, f.b, x, y, l2, FAST.chunk_rows) <= FAST.tolerance
        in_span = torch.linalg.lstsq(x.T, f.w).solution
        torch.testing.assert_close(x.T @ in_span, f.w, atol=1e-9, rtol=0)


def test_a_warm_started_weak_penalty_with_fewer_rows_than_features_converges():
    """The low-label probe's path: weak penalties, each started from the last fit, on a few separable rows whose
    mean is not zero (standardised with the whole fitting split's statistics). With the centred covariance as
    the span's preconditioner these fits stalled above the tolerance until max_iter; they must converge fast."""
    from pipeline.eval.probe import DTYPE, fit

    x, y = blobs(8, 4, 64, seed=3)
    x = (x + 0.5).to(DTYPE)
    start = None
    for l2 in (1e-4, 1e-6, 1e-8, 1e-10):
        start = fit(x, y, 4, l2, CFG, start)
        assert start.converged and start.iterations <= 200, (l2, start.iterations, start.grad_norm)
