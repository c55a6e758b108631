"""Degenerate risk groups must not stop an evaluation (found on the demo's external site)."""

import numpy as np
import pytest

from riskfm.evaluate import survival


def test_group_contrasts_reports_nan_when_cox_does_not_converge(monkeypatch):
    from lifelines import CoxPHFitter
    from lifelines.exceptions import ConvergenceError

    def fail(self, *args, **kwargs):
        raise ConvergenceError("delta contains nan value(s)")

    monkeypatch.setattr(CoxPHFitter, "fit", fail)
    rng = np.random.default_rng(0)
    t = rng.uniform(1, 400, 60)
    e = (rng.random(60) < 0.4).astype(int)
    groups = np.where(np.arange(60) < 30, "low", "high")
    with pytest.warns(RuntimeWarning, match="did not converge"):
        table = survival.group_contrasts(t, e, groups)
    row = table.iloc[0]
    assert np.isnan(row["hazard_ratio"]) and np.isnan(row["cox_p"])
    assert 0.0 <= row["logrank_p"] <= 1.0  # the log-rank test is still reported
