"""Two-process DDP on CPU (gloo) through torchrun, the way users scale out."""

import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml

from .foreign_cohort import write_foreign_cohort


@pytest.mark.slow
def test_torchrun_two_processes_gathers_each_patient_once(tmp_path):
    manifest = write_foreign_cohort(tmp_path / "data", n=45)
    cfg = {
        "manifest": str(manifest), "out": str(tmp_path / "run"), "modalities": ["ecg", "clinical"],
        "targets": ["stenosis", "mace_30d"],
        "split": {"external_sites": ["south"], "test_fraction": 0.25, "val_fraction": 0.3},
        "encoders": {"ecg": {"name": "resnet1d-small"}, "clinical": {"name": "tabular-mlp"}},
        # batch 4 on ~10 validation patients: the DistributedSampler has to pad, which must not leak
        "train": {"epochs": 2, "batch_size": 4, "accelerator": "cpu", "devices": 2, "strategy": "ddp",
                  "progress": False},
        "evaluate": {"n_boot": 20, "figures": False},
    }
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(cfg))
    torchrun = Path(sys.executable).parent / "torchrun"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run([str(torchrun), "--standalone", "--nproc_per_node", "2", "-m", "riskfm.cli", "train",
                           str(tmp_path / "c.yaml")], capture_output=True, text=True, timeout=600, env=env)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "MEMBER: 2/2" in proc.stdout + proc.stderr  # really two processes in one process group
    preds = pd.read_csv(tmp_path / "run" / "predictions.csv")
    splits = pd.read_csv(tmp_path / "run" / "splits.csv")
    assert not preds.duplicated(["patient_id", "target"]).any()
    for split, ids in splits.groupby("split")["patient_id"]:
        for target, g in preds[preds["split"] == split].groupby("target"):
            assert sorted(g["patient_id"]) == sorted(ids), (split, target)
    history = pd.read_csv(tmp_path / "run" / "history.csv")
    assert len(history) == 2 and history["train_loss"].notna().all()
