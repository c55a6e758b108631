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
def test_torchrun_the_readme_way_is_one_ddp_run_that_gathers_each_patient_once(tmp_path):
    manifest = write_foreign_cohort(tmp_path / "data", n=45)
    cfg = {
        "manifest": str(manifest), "out": str(tmp_path / "run"), "modalities": ["ecg", "clinical"],
        "targets": ["stenosis", "mace_30d"],
        "split": {"external_sites": ["south"], "test_fraction": 0.25, "val_fraction": 0.3},
        "encoders": {"ecg": {"name": "resnet1d-small"}, "clinical": {"name": "tabular-mlp"}},
        # batch 4 on ~10 validation patients: the DistributedSampler has to pad, which must not leak.
        # No devices / strategy: README's `torchrun --nproc_per_node 2 ... train run.yaml` must be
        # one 2-process DDP run, not two single-process runs writing one folder.
        "train": {"epochs": 2, "batch_size": 4, "accelerator": "cpu", "progress": False},
        "evaluate": {"n_boot": 20, "figures": False},
    }
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(cfg))
    torchrun = Path(sys.executable).parent / "torchrun"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run([str(torchrun), "--standalone", "--nproc_per_node", "2", "-m", "riskfm.cli", "train",
                           str(tmp_path / "c.yaml")], capture_output=True, text=True, timeout=600, env=env)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "MEMBER: 2/2" in proc.stdout + proc.stderr  # really two processes in one process group
    assert "distributed run on 2 processes" in proc.stdout + proc.stderr
    preds = pd.read_csv(tmp_path / "run" / "predictions.csv")
    splits = pd.read_csv(tmp_path / "run" / "splits.csv")
    assert not preds.duplicated(["patient_id", "target"]).any()
    for split, ids in splits.groupby("split")["patient_id"]:
        for target, g in preds[preds["split"] == split].groupby("target"):
            assert sorted(g["patient_id"]) == sorted(ids), (split, target)
    history = pd.read_csv(tmp_path / "run" / "history.csv")
    assert len(history) == 2 and history["train_loss"].notna().all()


WORLD2 = {"WORLD_SIZE": "2", "LOCAL_WORLD_SIZE": "2", "RANK": "0", "LOCAL_RANK": "0"}


def _train(**kw):
    from riskfm.train.config import TrainConfig

    return TrainConfig(**kw)


def test_under_torchrun_default_devices_become_the_launched_processes():
    from riskfm.train.engine import resolve_launch

    assert resolve_launch(_train(), WORLD2) == {"devices": 2, "strategy": "ddp", "num_nodes": 1}
    assert resolve_launch(_train(devices="auto"), WORLD2)["devices"] == 2
    assert resolve_launch(_train(devices=2, strategy="ddp"), WORLD2)["devices"] == 2
    multi = {"WORLD_SIZE": "8", "LOCAL_WORLD_SIZE": "4"}
    assert resolve_launch(_train(), multi) == {"devices": 4, "strategy": "ddp", "num_nodes": 2}
    # without torchrun nothing changes
    assert resolve_launch(_train(), {}) == {"devices": 1, "strategy": "auto", "num_nodes": 1}


@pytest.mark.parametrize("kw,match", [
    ({"devices": 4}, r"train.devices is 4 but torchrun started 2 processes"),
    ({"devices": 1}, r"train.devices is 1 but torchrun started 2 processes"),
    ({"num_nodes": 2}, r"train.num_nodes is 2 but torchrun started 1 node"),
    ({"strategy": "single_device"}, r"train.strategy 'single_device' runs one process"),
])
def test_config_that_contradicts_torchrun_is_an_error(kw, match):
    from riskfm.train.config import ConfigError
    from riskfm.train.engine import resolve_launch

    with pytest.raises(ConfigError, match=match):
        resolve_launch(_train(**kw), WORLD2)
