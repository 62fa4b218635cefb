import math
from itertools import combinations

import pytest

from agentgym.eval.metrics import ks_for, newcombe_diff, pass_at_k, wilson


def test_wilson_known_values():
    low, high = wilson(8, 10)
    assert low == pytest.approx(0.4902, abs=1e-4) and high == pytest.approx(0.9433, abs=1e-4)
    assert wilson(0, 10)[0] == 0.0 and wilson(10, 10)[1] == 1.0
    assert wilson(0, 0) == (0.0, 1.0)


def test_pass_at_k_matches_brute_force():
    for n in range(1, 7):
        for c in range(n + 1):
            for k in range(1, n + 1):
                outcomes = [1] * c + [0] * (n - c)
                subsets = list(combinations(outcomes, k))
                brute = sum(any(s) for s in subsets) / len(subsets)
                assert pass_at_k(n, c, k) == pytest.approx(brute)
    with pytest.raises(ValueError):
        pass_at_k(2, 1, 3)


def test_newcombe_difference():
    d, low, high = newcombe_diff(5, 50, 25, 50)
    assert d == pytest.approx(0.4) and 0 < low < 0.4 < high < 1
    d, low, high = newcombe_diff(10, 20, 10, 20)
    assert d == 0 and low < 0 < high and math.isclose(-low, high)


def test_reported_ks():
    assert ks_for(1) == [1] and ks_for(4) == [1, 2, 4] and ks_for(6) == [1, 2, 4, 6]
