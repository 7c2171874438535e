"""Anti-collapse terms on a batch of representations, as plain functions on tensors (no modules, no state):

    as_samples                           the context encoder's tokens (B, N, D) as the (S, D) samples a term sees
    gather_rows                          under DDP, every process's samples: the global batch's
    variance_hinge, covariance_penalty   VICReg's variance and covariance terms (Bardes, Ponce & LeCun, 2022)
    random_directions, sigreg,           LeJEPA's SIGReg: the Epps-Pulley test of a standard normal along random
    sigreg_null                          1-D projections (Balestriero & LeCun, 2025), and its value under the null

Every term takes x (S, D): S samples (S >= 2), D dimensions, and returns a float32 scalar computed with autocast
off (a bf16 autocast on CUDA would run the projections and the covariance in bf16): SIGReg in float32, VICReg's
terms in float64. Those two are invariant to a shift of every sample, so their gradient along one (e.g. on the
encoder's last LayerNorm bias) is rounding alone, and in float32 that rounding rivals JEPA's small gradient
there, which Adam then follows. A term is a statistic of the whole batch, so under DDP the methods take it on
gather_rows' global batch: P processes then compute what one process would. pipeline/methods/vicreg_jepa.py and
sigreg_jepa.py add them to JEPA's loss; tests check each on small tensors.
"""
from __future__ import annotations

from contextlib import contextmanager

import torch
import torch.nn.functional as F

# LeJEPA's quadrature: the trapezoid rule on [0, T_MAX] with KNOTS equally spaced knots (its minimal SIGReg).
SIGREG_T_MAX = 3.0
SIGREG_KNOTS = 17


@contextmanager
def _no_autocast(x: torch.Tensor):
    """Autocast off on x's device, for the statistics below (a matmul under bf16 autocast would run in bf16)."""
    with torch.autocast(x.device.type, enabled=False):
        yield


def as_samples(z: torch.Tensor, pooling: str) -> torch.Tensor:
    """Tokens z (B, N, D) as samples (S, D): `mean`, one mean-pooled token per image (S = B); `tokens`, every
    token a sample (S = B * N)."""
    if pooling == "mean":
        return z.mean(dim=1)
    if pooling == "tokens":
        return z.reshape(-1, z.shape[-1])
    raise ValueError(f"unknown pooling {pooling!r}; use mean or tokens")


def gather_rows(x: torch.Tensor, processes: int) -> torch.Tensor:
    """Under DDP (`processes` > 1, every process with as many rows): every process's x, concatenated in rank
    order, the global batch's samples; x itself for one process. Differentiable: the backward sums every
    process's gradient for this process's rows, so that DDP's average of the parameters' gradients over the P
    processes is the gradient of the global batch's term (P copies of it, each differentiated by one process)."""
    if processes == 1:
        return x
    # What torch.distributed.nn.functional.all_gather's deprecation names in its stead (and LeJEPA's collectives).
    import torch.distributed as dist
    from torch.distributed._functional_collectives import all_gather_single

    return all_gather_single(x.contiguous(), 0, dist.group.WORLD)


# -- VICReg ---------------------------------------------------------------------------------------

def variance_hinge(x: torch.Tensor, gamma: float = 1.0, eps: float = 1e-4) -> torch.Tensor:
    """VICReg's variance term: mean over the D dimensions of relu(gamma - sqrt(Var_s[x_sd] + eps)), with the
    unbiased variance over the S samples. 0 once every dimension's std reaches gamma; gamma at a collapse."""
    with _no_autocast(x):
        std = torch.sqrt(x.double().var(dim=0) + eps)
        return F.relu(gamma - std).mean().float()


def covariance_penalty(x: torch.Tensor) -> torch.Tensor:
    """VICReg's covariance term: sum_{i != j} C_ij^2 / D, where C = (x - mean)^T (x - mean) / (S - 1) is the
    samples' (D, D) covariance. It pushes the dimensions to decorrelate, so they do not all carry one signal."""
    with _no_autocast(x):
        x = x.double()
        samples, dim = x.shape
        centred = x - x.mean(dim=0, keepdim=True)
        cov = centred.T @ centred / (samples - 1)
        off = cov.masked_fill(torch.eye(dim, dtype=torch.bool, device=x.device), 0.0)
        return (off.pow(2).sum() / dim).float()


# -- SIGReg -----------------------------------------------------------------------------------------

def random_directions(dim: int, count: int, generator: torch.Generator | None = None) -> torch.Tensor:
    """(count, dim) unit vectors, uniform on the sphere (normalised Gaussian draws), on the generator's device."""
    device = generator.device if generator is not None else None
    a = torch.randn(count, dim, generator=generator, device=device)
    return a / a.norm(dim=1, keepdim=True)


def epps_pulley_grid(t_max: float = SIGREG_T_MAX, knots: int = SIGREG_KNOTS,
                     device: torch.device | None = None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The knots t_k on [0, t_max], phi(t_k) = exp(-t_k^2 / 2), and the quadrature weights c_k: the trapezoid
    rule's (dt / 2 at the ends, dt between) doubled for the mirrored half [-t_max, 0], times the integral's
    weight function w(t) = phi(t)."""
    t = torch.linspace(0.0, t_max, knots, device=device)
    dt = t_max / (knots - 1)
    trapezoid = torch.full((knots,), 2 * dt, device=device)  # 2 *: the even integrand's half on [-t_max, 0]
    trapezoid[0] = trapezoid[-1] = dt
    phi = torch.exp(-0.5 * t.square())
    return t, phi, trapezoid * phi


def sigreg(x: torch.Tensor, directions: torch.Tensor, t_max: float = SIGREG_T_MAX,
           knots: int = SIGREG_KNOTS) -> torch.Tensor:
    """SIGReg: the Epps-Pulley statistic of the projections onto each direction against N(0, 1), averaged over
    the directions (LeJEPA's sketched isotropic-Gaussian regulariser).

    For x (S, D) and unit directions a (K, D), the projections y_s = <a, x_s> have the empirical characteristic
    function phi_hat_a(t) = (1/S) sum_s exp(i t y_s), and

        EP_a = S * integral_{-t_max}^{t_max} |phi_hat_a(t) - exp(-t^2/2)|^2 exp(-t^2/2) dt
             = S * sum_k c_k [(mean_s cos(t_k y_s) - exp(-t_k^2/2))^2 + (mean_s sin(t_k y_s))^2],

        SIGReg(x) = (1/K) sum_a EP_a.

    The integrand is even in t, so the sum runs over t_k >= 0 with the trapezoid weights doubled (c_k:
    epps_pulley_grid, LeJEPA's 17 knots on [0, 3]). The factor S (the number of samples, as LeJEPA's
    statistic) makes it the test statistic: for x ~ N(0, I) its mean is sigreg_null() (about 1.06) whatever
    S, while any departure along a direction (a shift, a wrong scale, a collapse) grows in proportion to S.
    So the weight that suits it depends on S (the batch size and `pooling`).
    """
    with _no_autocast(x):
        samples = x.shape[0]
        t, phi, weights = epps_pulley_grid(t_max, knots, x.device)
        ty = (x.float() @ directions.float().T).unsqueeze(-1) * t  # (S, K, knots)
        err = (ty.cos().mean(dim=0) - phi).square() + ty.sin().mean(dim=0).square()  # (K, knots)
        return samples * (err @ weights).mean()


def sigreg_null(t_max: float = SIGREG_T_MAX, knots: int = SIGREG_KNOTS) -> float:
    """SIGReg's expected value for samples of N(0, I), whatever their number S: sum_k c_k (1 - phi(t_k)^2),
    since S * E|phi_hat(t) - phi(t)|^2 = Var cos(tY) + Var sin(tY) = 1 - phi(t)^2 for Y ~ N(0, 1)."""
    _, phi, weights = epps_pulley_grid(t_max, knots)
    return float(((1 - phi.square()) * weights).sum())
