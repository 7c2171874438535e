"""Per-class subsets: which images of a split a prepared dataset keeps."""
from __future__ import annotations

import numpy as np

# The subset is drawn from a permutation with this fixed seed, independent of params.yaml's
# `seed`, so changing the training seed never changes which images a dataset holds.
SUBSET_SEED = 0


def per_class_subset(labels: np.ndarray, n: int, num_classes: int) -> np.ndarray:
    """Indices of min(n, available) images of every class (all when n == 0), in the split's original order.

    A class with fewer than n images keeps all of them (iNat18 is long-tailed: some species have a
    handful), so the promise is "at most n per class, as many as n wherever a class has them".
    """
    if n < 0:
        raise ValueError(f"n must be >= 0, got {n}")
    if n == 0:
        return np.arange(len(labels))
    counts = np.bincount(labels, minlength=num_classes)
    order = np.random.default_rng(SUBSET_SEED).permutation(len(labels))
    # A stable sort by label groups the shuffled indices by class and keeps them shuffled within it.
    by_class = order[np.argsort(labels[order], kind="stable")]
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    chosen = np.concatenate([by_class[start:start + min(n, count)] for start, count in zip(starts, counts)])
    # Sorting restores the original relative order, so the subset is a plain filter of the split.
    return np.sort(chosen)


def short_classes(labels: np.ndarray, n: int, num_classes: int) -> int:
    """How many classes hold fewer than n images (and so keep fewer than n in the subset)."""
    if n == 0:
        return 0
    return int((np.bincount(labels, minlength=num_classes) < n).sum())
