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


def test_a_brier_score_is_refused_for_scores_that_are_not_probabilities():
    # the Brier score's Cox model works on logit(p): a log hazard (or p = 2.0) used to be clipped
    # silently into a wrong score instead of an error
    rng = np.random.default_rng(0)
    n = 80
    p = rng.uniform(0.05, 0.95, n)
    t = rng.exponential(300 / p)
    e = (rng.uniform(size=n) < 0.7).astype(int)
    ok = survival.survival_metrics(t, e, p, train=(t, e, p))
    assert ok.integrated_brier is not None and 0 <= ok.integrated_brier.value <= 1
    log_hazard = np.log(p / (1 - p)) * 3
    with pytest.raises(ValueError, match=r"risk must be predicted probabilities in \[0, 1\]"):
        survival.survival_metrics(t, e, log_hazard, train=(t, e, p))
    with pytest.raises(ValueError, match=r"train p must be predicted probabilities .*got 0\.05.* to 2"):
        survival.survival_metrics(t, e, p, train=(t, e, np.r_[p[:-1], 2.0]))
    # without train a log hazard is a fine risk score: the C-indices only need its order
    free = survival.survival_metrics(t, e, log_hazard)
    assert free.integrated_brier is None and free.harrell_c.value == pytest.approx(ok.harrell_c.value)
