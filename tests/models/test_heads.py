import numpy as np
import pandas as pd
import pytest
import torch
import torch.nn.functional as F

from riskfm.models.heads import BinaryHead, StenosisHead, cox_partial_likelihood, masked_bce


def test_masked_bce_ignores_unknown_labels():
    logits = torch.tensor([[0.5, -1.0], [2.0, 0.3]])
    labels = torch.tensor([[1.0, float("nan")], [0.0, 1.0]])
    loss, n = masked_bce(logits, labels)
    ref = F.binary_cross_entropy_with_logits(torch.tensor([0.5, 2.0, 0.3]), torch.tensor([1.0, 0.0, 1.0]))
    assert n == 3 and torch.isclose(loss, ref)
    loss, n = masked_bce(logits, torch.full_like(labels, float("nan")))
    assert n == 0 and loss.item() == 0.0


def test_cox_partial_likelihood_matches_lifelines():
    from lifelines import CoxPHFitter

    rng = np.random.default_rng(0)
    n = 300
    x = rng.normal(size=(n, 2))
    t = rng.exponential(scale=np.exp(-(0.7 * x[:, 0] - 0.4 * x[:, 1])))  # continuous: no ties
    c = rng.exponential(2.0, n)
    df = pd.DataFrame({"x0": x[:, 0], "x1": x[:, 1], "T": np.minimum(t, c), "E": (t <= c).astype(int)})
    cph = CoxPHFitter().fit(df, "T", "E")
    beta = cph.params_[["x0", "x1"]].to_numpy()
    lh = torch.tensor(x @ beta, dtype=torch.float64)
    loss, n_events = cox_partial_likelihood(lh, torch.tensor(df["T"].to_numpy()), torch.tensor(df["E"].to_numpy(float)))
    assert n_events == df["E"].sum()
    # lifelines reports the partial log-likelihood at its estimate; ours is its negative mean over events
    assert loss.item() == pytest.approx(-cph.log_likelihood_ / n_events, rel=1e-6)


def test_cox_breslow_ties_and_unknown():
    # two tied events at t=1: both patients are in the risk set of each
    lh = torch.tensor([0.2, -0.1, 0.5, 0.0])
    t = torch.tensor([1.0, 1.0, 2.0, float("nan")])
    e = torch.tensor([1.0, 1.0, 0.0, 1.0])
    loss, n = cox_partial_likelihood(lh, t, e)
    denom = torch.logsumexp(lh[:3], 0)
    ref = -((lh[0] - denom) + (lh[1] - denom)) / 2
    assert n == 2 and torch.isclose(loss, ref)


def test_heads_shapes_and_probabilities():
    z = torch.randn(5, 8)
    sh, bh = StenosisHead(8), BinaryHead(8, "mace_30d")
    assert sh(z).shape == (5, 4) and bh(z).shape == (5,)
    probs = sh.probabilities(sh(z))
    assert list(probs) == ["stenosis_rca", "stenosis_lm", "stenosis_lad", "stenosis_lcx"]
    assert all(((p >= 0) & (p <= 1)).all() for p in probs.values())
