"""`riskfm prepare` fills the cache (in parts), then `riskfm train` and `predict` read no source file."""

import numpy as np
import pandas as pd
import pytest
import yaml
from typer.testing import CliRunner

from riskfm.cli import app
from riskfm.train.prepare import parse_shard

from .foreign_cohort import write_foreign_cohort


def _config(root, cache):
    manifest = write_foreign_cohort(root / "data", n=36)
    cfg = {
        "manifest": str(manifest), "out": str(root / "run"), "modalities": ["ecg", "ct"],
        "targets": ["stenosis"],
        "split": {"external_sites": ["south"], "test_fraction": 0.25, "val_fraction": 0.25},
        "encoders": {"ecg": {"name": "resnet1d-small"}, "ct": {"name": "cnn3d-small"}},
        "train": {"epochs": 1, "batch_size": 8, "progress": False, "num_workers": 1},
        "evaluate": {"n_boot": 20, "figures": False},
        "data": {"cache_dir": str(cache)},
    }
    path = root / "run.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path, manifest


@pytest.mark.slow
def test_prepare_in_two_parts_then_train_and_predict_read_no_source_file(tmp_path, monkeypatch):
    config, manifest = _config(tmp_path, tmp_path / "cache")
    runner = CliRunner()
    tables = []
    for part in ("0/2", "1/2"):
        res = runner.invoke(app, ["prepare", str(config), "--shard", part])
        assert res.exit_code == 0, res.output + repr(res.exception)
        tables.append(res.output)
    assert "left_to_other_parts" in tables[0]
    # every file was prepared by exactly one of the two parts
    caches = sorted(p.name for p in (tmp_path / "cache").iterdir())
    assert [c.split("-")[0] for c in caches] == ["ct", "ecg"]

    def refuse(path, *a, **k):
        raise AssertionError(f"read a source file: {path}")

    monkeypatch.setattr("riskfm.ecg.io.read_ecg", refuse)
    monkeypatch.setattr("riskfm.ct.io.read_ct", refuse)
    res = runner.invoke(app, ["train", str(config)])
    assert res.exit_code == 0, res.output + repr(res.exception)
    preds = pd.read_csv(tmp_path / "run" / "predictions.csv")
    assert preds["y_prob"].between(0, 1).all() and not preds.duplicated(["patient_id", "target"]).any()
    assert len(pd.read_csv(tmp_path / "run" / "exclusions.csv")) == 0
    # predict uses this machine's default cache (the env var tests set), so it fills that one first
    monkeypatch.undo()
    monkeypatch.setenv("RISKFM_CACHE_DIR", str(tmp_path / "cache"))
    res = runner.invoke(app, ["predict", str(tmp_path / "run"), str(manifest), "--out", str(tmp_path / "p.csv")])
    assert res.exit_code == 0, res.output + repr(res.exception)
    monkeypatch.setattr("riskfm.ecg.io.read_ecg", refuse)
    monkeypatch.setattr("riskfm.ct.io.read_ct", refuse)
    res = runner.invoke(app, ["predict", str(tmp_path / "run"), str(manifest), "--out", str(tmp_path / "p2.csv")])
    assert res.exit_code == 0, res.output + repr(res.exception)
    monkeypatch.undo()
    res = runner.invoke(app, ["predict", str(tmp_path / "run"), str(manifest), "--out", str(tmp_path / "p3.csv"),
                              "--cache-dir", str(tmp_path / "elsewhere")])
    assert res.exit_code == 0 and sorted(p.name.split("-")[0] for p in (tmp_path / "elsewhere").iterdir()) == [
        "ct", "ecg"]
    before = sorted((tmp_path / "cache").rglob("*.index.csv"))
    res = runner.invoke(app, ["predict", str(tmp_path / "run"), str(manifest), "--out", str(tmp_path / "p4.csv"),
                              "--no-cache"])
    assert res.exit_code == 0 and sorted((tmp_path / "cache").rglob("*.index.csv")) == before
    for name in ("p3.csv", "p4.csv"):
        pd.testing.assert_frame_equal(pd.read_csv(tmp_path / name), pd.read_csv(tmp_path / "p2.csv"))
    a, b = pd.read_csv(tmp_path / "p.csv"), pd.read_csv(tmp_path / "p2.csv")
    np.testing.assert_allclose(a["y_prob"], b["y_prob"], rtol=0, atol=0)
    # the run's own predictions of the same patients, from the same cache, agree
    train_preds = preds.set_index(["patient_id", "target"])["y_prob"]
    again = a.set_index(["patient_id", "target"])["y_prob"].reindex(train_preds.index)
    np.testing.assert_allclose(again.to_numpy(), train_preds.to_numpy(), atol=1e-6)


def test_shard_argument_is_checked():
    assert parse_shard("1/4") == (1, 4) and parse_shard(None) is None
    for bad in ("4/4", "x", "1-4", "-1/2"):
        with pytest.raises(ValueError, match="shard"):
            parse_shard(bad)


def test_prepare_refuses_a_run_without_cache(tmp_path):
    config, _ = _config(tmp_path, tmp_path / "cache")
    cfg = yaml.safe_load(config.read_text())
    cfg["data"]["cache"] = False
    config.write_text(yaml.safe_dump(cfg))
    res = CliRunner().invoke(app, ["prepare", str(config)])
    assert res.exit_code != 0 and "data.cache is false" in res.output


@pytest.mark.slow
def test_loader_workers_do_not_change_the_numbers(tmp_path):
    """`num_workers: auto` resolves per machine, so a run must give the same numbers with or without workers."""
    from riskfm.train.run import run_training

    config, _ = _config(tmp_path, tmp_path / "cache")
    base = yaml.safe_load(config.read_text())
    base["train"].update({"epochs": 2, "augment": True})
    results = []
    for workers in (0, 2):
        cfg = {**base, "out": str(tmp_path / f"run{workers}"), "train": {**base["train"], "num_workers": workers}}
        results.append(run_training(cfg).predictions)
    pd.testing.assert_frame_equal(results[0], results[1])
