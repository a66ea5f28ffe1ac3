"""The load tools' percentiles (timpe.bench.percentiles)."""
import math

from timpe.bench.percentiles import percentile


def test_percentiles_interpolate_between_ranks():
    values = list(range(1, 101))  # 1..100, in any order
    shuffled = values[::-1]
    assert percentile(shuffled, 50) == 50.5
    assert percentile(shuffled, 99) == 99.01
    assert percentile([1, 2, 3, 4], 50) == 2.5


def test_percentiles_of_few_values():
    assert math.isnan(percentile([], 50))
    assert percentile([0.25], 99) == 0.25
    assert percentile([1, 3], 50) == 2
