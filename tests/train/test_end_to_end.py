"""`riskfm train` / `evaluate` / `predict` on a cohort riskfm did not write."""

import json

import numpy as np
import pandas as pd
import pytest
import yaml
from sklearn.metrics import roc_auc_score
from typer.testing import CliRunner

from riskfm.cli import app

from .foreign_cohort import write_foreign_cohort

# one xdist worker trains the shared run once for every test of this module
pytestmark = pytest.mark.xdist_group("end_to_end")


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("foreign")
    manifest = write_foreign_cohort(root / "data")
    cfg = {
        "manifest": str(manifest), "out": str(root / "run"),
        "modalities": ["ecg", "ct", "clinical"], "targets": ["stenosis", "mace_30d", "survival"],
        "split": {"external_sites": ["south"], "test_fraction": 0.25, "val_fraction": 0.25, "seed": 0},
        "encoders": {"ecg": {"name": "resnet1d-small"}, "ct": {"name": "cnn3d-small"},
                     "clinical": {"name": "text-lm", "freeze": True}},
        "train": {"epochs": 2, "batch_size": 16, "progress": False},
        # a 60-patient cohort: the small-sample floor is lowered so that numbers exist to check
        "evaluate": {"n_boot": 50, "min_events": 3, "min_nonevents": 3},
    }
    (root / "config.yaml").write_text(yaml.safe_dump(cfg))
    result = CliRunner().invoke(app, ["train", str(root / "config.yaml"), "--epochs", "2"])
    assert result.exit_code == 0, result.output + repr(result.exception)
    return root


def test_train_writes_outputs_and_metrics_match_predictions(trained_run):
    run = trained_run / "run"
    for name in ("config.yaml", "predictions.csv", "metrics.json", "model.pt", "cohort_report.txt",
                 "splits.csv", "history.csv", "checkpoints/best.ckpt", "checkpoints/last.ckpt"):
        assert (run / name).is_file(), name
    preds = pd.read_csv(run / "predictions.csv")
    assert list(preds.columns[:5]) == ["patient_id", "split", "target", "y_true", "y_prob"]
    assert set(preds["split"]) == {"train", "val", "test", "external"}
    # each patient once per target, and in exactly one split
    assert not preds.duplicated(["patient_id", "target"]).any()
    assert preds.groupby("patient_id")["split"].nunique().max() == 1
    assert preds.loc[preds["target"] != "risk_score", "y_prob"].between(0, 1).all()


def test_the_model_learns_the_learnable_target(trained_run):
    """Behaviour, not smoke: stenosis_lad is visible in the ECG (ST depression) and the CT (a plaque),
    so two epochs already rank it; a constant or broken model would sit at 0.5."""
    run = trained_run / "run"
    preds = pd.read_csv(run / "predictions.csv")
    lad = preds[(preds["target"] == "stenosis_lad") & (preds["split"] == "train")].dropna(subset=["y_true"])
    assert roc_auc_score(lad["y_true"], lad["y_prob"]) > 0.6
    history = pd.read_csv(run / "history.csv")
    assert history["train_loss"].iloc[-1] < history["train_loss"].iloc[0]
    metrics = json.loads((run / "metrics.json").read_text())
    estimated = 0
    for split, by_target in metrics.items():
        for target, m in by_target.items():
            g = preds[(preds["split"] == split) & (preds["target"] == target)].dropna(subset=["y_true"])
            n_pos = int(g["y_true"].sum())
            if n_pos < 3 or len(g) - n_pos < 3:  # the small-sample rule: no number, the reason and counts
                assert m["auroc"]["value"] is None and m["auroc"]["ci"] is None and m["not_estimable"], m
                assert m["n"] == len(g) and m["n_pos"] == n_pos
                continue
            estimated += 1
            assert m["auroc"]["value"] == pytest.approx(roc_auc_score(g["y_true"], g["y_prob"]), abs=1e-9)
            assert m["n"] == len(g) and m["n_pos"] == int(g["y_true"].sum())
            assert m["auroc"]["ci"][0] <= m["auroc"]["value"] <= m["auroc"]["ci"][1]
    assert estimated > 0  # the training split has enough events for a number
    assert {"stenosis_rca", "stenosis_lm", "stenosis_lad", "stenosis_lcx", "mace_30d"} <= set(metrics["test"])
    assert any((run / "figures").glob("roc_*.png"))


def test_evaluate_command_recomputes_metrics(trained_run, tmp_path):
    run = trained_run / "run"
    result = CliRunner().invoke(app, ["evaluate", str(run / "predictions.csv"), "--out", str(tmp_path),
                                      "--n-boot", "50", "--no-figures", "--min-events", "3"])
    assert result.exit_code == 0, result.output
    again = json.loads((tmp_path / "metrics.json").read_text())
    first = json.loads((run / "metrics.json").read_text())
    assert again["external"]["stenosis_lad"]["auroc"]["value"] == pytest.approx(
        first["external"]["stenosis_lad"]["auroc"]["value"])


def test_predict_command_scores_a_manifest(trained_run, tmp_path):
    out = tmp_path / "scores.csv"
    result = CliRunner().invoke(app, ["predict", str(trained_run / "run"), str(trained_run / "data" / "cohort.csv"),
                                      "--out", str(out)])
    assert result.exit_code == 0, result.output + repr(result.exception)
    scores = pd.read_csv(out)
    assert scores["patient_id"].nunique() == 60
    assert np.all((scores["y_prob"] >= 0) & (scores["y_prob"] <= 1))
    # same model, same patients: the external-split predictions of the run are reproduced
    run_preds = pd.read_csv(trained_run / "run" / "predictions.csv").query("split == 'external'")
    merged = run_preds.merge(scores, on=["patient_id", "target"], suffixes=("", "_new"))
    assert np.allclose(merged["y_prob"], merged["y_prob_new"], atol=1e-5)


def test_wrong_config_key_is_reported(tmp_path):
    (tmp_path / "bad.yaml").write_text(yaml.safe_dump({"manifest": "m.csv", "train": {"epoch": 2}}))
    result = CliRunner().invoke(app, ["train", str(tmp_path / "bad.yaml")])
    assert result.exit_code == 2
    assert "train.epoch: unknown key (did you mean 'epochs'?)" in result.output
