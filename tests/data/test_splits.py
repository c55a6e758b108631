import numpy as np
import pandas as pd
import pytest

from riskfm.data.splits import (
    kfold_splits,
    low_data_folds,
    make_splits,
    nested_subsets,
    site_split,
    split_indices,
    stratified_split,
    subsample,
)


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


# The index splits of the CT recipes: the outputs below were recorded before the functions moved
# here (from recipes/cora_common.py and ct/calcium/protocols.py); a seed must keep its split.
@pytest.mark.parametrize(("n", "fraction", "seed", "train", "test"), [
    (10, 0.3, 0, [1, 2, 3, 4, 6, 7, 9], [0, 5, 8]),
    (7, 0.5, 3, [0, 2, 3], [1, 4, 5, 6]),
    (20, 0.2, 11, [0, 1, 2, 3, 4, 6, 7, 8, 9, 10, 11, 13, 14, 16, 18, 19], [5, 12, 15, 17]),
])
def test_split_indices_keeps_its_pinned_outputs(n, fraction, seed, train, test):
    tr, te = split_indices(n, fraction, seed)
    assert tr.tolist() == train and te.tolist() == test


def test_split_indices_bounds_and_errors():
    tr, te = split_indices(2, 0.01, 0)
    assert len(te) == 1 and len(tr) == 1  # at least one test case
    tr, te = split_indices(3, 0.99, 0)
    assert len(tr) == 1  # at least one training case
    with pytest.raises(ValueError, match="test_fraction"):
        split_indices(10, 1.0, 0)
    with pytest.raises(ValueError, match="at least 2 cases"):
        split_indices(1, 0.5, 0)


def test_low_data_folds_keep_their_pinned_outputs():
    cells = low_data_folds(12, n_folds=3, fractions=(1.0, 0.5), seed=0)
    assert [(c.fold, c.fraction, c.train.tolist(), c.test.tolist()) for c in cells] == [
        (0, 1.0, [0, 1, 3, 5, 6, 8, 10, 11], [2, 4, 7, 9]),
        (0, 0.5, [0, 1, 3, 11], [2, 4, 7, 9]),
        (1, 1.0, [1, 2, 4, 6, 7, 8, 9, 10], [0, 3, 5, 11]),
        (1, 0.5, [4, 6, 9, 10], [0, 3, 5, 11]),
        (2, 1.0, [0, 2, 3, 4, 5, 7, 9, 11], [1, 6, 8, 10]),
        (2, 0.5, [0, 2, 4, 7], [1, 6, 8, 10]),
    ]
    cells = low_data_folds(10, n_folds=2, fractions=(0.75, 0.25), seed=5)
    assert [(c.fold, c.fraction, c.train.tolist(), c.test.tolist()) for c in cells] == [
        (0, 0.75, [0, 4, 5, 8], [1, 2, 3, 6, 7]),
        (0, 0.25, [5], [1, 2, 3, 6, 7]),
        (1, 0.75, [1, 2, 3, 6], [0, 4, 5, 8, 9]),
        (1, 0.25, [2], [0, 4, 5, 8, 9]),
    ]


@pytest.mark.parametrize(("kwargs", "match"), [
    ({"n": 10, "n_folds": 1}, "n_folds >= 2"),
    ({"n": 3, "n_folds": 5}, "n_folds >= 2"),
    ({"n": 10, "fractions": (0.0,)}, "fractions"),
    ({"n": 10, "fractions": (1.5,)}, "fractions"),
    ({"n": 10, "fractions": ()}, "fractions"),
])
def test_low_data_folds_reject_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        low_data_folds(**kwargs)


def test_nested_subsets_keep_their_pinned_outputs():
    # recorded from the data-efficiency recipe before the subsets moved here
    got = nested_subsets([1, 2, 3, 4, 6, 7, 9], (2, 50, 5), seed=0)
    assert {n: s.tolist() for n, s in got.items()} == {2: [3, 7], 5: [3, 7, 6, 1, 9], 7: [3, 7, 6, 1, 9, 4, 2]}
    got = nested_subsets(np.array([0, 2, 3, 5, 8, 11]), (4, 1, 4, 0), seed=3)
    assert {n: s.tolist() for n, s in got.items()} == {1: [8], 4: [8, 0, 2, 3]}
    with pytest.raises(ValueError, match="positive"):
        nested_subsets([1, 2], (0, -1), seed=0)
