"""Is SparseJEPA's support the same across seeds? Latents are matched across two runs by their features, then
the regions each matched pair serves are compared with what two baselines give (issue 18, control c).
A matching is only as good as its |r| beats that of any two latents (features that all track one thing, such
as brightness, match any latent to any other).

Two seeds' encoders number their latents arbitrarily, so a support (G, K) is compared only through a matching:
latent j of run a is paired with the latent of run b whose pooled features on the same images correlate best
with it (|r|: the maps may read a latent with either sign), one-to-one (the assignment that maximises the summed
|r|). Over the pairs that both runs use, the statistic is the mean Jaccard overlap of the sets of regions they
serve. Its two baselines:

- pairs drawn at random (any matching): what the overlap is when the latents' identities do not carry over;
- each paired latent of run b serving as many regions as it does, but randomly chosen ones: what the overlap is
  when only how many regions a latent serves carries over, not which. A support whose regions mean something
  beats this one; the random-regions control (every map sees the same task) cannot.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from scipy.optimize import linear_sum_assignment


@dataclass(frozen=True)
class SupportAgreement:
    matched_r: float         # mean |r| of the matched pairs that both runs use (1: the same latents, up to sign)
    any_pair_r: float        # baseline: mean |r| over every pair of latents both runs use, matched or not
    used_both: int           # matched pairs both runs use
    used_agree: float        # share of matched pairs used by both or by neither
    used_agree_chance: float  # the same for independent latents, from the two runs' used shares
    jaccard: float           # mean Jaccard overlap of the matched pairs' region sets (pairs both use)
    jaccard_random_pairs: float    # baseline: random pairs of used latents
    jaccard_random_regions: float  # baseline: each latent's count kept, its regions drawn at random


def correlation(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """(K, K') Pearson r between the columns of a (N, K) and b (N, K'); 0 for a constant column."""
    a = a.double() - a.double().mean(0)
    b = b.double() - b.double().mean(0)
    na, nb = a.norm(dim=0), b.norm(dim=0)
    r = (a.T @ b) / (na[:, None] * nb[None, :]).clamp_min(1e-300)
    return torch.where((na[:, None] > 0) & (nb[None, :] > 0), r, torch.zeros_like(r))


def match_latents(a: torch.Tensor, b: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
    """The one-to-one pairing of a's latents (columns) with b's that maximises the summed |r|: (perm, |r|) with
    perm[j] b's partner of a's latent j."""
    r = correlation(a, b).abs().numpy()
    rows, cols = linear_sum_assignment(-r)
    perm = np.empty(r.shape[0], dtype=np.int64)
    perm[rows] = cols
    return perm, r[np.arange(len(perm)), perm]


def jaccard(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Row-wise Jaccard overlap of boolean rows (L, G) (1 when both rows are empty)."""
    union = (a | b).sum(1)
    return np.where(union > 0, (a & b).sum(1) / np.maximum(union, 1), 1.0)


def shuffled_regions(served: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """(L, G) rows with the same number of True each, at random places."""
    order = rng.random(served.shape).argsort(1)
    return np.take_along_axis(np.sort(served, 1)[:, ::-1], order, 1)


def support_agreement(support_a: np.ndarray, support_b: np.ndarray, features_a: torch.Tensor,
                      features_b: torch.Tensor, draws: int = 200, seed: int = 0) -> SupportAgreement:
    """Two runs' supports (G, K) booleans (column alive) and their latents' pooled features (N, K) on the same
    N images: the agreement of the matched pairs and its baselines (each a mean over `draws` random draws)."""
    perm, r = match_latents(features_a, features_b)
    every_r = correlation(features_a, features_b).abs().numpy()
    served_a, served_b = support_a.T.astype(bool), support_b.T[perm].astype(bool)  # (K, G), b reordered to a
    used_a, used_b = served_a.any(1), served_b.any(1)
    both = used_a & used_b
    rng = np.random.default_rng(seed)
    a, b = served_a[both], served_b[both]
    pool_b = support_b.T.astype(bool)[support_b.any(0)]  # every latent b uses, whatever it is matched with
    nan = float("nan")
    return SupportAgreement(
        matched_r=float(r[both].mean()) if both.any() else nan,
        any_pair_r=float(every_r[np.ix_(used_a, support_b.any(0))].mean()) if both.any() else nan,
        used_both=int(both.sum()),
        used_agree=float((used_a == used_b).mean()),
        used_agree_chance=float(used_a.mean() * used_b.mean() + (1 - used_a.mean()) * (1 - used_b.mean())),
        jaccard=float(jaccard(a, b).mean()) if both.any() else nan,
        jaccard_random_pairs=float(np.mean([jaccard(a, pool_b[rng.integers(len(pool_b), size=len(a))]).mean()
                                            for _ in range(draws)])) if both.any() else nan,
        jaccard_random_regions=float(np.mean([jaccard(a, shuffled_regions(b, rng)).mean()
                                              for _ in range(draws)])) if both.any() else nan)
