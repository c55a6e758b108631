"""The demo recipe: its seed reaches the training, and a written cohort is reused only when it is the same one."""

import json

import pytest

from riskfm.recipes.demo import _check_reused_cohort, demo_config, run_demo
from riskfm.synthetic.cohort import SyntheticCohort


def test_demo_seed_is_the_training_seed():
    assert demo_config("m.csv", "out")["train"]["seed"] == 0
    cfg = demo_config("m.csv", "out", seed=7)
    assert cfg["train"]["seed"] == 7
    assert cfg["split"]["seed"] == 0  # the split follows the cohort, which the seed already changes


def _fake_cohort(root, **info):
    root.mkdir(parents=True, exist_ok=True)
    record = {"generator": "riskfm.synthetic.make_cohort", "n": 50, "seed": 2,
              "sites": ["site_a", "site_b", "site_c", "site_ext"], **info}
    (root / "cohort.json").write_text(json.dumps(record))
    return SyntheticCohort(root, root / "manifest.csv", root / "oracle.csv", 50, 0.0)


def test_reused_cohort_must_match_n_seed_and_sites(tmp_path):
    _check_reused_cohort(_fake_cohort(tmp_path / "ok"), n=50, seed=2)  # the same cohort: accepted
    for field, value in (("seed", 3), ("n", 49), ("sites", ["site_a"]), ("generator", "elsewhere")):
        cohort = _fake_cohort(tmp_path / field, **{field: value})
        with pytest.raises(ValueError, match=rf"{field} is .*the demo needs") as err:
            _check_reused_cohort(cohort, n=50, seed=2)
        assert str(tmp_path / field / "cohort.json") in str(err.value)


def test_reused_cohort_without_its_record_is_refused(tmp_path):
    (tmp_path / "c").mkdir()
    cohort = SyntheticCohort(tmp_path / "c", tmp_path / "c" / "manifest.csv", tmp_path / "c" / "oracle.csv", 50, 0.0)
    with pytest.raises(ValueError, match="cohort.json: cannot reuse this cohort, its record is missing"):
        _check_reused_cohort(cohort, n=50, seed=2)
    (tmp_path / "c" / "cohort.json").write_text("{not json")
    with pytest.raises(ValueError, match="unreadable"):
        _check_reused_cohort(cohort, n=50, seed=2)


def test_run_demo_refuses_another_seeds_cohort_before_training(tiny_cohort, tmp_path):
    with pytest.raises(ValueError, match="seed is 3, the demo needs 4"):
        run_demo(tmp_path / "demo", n=80, seed=4, cohort=tiny_cohort)
    assert not (tmp_path / "demo").exists()  # nothing written


@pytest.mark.slow
def test_run_demo_reuses_the_cohort_it_is_given(tiny_cohort, tmp_path):
    manifest_before = tiny_cohort.manifest_path.read_bytes()
    res = run_demo(tmp_path / "demo", n=80, seed=3, cohort=tiny_cohort, quick=True, epochs=1)
    assert not (tmp_path / "demo" / "cohort").exists()  # not written again
    assert res.files["manifest"] == tiny_cohort.manifest_path
    assert tiny_cohort.manifest_path.read_bytes() == manifest_before
    assert res.extras["fit"].epochs_run == 1
    assert set(res.tables["auroc_vs_oracle"]["split"]) == {"test", "external"}
