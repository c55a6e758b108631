import numpy as np
import pandas as pd
import pytest

from riskfm.data.splits import kfold_splits, make_splits, site_split, stratified_split, subsample


@pytest.fixture
def frame():
    rng = np.random.default_rng(0)
    n = 400
    return pd.DataFrame({
        "patient_id": [f"P{i}" for i in range(n)],
        "site": rng.choice(["a", "b", "c", "ext"], n),
        "stenosis_rca": (rng.random(n) < 0.15).astype(float),
        "stenosis_lm": (rng.random(n) < 0.05).astype(float),
        "stenosis_lad": (rng.random(n) < 0.2).astype(float),
        "stenosis_lcx": (rng.random(n) < 0.1).astype(float),
        "mace_30d": (rng.random(n) < 0.1).astype(float),
    })


def test_stratified_split_is_disjoint_and_stratified(frame):
    tr, te = stratified_split(frame, 0.25, seed=1)
    assert not set(tr) & set(te) and len(tr) + len(te) == len(frame)
    rate = frame.set_index("patient_id")["mace_30d"]
    assert abs(rate[te].mean() - rate[tr].mean()) < 0.03
    assert np.array_equal(stratified_split(frame, 0.25, seed=1)[1], te)  # seeded


def test_kfold_covers_every_patient_once(frame):
    folds = kfold_splits(frame, k=5, seed=0)
    tests = np.concatenate([te for _, te in folds])
    assert sorted(tests) == sorted(frame["patient_id"])
    for tr, te in folds:
        assert not set(tr) & set(te)


def test_site_split_and_unknown_site(frame):
    internal, external = site_split(frame, ["ext"])
    assert set(frame.set_index("patient_id").loc[external, "site"]) == {"ext"}
    assert "ext" not in set(frame.set_index("patient_id").loc[internal, "site"])
    with pytest.raises(ValueError, match="not in the cohort"):
        site_split(frame, ["nowhere"])


@pytest.mark.parametrize("fraction", [1.0, 0.75, 0.5, 0.25])
def test_subsample_fractions(frame, fraction):
    ids = frame["patient_id"].to_numpy()[:200]
    kept = subsample(frame, ids, fraction, seed=0)
    assert len(kept) == pytest.approx(200 * fraction, abs=1)
    assert set(kept) <= set(ids)


def test_make_splits_protocol(frame):
    splits = make_splits(frame, external_sites=["ext"], test_fraction=0.2, val_fraction=0.2, train_fraction=0.5)
    all_ids = np.concatenate(list(splits.values()))
    assert len(all_ids) == len(set(all_ids))  # no patient in two splits
    n_int = (frame["site"] != "ext").sum()
    assert len(splits["test"]) == pytest.approx(0.2 * n_int, abs=1)
    assert len(splits["external"]) == (frame["site"] == "ext").sum()
    # train was subsampled to half of the development part left after validation
    assert len(splits["train"]) == pytest.approx(0.5 * (n_int - len(splits["test"]) - len(splits["val"])), abs=1)
