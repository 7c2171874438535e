"""Linear probes on cached features: L2-regularised multinomial logistic regression, solved to its optimum.

    minimise  mean_i CE(x_i W + b, y_i) + (l2 / 2) ||W||_F^2      (x standardised, b unpenalised)

The objective is smooth and strictly convex, so a full-batch quasi-Newton solver (L-BFGS with a
strong-Wolfe line search) reaches its unique optimum; every fit records its iterations and final
gradient norm, and counts as converged only below `probe.tolerance`. A step-size schedule on
mini-batches (what the probe used before) stops wherever its epochs run out and favours encoders
whose features happen to suit that schedule.

The penalty is chosen on a validation split of train (fits warm-started along the path from the
strongest penalty to the weakest, which stops once `probe.patience` fits in a row score below the
best so far: weak penalties cost the most iterations, and past the peak they only fall further):
the middle of the run of penalties with the best validation top-1;
while that run touches an end of the grid, the grid widens by a decade there, up to `probe.widen`
times, and the record says whether the choice still sits on an edge.
The chosen penalty is then refit on all of train and scored once on the test split. The gradient is
accumulated over `probe.chunk_rows` rows at a time, so a large probe set (iNat18) needs no more
memory than one chunk's logits.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from pipeline.artifacts.records import ProbeResult
from pipeline.config.probe import ProbeConfig
from pipeline.core.errors import PipelineError

DTYPE = torch.float64  # the optimum to the solver's tolerance, not float32's rounding floor
CHECK_EVERY = 25  # L-BFGS iterations between checks of the objective's gradient


@dataclass
class Fit:
    w: torch.Tensor  # (D, K)
    b: torch.Tensor  # (K,)
    iterations: int
    grad_norm: float
    converged: bool


def split_train_val(n: int, val_fraction: float, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    n_val = max(1, round(n * val_fraction))
    return perm[n_val:], perm[:n_val]


class Standardizer:
    """Per-dimension mean/std from the fitting set only (BatchNorm without affine, frozen)."""

    def __init__(self, x: torch.Tensor, enabled: bool = True):
        self.mean = x.mean(dim=0) if enabled else torch.zeros(x.shape[1], dtype=x.dtype, device=x.device)
        self.std = x.std(dim=0).clamp_min(1e-6) if enabled else torch.ones(x.shape[1], dtype=x.dtype, device=x.device)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean) / self.std


def objective(w: torch.Tensor, b: torch.Tensor, x: torch.Tensor, y: torch.Tensor, l2: float) -> torch.Tensor:
    """The probe's objective at (w, b), in one piece (`fit` evaluates the same sum chunk by chunk)."""
    return F.cross_entropy(x @ w + b, y) + 0.5 * l2 * (w * w).sum()


def covariance_eig(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor] | None:
    """Eigenvalues and eigenvectors of the features' covariance: what every penalty's Preconditioner on the same
    rows shares (an eigendecomposition of a 2,352-wide covariance costs seconds; the path fits up to 12 penalties).
    None for fewer rows than features, which `fit` solves in the rows' span with a preconditioner of its own."""
    return torch.linalg.eigh(torch.cov(x.T)) if len(x) >= x.shape[1] else None


def second_moment_eig(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Eigenvalues and eigenvectors of x^T x / n: the preconditioner's basis in the rows' span (fewer rows than
    features). There the centred covariance has rank n - 1 in n dimensions; its zero eigenvalue, along the rows'
    mean, scaled that direction by 1 / sqrt(l2), where it duplicates the bias, and warm-started weak penalties
    stalled at a gradient max-norm of 1.5e-6 for all 5,000 iterations (measured: 10 labels per class of CLEVR/Count
    PCA features, 22.8 s a draw, six fits unconverged). The second moment is full rank in the span (the same
    draw: every fit converged, 0.1 s)."""
    return torch.linalg.eigh(x.T @ x / len(x))


class Preconditioner:
    """A change of variables W = A V that makes the objective well conditioned for every penalty.

    Standardised features of a collapsed encoder are nearly collinear (covariance eigenvalues e over
    many decades), so on W itself L-BFGS stalls (measured: no convergence in 1,000 iterations). With
    A = U diag(1/sqrt(e + l2)) (U the eigenvectors), the Hessian in V of the data term, about
    diag(e / (e + l2)), plus that of the penalty, diag(l2 / (e + l2)), is close to the identity. The
    objective is unchanged: it is still the one on W, penalty included.
    """

    def __init__(self, x: torch.Tensor, l2: float, eig: tuple[torch.Tensor, torch.Tensor] | None = None):
        evals, evecs = eig if eig is not None else covariance_eig(x)
        scale = (evals.clamp_min(0) + l2).sqrt()
        self.a = evecs / scale            # (D, D): W = A V
        self.a_inv = (evecs * scale).T    # V = A^-1 W

    def weights(self, v: torch.Tensor) -> torch.Tensor:
        return self.a @ v

    def variables(self, w: torch.Tensor) -> torch.Tensor:
        return self.a_inv @ w


def value_and_grad(w: torch.Tensor, b: torch.Tensor, xt: torch.Tensor, y: torch.Tensor, l2: float,
                   chunk_rows: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The objective at (w, b) and its gradients, summed chunk by chunk so memory holds one chunk's logits.

    In closed form (softmax minus one-hot), not by autograd: an evaluation is a few matrix products,
    and on small probe sets autograd's per-call overhead was most of the probe's time. The rows come
    transposed, `xt` (D, N) contiguous, so the logits are (K, N): on a CPU both products and the softmax then
    run along contiguous memory, where X^T (N x K) with the rows as they are and a softmax over 10 classes at
    a time were the slow parts (measured, 54,000 x 128 rows in float64, one thread: 38 ms an evaluation
    against 96 ms, the same values to 1e-15).
    """
    n = xt.shape[1]
    value = 0.5 * l2 * (w * w).sum()
    gw, gb = l2 * w, torch.zeros_like(b)
    for i in range(0, n, chunk_rows):
        xs, ys = xt[:, i:i + chunk_rows], y[i:i + chunk_rows]
        log_p = torch.log_softmax(torch.addmm(b[:, None], w.T, xs), dim=0)
        value = value - log_p.gather(0, ys[None, :]).sum() / n
        residual = log_p.exp_()
        residual[ys, torch.arange(len(ys), device=ys.device)] -= 1.0  # d CE / d logits = softmax - one-hot
        gw.addmm_(xs, residual.T, alpha=1.0 / n)
        gb.add_(residual.sum(dim=1), alpha=1.0 / n)
    return value, gw, gb


def gradient_norm(w: torch.Tensor, b: torch.Tensor, x: torch.Tensor, y: torch.Tensor, l2: float,
                  chunk_rows: int, xt: torch.Tensor | None = None) -> float:
    """Max-norm of the objective's gradient at (w, b): zero exactly at the optimum. `xt`: x.T contiguous, when
    the caller has it."""
    _, gw, gb = value_and_grad(w, b, x.T.contiguous() if xt is None else xt, y, l2, chunk_rows)
    return float(torch.cat([gw.flatten(), gb.flatten()]).abs().max())


def row_basis(x: torch.Tensor) -> torch.Tensor:
    """(D, r) an orthonormal basis of the span of x's rows (r <= N), from its SVD."""
    _, s, vh = torch.linalg.svd(x, full_matrices=False)
    keep = s > s[0] * 1e-12 if len(s) and s[0] > 0 else torch.arange(len(s)) < 1
    return vh[keep].T


def fit(x: torch.Tensor, y: torch.Tensor, num_classes: int, l2: float, cfg: ProbeConfig,
        start: Fit | None = None, eig: tuple[torch.Tensor, torch.Tensor] | None = None) -> Fit:
    """Minimise the objective with full-batch L-BFGS (on preconditioned variables) from `start` or zero,
    until the objective's gradient max-norm is below cfg.tolerance or cfg.max_iter iterations are spent.
    `eig`: covariance_eig(x), when the caller fits several penalties on the same rows.

    With fewer rows than features (a few labelled images of 2,352 pixels) the solver works in the rows' span:
    the gradient in W, X^T (softmax - one-hot) / n + l2 W, vanishes only inside it, so the optimum is W = Q C
    with Q (D, r) an orthonormal basis of the span, and ||W|| = ||C||: the same objective in r <= n variables
    per class instead of D (measured: a 10-per-class fit on raw CLEVR pixels, 45 s in D). The stopping check
    is still the gradient in W.
    """
    q = row_basis(x) if len(x) < x.shape[1] else None
    xs = x if q is None else x @ q
    xt = x.T.contiguous()  # value_and_grad's layout, made once per fit
    xst = xt if q is None else xs.T.contiguous()
    to_w = (lambda c: c) if q is None else (lambda c: q @ c)
    pre = Preconditioner(xs, l2, eig if q is None else second_moment_eig(xs))
    if start:
        w0 = start.w if q is None else q.T @ start.w
    else:
        w0 = torch.zeros(xs.shape[1], num_classes, dtype=x.dtype, device=x.device)
    v = pre.variables(w0).clone().requires_grad_(True)
    b = (start.b.clone() if start else torch.zeros(num_classes, dtype=x.dtype, device=x.device)).requires_grad_(True)
    solver = torch.optim.LBFGS([v, b], lr=1, max_iter=CHECK_EVERY, tolerance_grad=0.0, tolerance_change=0.0,
                               history_size=20, line_search_fn="strong_wolfe")

    def closure() -> torch.Tensor:
        value, gw, gb = value_and_grad(pre.weights(v.detach()), b.detach(), xst, y, l2, cfg.chunk_rows)
        v.grad, b.grad = pre.a.T @ gw, gb  # W = A V: the chain rule by hand, once per evaluation
        return value

    def weights() -> torch.Tensor:
        return to_w(pre.weights(v.detach()))

    grad_norm = gradient_norm(weights(), b.detach(), x, y, l2, cfg.chunk_rows, xt)
    while grad_norm > cfg.tolerance and solver.state[v].get("n_iter", 0) < cfg.max_iter:
        solver.step(closure)
        grad_norm = gradient_norm(weights(), b.detach(), x, y, l2, cfg.chunk_rows, xt)
    iterations = int(solver.state[v].get("n_iter", 0))
    return Fit(weights(), b.detach(), iterations, grad_norm, grad_norm <= cfg.tolerance)


def accuracy(f: Fit, x: torch.Tensor, y: torch.Tensor) -> float:
    """Top-1 (%)."""
    return float(((x @ f.w + f.b).argmax(dim=1) == y).to(torch.float64).mean() * 100)


def search(x_fit: torch.Tensor, y_fit: torch.Tensor, x_val: torch.Tensor, y_val: torch.Tensor, num_classes: int,
           cfg: ProbeConfig) -> tuple[float, Fit, dict[float, dict], bool]:
    """The chosen penalty, its fit, every trial, and whether the choice is still an end of the (widened) grid.

    The best validation top-1 is often reached by a run of adjacent penalties (a small validation split
    scores in coarse steps): the chosen penalty is the middle of that plateau (of two middles, the
    stronger), not its end, which would send a flat curve to the grid's edge. While the plateau touches
    an end of the grid, the grid widens by a decade there (both ends touched: alternately), up to
    `cfg.widen` times in all.
    """
    grid = sorted(cfg.l2, reverse=True)
    trials: dict[float, dict] = {}
    fits: dict[float, Fit] = {}
    eig = covariance_eig(x_fit)

    def run(values: list[float], start: Fit | None) -> None:
        best, falling = -math.inf, 0
        for l2 in values:
            fits[l2] = start = fit(x_fit, y_fit, num_classes, l2, cfg, start, eig=eig)
            trials[l2] = {"l2": l2, "val_top1": accuracy(start, x_val, y_val), "iterations": start.iterations,
                          "grad_norm": start.grad_norm, "converged": start.converged}
            # A tie is no fall: a flat stretch (a small validation split) may still rise further on.
            best, falling = (trials[l2]["val_top1"], 0) if trials[l2]["val_top1"] >= best else (best, falling + 1)
            if falling >= cfg.patience:
                return

    run(grid, None)
    while True:
        values = sorted(trials)
        top = max(t["val_top1"] for t in trials.values())
        plateau = [v for v in values if trials[v]["val_top1"] == top]
        low, high = plateau[0] == values[0], plateau[-1] == values[-1]
        if (low or high) and len(trials) < len(grid) + cfg.widen:
            # Widen where the plateau touches; touching both ends, alternate (the weak end first).
            weak = low and (not high or values[0] / grid[-1] >= grid[0] / values[-1])
            run([values[0] / 10] if weak else [values[-1] * 10], fits[values[0] if weak else values[-1]])
            continue
        best = plateau[len(plateau) // 2]
        return best, fits[best], trials, best in (values[0], values[-1])


def run_probe(train_x: torch.Tensor, train_y: torch.Tensor, test_x: torch.Tensor, test_y: torch.Tensor,
              num_classes: int, cfg: ProbeConfig, seed: int, device: torch.device | str = "cpu") -> ProbeResult:
    """Choose the penalty on a validation split of train, refit on all of train, score on test (on `device`)."""
    for name, x in (("train", train_x), ("test", test_x)):
        if not torch.isfinite(x).all():
            raise PipelineError(f"probe: {name} features contain NaN or infinity; re-extract them "
                                f"(`dvc repro -f extract`) or check the encoder's pretraining")
    if len(train_x) < 2 or len(test_x) < 1:
        raise PipelineError(f"probe: need at least 2 train and 1 test feature rows, got {len(train_x)} and "
                            f"{len(test_x)}; check the dataset subset params")
    train_x, test_x = train_x.to(device, DTYPE), test_x.to(device, DTYPE)
    train_y, test_y = train_y.to(device), test_y.to(device)
    fit_idx, val_idx = (i.to(device) for i in split_train_val(len(train_x), cfg.val_fraction, seed))

    scale = Standardizer(train_x[fit_idx], cfg.standardize)
    l2, chosen, trials, on_edge = search(scale(train_x[fit_idx]), train_y[fit_idx], scale(train_x[val_idx]),
                                         train_y[val_idx], num_classes, cfg)
    scale = Standardizer(train_x, cfg.standardize)
    final = fit(scale(train_x), train_y, num_classes, l2, cfg, chosen)
    return ProbeResult(top1=accuracy(final, scale(test_x), test_y), val_top1=trials[l2]["val_top1"], l2=l2,
                       on_edge=on_edge, converged=final.converged, iterations=final.iterations,
                       grad_norm=final.grad_norm, n_train=len(fit_idx), n_val=len(val_idx), n_test=len(test_x),
                       num_classes=num_classes, feature_dim=train_x.shape[1],
                       grid=[trials[v] for v in sorted(trials)], untried=sorted(set(cfg.l2) - set(trials)))
