"""Seed statistics for the report and the CI gate: pure functions on per-seed numbers.

Every method runs the same seeds, and a seed fixes the init, data order, crops, masks and the probe's
validation split, so two methods' runs of one seed are a pair: their difference cancels what the
seed alone moves (it is why a paired interval is narrower than the two stds suggest).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Mapping

from scipy import stats as _scipy

CONFIDENCE = 0.95
POWER = 0.8  # for the smallest detectable difference: the convention of power analyses


@dataclass(frozen=True)
class Spread:
    mean: float
    std: float  # sample std (n - 1); NaN for one value
    n: int


@dataclass(frozen=True)
class Difference:
    """The paired difference a - b over the seeds both have, with its t interval."""
    mean: float
    low: float   # NaN with fewer than 2 pairs
    high: float
    n: int
    detectable: float = math.nan  # the smallest true difference these pairs detect with POWER (NaN below 2 pairs)
    std: float = math.nan  # of the paired differences

    def seeds_to_detect(self, effect: float) -> int | None:
        """How many seeds, at this spread of the paired differences, detect a true difference of `effect`
        (detectable_difference at most `effect`); None without a spread."""
        return seeds_to_detect(self.std, effect)

    @property
    def within_noise(self) -> bool:
        """The interval covers 0 (or there is no interval): the data cannot tell the two apart."""
        return not (self.low > 0 or self.high < 0)

    def non_inferiority(self, margin: float) -> str:
        """"as good as" judged with a margin: `non-inferior` when the interval's low end lies above -margin
        (`non-inferior, better` when it lies above 0 too), `worse` when the whole interval lies below 0 (and not
        above -margin), else `undetermined` (the interval reaches both below -margin and up to 0 or above, or
        there is none)."""
        if self.low > -margin:
            return NON_INFERIOR + (", better" if self.low > 0 else "")
        return "worse" if self.high < 0 else "undetermined"


NON_INFERIOR = "non-inferior"


def spread(values: list[float]) -> Spread:
    finite = [v for v in values if not math.isnan(v)]
    if len(finite) < len(values) or not values:
        return Spread(math.nan, math.nan, len(values))  # a failed run poisons the cell, visibly
    n = len(values)
    mean = sum(values) / n
    std = math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1)) if n > 1 else math.nan
    return Spread(mean, std, n)


def t_quantile(dof: int, confidence: float = CONFIDENCE) -> float:
    """Two-sided Student-t critical value (4.30 for 2 degrees of freedom at 95%)."""
    return float(_scipy.t.ppf(0.5 + confidence / 2, dof))


def paired_difference(a: Mapping[int, float], b: Mapping[int, float], confidence: float = CONFIDENCE) -> Difference:
    """a - b paired by seed (the seeds both have), mean +- t * std / sqrt(n)."""
    seeds = sorted(set(a) & set(b))
    diffs = [a[s] - b[s] for s in seeds]
    s = spread(diffs)
    if s.n < 2 or math.isnan(s.std):
        return Difference(s.mean, math.nan, math.nan, s.n)
    half = t_quantile(s.n - 1, confidence) * s.std / math.sqrt(s.n)
    return Difference(s.mean, s.mean - half, s.mean + half, s.n, detectable_difference(s.std, s.n, confidence),
                      s.std)


def detectable_difference(std: float, n: int, confidence: float = CONFIDENCE, power: float = POWER) -> float:
    """The smallest true paired difference that n pairs with this spread detect (interval excluding 0) with
    probability `power`: (t_{(1+c)/2} + t_power) * std / sqrt(n), both with n - 1 degrees of freedom (the usual
    t approximation of the noncentral-t power). 5.36 std / sqrt(3) for 3 seeds: what "within noise" cannot rule
    out."""
    if n < 2 or math.isnan(std):
        return math.nan
    return (t_quantile(n - 1, confidence) + float(_scipy.t.ppf(power, n - 1))) * std / math.sqrt(n)


def seeds_to_detect(std: float, effect: float, limit: int = 10 ** 6) -> int | None:
    """The fewest seeds (at least 2) whose paired differences, spread by `std`, detect a true difference of
    `effect` with POWER: what a setting needs to tell `effect` from noise. None without a spread (NaN), or beyond
    `limit`."""
    if math.isnan(std) or effect <= 0 or detectable_difference(std, limit) > effect:
        return None
    low, high = 1, limit  # detectable_difference falls with n: the answer lies in (low, high]
    while high - low > 1:
        mid = (low + high) // 2
        low, high = (low, mid) if detectable_difference(std, mid) <= effect else (mid, high)
    return high


def mean_drop_tolerance(std: float, n: int, floor: float, confidence: float = CONFIDENCE) -> float:
    """How far a fresh mean of n seeds may fall below a committed mean of n seeds (per-seed std `std`)
    before it is a regression: the half-width of the t interval of a difference of two such means,
    never below `floor` (one seed, or seeds that happen to agree, must not leave zero slack)."""
    if n < 2 or math.isnan(std):
        return floor
    return max(floor, t_quantile(2 * n - 2, confidence) * std * math.sqrt(2 / n))
