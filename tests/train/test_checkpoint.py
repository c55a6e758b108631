import random

import numpy as np
import pytest
import torch

from riskfm.train.checkpoint import load_checkpoint, rng_state, save_atomic, set_rng_state


def test_atomic_save_roundtrip_weights_only(tmp_path):
    state = {"model": {"w": torch.arange(3.0)}, "epoch": 2, "history": [{"epoch": 0, "val_auroc": 0.5}],
             "rng": rng_state()}
    path = save_atomic(state, tmp_path / "ck" / "last.ckpt")
    loaded = load_checkpoint(path)  # weights_only=True by default
    assert torch.equal(loaded["model"]["w"], state["model"]["w"]) and loaded["epoch"] == 2
    assert not list(path.parent.glob("*.tmp"))


def test_failed_save_keeps_previous_file(tmp_path, monkeypatch):
    path = save_atomic({"epoch": 1}, tmp_path / "last.ckpt")

    def boom(*a, **k):
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", boom)
    with pytest.raises(OSError):
        save_atomic({"epoch": 2}, path)
    assert load_checkpoint(path)["epoch"] == 1
    assert not list(tmp_path.glob("*.tmp"))


def test_rng_state_restores_all_generators(tmp_path):
    state = rng_state()
    a = (random.random(), np.random.rand(), torch.rand(1).item())
    save_atomic({"rng": state}, tmp_path / "r.ckpt")
    set_rng_state(load_checkpoint(tmp_path / "r.ckpt")["rng"])
    assert (random.random(), np.random.rand(), torch.rand(1).item()) == a


def test_missing_checkpoint_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.ckpt"):
        load_checkpoint(tmp_path / "nope.ckpt")
