"""Seed statistics: spread, paired differences with t intervals, and the gate's drop tolerance.

Expected numbers are computed independently (statistics module, tabulated t quantiles), never by the
functions under test.
"""
from __future__ import annotations

import math
import statistics

import pytest

from pipeline.report.stats import (Difference, mean_drop_tolerance, paired_difference, seeds_to_detect, spread,
                                   t_quantile)

# Two-sided 95% Student-t critical values from the tables, for 1, 2 and 4 degrees of freedom.
T95 = {1: 12.706204736174698, 2: 4.302652729911275, 4: 2.7764451051977987}


# ------------------------------------------------------------------------------ spread()

def test_spread_is_mean_and_sample_std() -> None:
    s = spread([40.0, 41.0, 43.0])
    assert s.n == 3
    assert s.mean == pytest.approx(124 / 3)
    assert s.std == pytest.approx(statistics.stdev([40.0, 41.0, 43.0]))  # n - 1, not the population std
    assert s.std == pytest.approx(math.sqrt(7 / 3))


def test_spread_of_one_value_has_no_std() -> None:
    s = spread([42.5])
    assert s.mean == 42.5 and math.isnan(s.std) and s.n == 1


def test_a_nan_run_poisons_the_whole_spread() -> None:
    # A failed seed must show as NaN, not silently drop out of the mean.
    s = spread([40.0, math.nan, 43.0])
    assert math.isnan(s.mean) and math.isnan(s.std) and s.n == 3


def test_spread_of_nothing_is_nan() -> None:
    s = spread([])
    assert math.isnan(s.mean) and math.isnan(s.std) and s.n == 0


# ------------------------------------------------------------------------------ t_quantile()

def test_t_quantile_matches_the_tables() -> None:
    for dof, expected in T95.items():
        assert t_quantile(dof) == pytest.approx(expected, rel=1e-9)
    assert t_quantile(2) == pytest.approx(4.3027, abs=1e-4)


def test_t_quantile_tends_to_the_normal_quantile() -> None:
    assert t_quantile(10**6) == pytest.approx(1.959964, abs=1e-4)
    assert t_quantile(10**6, confidence=0.90) == pytest.approx(1.644854, abs=1e-4)


# ------------------------------------------------------------------------------ paired_difference()

def test_paired_difference_interval() -> None:
    a = {0: 41.0, 1: 43.0, 2: 46.0}
    b = {0: 40.0, 1: 41.0, 2: 43.0}  # a - b = [1, 2, 3]
    d = paired_difference(a, b)
    half = T95[2] * statistics.stdev([1.0, 2.0, 3.0]) / math.sqrt(3)
    assert d.n == 3
    assert d.mean == pytest.approx(2.0)
    assert (d.low, d.high) == (pytest.approx(2.0 - half), pytest.approx(2.0 + half))
    assert (round(d.low, 2), round(d.high, 2)) == (-0.48, 4.48)
    assert d.within_noise


def test_paired_difference_is_narrower_than_the_unpaired_spread() -> None:
    # Both methods move together with the seed: the pairs see a constant gap of 1 point.
    a = {0: 50.0, 1: 60.0, 2: 70.0}
    b = {0: 49.0, 1: 59.0, 2: 69.0}
    d = paired_difference(a, b)
    assert d.mean == pytest.approx(1.0) and d.low == pytest.approx(1.0) and d.high == pytest.approx(1.0)
    assert not d.within_noise


@pytest.mark.parametrize("gap, low_above_zero", [(6.0, True), (-4.0, False)])
def test_interval_that_excludes_zero_is_not_noise(gap: float, low_above_zero: bool) -> None:
    a = {seed: 80.0 + gap + delta for seed, delta in enumerate([-1.0, 0.0, 1.0])}
    b = {seed: 80.0 for seed in range(3)}
    d = paired_difference(a, b)
    half = T95[2] * 1.0 / math.sqrt(3)
    assert d.low == pytest.approx(gap - half) and d.high == pytest.approx(gap + half)
    assert not d.within_noise
    assert (d.low > 0) is low_above_zero and (d.high < 0) is (not low_above_zero)


def test_paired_difference_pairs_only_the_common_seeds() -> None:
    a = {0: 10.0, 1: 12.0, 2: 14.0, 3: 99.0}  # seed 3 has no partner
    b = {1: 10.0, 2: 11.0, 5: 0.0}            # seed 5 has no partner
    d = paired_difference(a, b)  # pairs: seed 1 (+2), seed 2 (+3)
    half = T95[1] * statistics.stdev([2.0, 3.0]) / math.sqrt(2)
    assert d.n == 2 and d.mean == pytest.approx(2.5)
    assert d.low == pytest.approx(2.5 - half) and d.high == pytest.approx(2.5 + half)


def test_one_pair_has_no_interval_and_counts_as_noise() -> None:
    d = paired_difference({0: 50.0, 1: 60.0}, {1: 55.0})
    assert d.n == 1 and d.mean == pytest.approx(5.0)
    assert math.isnan(d.low) and math.isnan(d.high)
    assert d.within_noise  # no interval: nothing can be told apart


def test_no_common_seed_is_nan() -> None:
    d = paired_difference({0: 50.0}, {1: 55.0})
    assert d.n == 0 and math.isnan(d.mean) and d.within_noise


def test_a_nan_seed_makes_the_difference_nan() -> None:
    d = paired_difference({0: 50.0, 1: math.nan, 2: 52.0}, {0: 49.0, 1: 50.0, 2: 51.0})
    assert math.isnan(d.mean) and math.isnan(d.low) and math.isnan(d.high)


# ------------------------------------------------------------------------------ mean_drop_tolerance()

@pytest.mark.parametrize("std, n", [(1.0, 1), (0.0, 3), (math.nan, 3), (0.1, 3)])
def test_drop_tolerance_never_below_the_floor(std: float, n: int) -> None:
    # One seed has no spread; seeds that happen to agree must not leave zero slack.
    assert mean_drop_tolerance(std, n, floor=0.5) == 0.5


@pytest.mark.parametrize("std, n, dof", [(1.0, 3, 4), (2.5, 3, 4), (1.0, 2, 2)])
def test_drop_tolerance_is_the_half_width_of_a_difference_of_two_means(std: float, n: int, dof: int) -> None:
    expected = T95[dof] * std * math.sqrt(2 / n)
    assert mean_drop_tolerance(std, n, floor=0.1) == pytest.approx(expected)
    assert mean_drop_tolerance(1.0, 3, floor=0.1) == pytest.approx(2.2669, abs=1e-4)


def test_drop_tolerance_floor_wins_over_a_small_spread() -> None:
    assert mean_drop_tolerance(1.0, 3, floor=5.0) == 5.0


def test_non_inferiority_reads_the_interval_against_the_margin():
    assert Difference(-0.2, -0.9, 0.5, 3).non_inferiority(1.0) == "non-inferior"
    assert Difference(-0.3, -0.8, -0.1, 3).non_inferiority(1.0) == "non-inferior"  # lower, but within the margin
    assert Difference(0.9, 0.2, 1.6, 3).non_inferiority(1.0) == "non-inferior, better"  # the interval above 0
    assert Difference(-2.0, -3.0, -1.0, 3).non_inferiority(1.0) == "worse"
    assert Difference(-0.5, -1.5, -0.2, 3).non_inferiority(1.0) == "worse"  # below 0 and reaching past the margin
    assert Difference(0.2, -1.7, 2.1, 3).non_inferiority(1.0) == "undetermined"  # within noise is not "as good"
    assert Difference(0.2, math.nan, math.nan, 1).non_inferiority(1.0) == "undetermined"  # one seed: no interval


# ------------------------------------------------------------------------------ seeds_to_detect()

def test_seeds_to_detect_is_the_fewest_seeds_whose_detectable_difference_reaches_the_effect() -> None:
    # Tabulated t quantiles: two-sided 95% and one-sided 80% with 3 and 4 degrees of freedom.
    t95, t80 = {3: 3.182446305284263, 4: 2.7764451051977987}, {3: 0.978472312063, 4: 0.940964577735}
    std = 0.5845  # the standard setting's JEPA target − untrained encoder, linear probe: detectable ±1.81 with 3
    assert (t95[4] + t80[4]) * std / math.sqrt(5) <= 1.0 < (t95[3] + t80[3]) * std / math.sqrt(4)
    assert seeds_to_detect(std, 1.0) == 5
    assert seeds_to_detect(0.01, 1.0) == 2  # any pair detects it
    assert seeds_to_detect(math.nan, 1.0) is None and seeds_to_detect(50.0, 1.0, limit=100) is None
    d = paired_difference({0: 81.0, 1: 82.0, 2: 80.5}, {0: 80.0, 1: 80.2, 2: 80.1})
    assert d.std == pytest.approx(statistics.stdev([1.0, 1.8, 0.4]))
    assert d.seeds_to_detect(1.0) == seeds_to_detect(d.std, 1.0)
