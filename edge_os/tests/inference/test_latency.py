"""LatencyTracker: a windowed high percentile that rises with a spike and decays after it."""

from __future__ import annotations

import math

import pytest
from spinal_edge.inference import LatencyTracker
from spinal_edge.inference.latency import steps_for


def test_no_samples_means_no_delay():
    t = LatencyTracker()
    assert t.estimate() is None
    assert t.delay_steps(1 / 30) == 0


def test_a_spike_raises_the_estimate_then_decays_once_it_leaves_the_window():
    t = LatencyTracker(window=10, quantile=0.95)  # nearest rank 10 of 10: the spike counts
    for _ in range(10):
        t.add(0.100)
    t.add(0.600)
    assert t.estimate() == pytest.approx(0.600)
    assert t.delay_steps(1 / 30) == 18
    for _ in range(10):
        t.add(0.100)
    assert t.estimate() == pytest.approx(0.100)  # a running maximum would still say 0.6
    assert t.delay_steps(1 / 30) == 3


def test_the_percentile_ignores_a_rare_outlier_in_a_full_window():
    t = LatencyTracker(window=100, quantile=0.95)
    for i in range(100):
        t.add(0.5 if i == 50 else 0.1)
    assert t.estimate() == pytest.approx(0.1)
    assert t.percentile(1.0) == pytest.approx(0.5)


def test_negative_and_non_finite_samples_are_ignored():
    t = LatencyTracker()
    assert not t.add(-0.01)
    assert not t.add(math.nan)
    assert not t.add(math.inf)
    assert len(t) == 0


def test_delay_steps_round_up_and_respect_the_cap():
    assert steps_for(0.1, 1 / 30) == 3  # exactly three periods is three, not four
    assert steps_for(0.101, 1 / 30) == 4
    t = LatencyTracker()
    t.add(2.0)
    assert t.delay_steps(1 / 30, cap=49) == 49


def test_bad_parameters_are_refused():
    with pytest.raises(ValueError):
        LatencyTracker(window=0)
    with pytest.raises(ValueError):
        LatencyTracker(quantile=0)
