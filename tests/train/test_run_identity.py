"""Runs that reproduce and know who they are: seeding, exact resume with augmentation, fingerprint, lock."""

import json
import os
import socket
import subprocess
import sys

import pandas as pd
import pytest

import riskfm.train.trainer as trainer
from riskfm.train.run import run_training
from riskfm.train.run_folder import LOCK, RunFolderError, RunLock

from .foreign_cohort import write_foreign_cohort

pytestmark = pytest.mark.xdist_group("run_identity")


@pytest.fixture(scope="module")
def manifest(tmp_path_factory):
    return write_foreign_cohort(tmp_path_factory.mktemp("identity"), n=40)


def _cfg(manifest, out, epochs=2, augment=False, modalities=("clinical",)):
    encoders = {"clinical": {"name": "tabular-mlp"}}
    if "ecg" in modalities:
        encoders["ecg"] = {"name": "resnet1d-small"}
    return {"manifest": str(manifest), "out": str(out), "modalities": list(modalities), "targets": ["mace_30d"],
            "encoders": encoders, "split": {"test_fraction": 0.25, "val_fraction": 0.3},
            "train": {"epochs": epochs, "batch_size": 8, "patience": 50, "progress": False, "accelerator": "cpu",
                      "augment": augment, "seed": 7},
            "evaluate": {"n_boot": 20, "figures": False}}


def test_same_config_and_seed_write_identical_predictions(manifest, tmp_path):
    run_training(_cfg(manifest, tmp_path / "a", modalities=("ecg", "clinical")))
    run_training(_cfg(manifest, tmp_path / "b", modalities=("ecg", "clinical")))
    a = (tmp_path / "a" / "predictions.csv").read_bytes()
    b = (tmp_path / "b" / "predictions.csv").read_bytes()
    assert a == b


def test_killed_and_resumed_augmented_run_matches_an_uninterrupted_one(manifest, tmp_path, monkeypatch):
    cfg = dict(modalities=("ecg", "clinical"), augment=True, epochs=3)
    run_training(_cfg(manifest, tmp_path / "whole", **cfg))

    calls = {"n": 0}
    real_predict = trainer.predict

    def crashing_predict(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 3:  # validation of the third epoch: epochs 0 and 1 are checkpointed
            raise RuntimeError("simulated kill")
        return real_predict(*args, **kwargs)

    monkeypatch.setattr(trainer, "predict", crashing_predict)
    with pytest.raises(RuntimeError, match="simulated kill"):
        run_training(_cfg(manifest, tmp_path / "resumed", **cfg))
    assert not (tmp_path / "resumed" / LOCK).exists()  # a crash releases the lock
    monkeypatch.setattr(trainer, "predict", real_predict)
    run_training(_cfg(manifest, tmp_path / "resumed", **cfg))

    whole = pd.read_csv(tmp_path / "whole" / "predictions.csv")
    resumed = pd.read_csv(tmp_path / "resumed" / "predictions.csv")
    pd.testing.assert_frame_equal(whole, resumed)
    h1 = pd.read_csv(tmp_path / "whole" / "history.csv")
    h2 = pd.read_csv(tmp_path / "resumed" / "history.csv")
    assert h1["train_loss"].tolist() == h2["train_loss"].tolist()


def test_reused_folder_with_another_manifest_is_refused_before_writing(manifest, tmp_path):
    run_training(_cfg(manifest, tmp_path / "run", epochs=1))
    config_before = (tmp_path / "run" / "config.yaml").read_text()
    other = write_foreign_cohort(tmp_path / "other", n=40, seed=1)
    with pytest.raises(RunFolderError) as err:
        run_training(_cfg(other, tmp_path / "run", epochs=1))
    msg = str(err.value)
    assert "holds another run" in msg and "manifest" in msg and "new --out" in msg
    assert (tmp_path / "run" / "config.yaml").read_text() == config_before
    assert not (tmp_path / "run" / LOCK).exists()
    # the same config and manifest again is a resume, and more epochs are allowed
    run_training(_cfg(manifest, tmp_path / "run", epochs=2))
    assert pd.read_csv(tmp_path / "run" / "history.csv")["epoch"].tolist() == [0, 1]


def test_non_empty_folder_that_is_not_a_run_is_refused(manifest, tmp_path):
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("my analysis")
    with pytest.raises(RunFolderError, match="holds no fingerprint.json"):
        run_training(_cfg(manifest, tmp_path / "mine", epochs=1))
    assert sorted(p.name for p in (tmp_path / "mine").iterdir()) == ["notes.txt"]


def test_folder_locked_by_a_live_process_is_refused(manifest, tmp_path):
    out = tmp_path / "busy"
    holder = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        out.mkdir()
        (out / LOCK).write_text(json.dumps({"pid": holder.pid, "host": socket.gethostname(), "started": "now"}))
        with pytest.raises(RunFolderError, match=rf"being written by process {holder.pid}"):
            run_training(_cfg(manifest, out, epochs=1))
    finally:
        holder.kill()
        holder.wait()


def test_stale_lock_of_a_dead_process_is_reported_and_replaced(tmp_path, caplog):
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    (tmp_path / LOCK).write_text(json.dumps({"pid": dead.pid, "host": socket.gethostname(), "started": "then"}))
    with caplog.at_level("WARNING"), RunLock(tmp_path) as lock:
        assert json.loads(lock.path.read_text())["pid"] == os.getpid()
    assert "stale lock" in caplog.text and str(dead.pid) in caplog.text
    assert not (tmp_path / LOCK).exists()


def test_files_digest_sees_a_changed_record_named_without_extension(tmp_path):
    from riskfm.train.run_folder import files_digest

    (tmp_path / "P1.hea").write_text("P1 1 500 10\n")
    (tmp_path / "P1.dat").write_bytes(b"\0" * 20)
    before = files_digest([str(tmp_path / "P1")])
    (tmp_path / "P1.dat").write_bytes(b"\0" * 10)  # the signal file replaced by a truncated copy
    assert files_digest([str(tmp_path / "P1")]) != before
