"""A run that crashes mid-training resumes from its last atomic checkpoint."""

import pandas as pd
import pytest

import riskfm.train.trainer as trainer
from riskfm.train.bundle import load_bundle
from riskfm.train.run import run_training

from .foreign_cohort import write_foreign_cohort


def _cfg(manifest, out, epochs):
    return {"manifest": str(manifest), "out": str(out), "modalities": ["clinical"], "targets": ["mace_30d"],
            "encoders": {"clinical": {"name": "tabular-mlp"}},
            "split": {"test_fraction": 0.25, "val_fraction": 0.3},
            "train": {"epochs": epochs, "batch_size": 8, "patience": 50, "progress": False, "accelerator": "cpu"},
            "evaluate": {"n_boot": 20, "figures": False}}


def test_crash_then_resume_continues_from_last_checkpoint(tmp_path, monkeypatch):
    manifest = write_foreign_cohort(tmp_path / "data", n=40)
    calls = {"n": 0}
    real_predict = trainer.predict

    def crashing_predict(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 3:  # validation of the third epoch
            raise RuntimeError("simulated crash")
        return real_predict(*args, **kwargs)

    monkeypatch.setattr(trainer, "predict", crashing_predict)
    with pytest.raises(RuntimeError, match="simulated crash"):
        run_training(_cfg(manifest, tmp_path / "run", epochs=4))
    last = load_bundle(tmp_path / "run" / "checkpoints" / "last.ckpt", "risk-model")["train"]
    assert last["epoch"] == 1 and len(last["history"]) == 2
    monkeypatch.setattr(trainer, "predict", real_predict)
    result = run_training(_cfg(manifest, tmp_path / "run", epochs=4))
    history = pd.read_csv(tmp_path / "run" / "history.csv")
    assert history["epoch"].tolist() == [0, 1, 2, 3]
    # the first two epochs are the crashed run's, carried over rather than re-trained
    assert history["train_loss"].iloc[:2].tolist() == pytest.approx([h["train_loss"] for h in last["history"]])
    assert result.fit.epochs_run == 4
    # exactly where an uninterrupted run of the same config ends: the same predictions, bit for bit
    whole = run_training(_cfg(manifest, tmp_path / "whole", epochs=4))
    resumed = pd.read_csv(tmp_path / "run" / "predictions.csv")
    pd.testing.assert_frame_equal(resumed, pd.read_csv(tmp_path / "whole" / "predictions.csv"))
    assert whole.fit.history == result.fit.history
