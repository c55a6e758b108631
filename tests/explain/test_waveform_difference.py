"""The median-beat group difference and its pointwise Welch interval against scipy's Welch t-test."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from riskfm.explain.waveforms import compare_median_beats


def test_difference_ci_matches_scipy_welch_interval():
    rng = np.random.default_rng(0)
    high = rng.normal(0.1, 0.3, (9, 3, 20))
    low = rng.normal(0.0, 0.1, (25, 3, 20))
    low[:, 2] = 0.0  # an absent lead: constant zeros in one group
    high[:, 2] = 0.0
    comp = compare_median_beats(high, low, fs=250.0, leads=("I", "II", "V1"), before_s=0.02)
    for li in range(2):
        for w in (0, 7, 19):
            ref = stats.ttest_ind(high[:, li, w], low[:, li, w], equal_var=False).confidence_interval(0.95)
            assert comp.difference[li, w] == pytest.approx(high[:, li, w].mean() - low[:, li, w].mean())
            assert comp.difference_ci[:, li, w] == pytest.approx([ref.low, ref.high], rel=1e-10)
    assert np.all(comp.difference[2] == 0) and np.all(comp.difference_ci[:, 2] == 0)
    frame = comp.to_frame()
    assert {"difference", "difference_ci_low", "difference_ci_high"} <= set(frame.columns)
    assert len(frame) == 3 * 20
    fig = comp.plot_difference()
    assert len(fig.axes) == 3
