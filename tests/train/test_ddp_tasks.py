"""Every engine task under 2-process DDP on CPU (gloo, torchrun): CORA pretraining, a sampled fine-tune, calcium.

The risk model's DDP run is tests/train/test_ddp.py.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

TORCHRUN = Path(sys.executable).parent / "torchrun"


def _torchrun(args, cwd):
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run([str(TORCHRUN), "--standalone", "--nproc_per_node", "2", *map(str, args)],
                          capture_output=True, text=True, timeout=600, env=env, cwd=cwd)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-4000:]
    return out


@pytest.mark.slow
def test_cora_pretraining_runs_as_one_ddp_run(tmp_path):
    from riskfm.ct.io import write_nifti
    from riskfm.train.bundle import load_bundle

    rng = np.random.default_rng(0)
    for i in range(2):  # body, contrast-filled vessels: enough for the mask-less patch-centre fallback
        hu = np.full((24, 40, 40), -1000.0, np.float32)
        hu[:, 5:35, 5:35] = rng.normal(40, 20, (24, 30, 30))
        hu[:, 18:21, 10:30] = 400.0
        write_nifti(tmp_path / "cts" / f"p{i}.nii.gz", hu, np.diag([2.0, 1.0, 1.0, 1.0]))
    out = _torchrun(["-m", "riskfm.cli", "pretrain-ct", tmp_path / "cts", "--out", tmp_path / "pre", "--width", "4",
                     "--patch", "16", "--spacing", "2,1,1", "--steps", "3", "--batch-size", "1",
                     "--checkpoint-every", "2"], tmp_path)
    assert "distributed run on 2 processes" in out
    steps = pd.read_csv(tmp_path / "pre" / "steps.csv")
    assert steps["step"].tolist() == [1, 2, 3] and steps["loss"].notna().all()
    bundle = load_bundle(tmp_path / "pre" / "cora_pretrained.pt", "cora-pretrain")
    assert bundle["step"] == 3 and bundle["config"]["width"] == 4


SCRIPT = textwrap.dedent("""
    import sys
    from types import SimpleNamespace

    import numpy as np
    import torch
    from torch import nn

    from riskfm.train.engine import make_fabric
    from riskfm.train.tasks.sampled import SampledBatchTask, fit_sampled

    fabric = make_fabric(SimpleNamespace(accelerator="cpu", devices=1, strategy="auto", num_nodes=1,
                                         precision="32-true"))
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(3, 8), nn.Tanh(), nn.Linear(8, 1))

    def draw(rng):
        x = torch.from_numpy(rng.normal(size=(4, 3)).astype(np.float32))
        return x, x.sum(dim=1, keepdim=True)

    task = SampledBatchTask("cora-dense", model, nn.functional.mse_loss, draw, seed=1)
    result = fit_sampled(task, 6, lr=0.05, checkpoint_every=3, out_dir=sys.argv[1], progress=False, fabric=fabric)
    torch.save({k: v.cpu() for k, v in model.state_dict().items()}, f"{sys.argv[1]}/rank{fabric.global_rank}.pt")
    print("steps", result.steps_run, "world", fabric.world_size)
    torch.distributed.destroy_process_group()
""")


@pytest.mark.slow
def test_a_sampled_fine_tune_runs_under_ddp_with_replicas_in_step(tmp_path):
    (tmp_path / "fine_tune.py").write_text(SCRIPT)
    out = _torchrun([tmp_path / "fine_tune.py", tmp_path / "run"], tmp_path)
    assert "steps 6 world 2" in out and "distributed run on 2 processes" in out
    a, b = (torch.load(tmp_path / "run" / f"rank{r}.pt", weights_only=True) for r in (0, 1))
    assert all(torch.equal(a[k], b[k]) for k in a)  # DDP averaged the gradients of two different streams


CALCIUM = textwrap.dedent("""
    import sys
    from types import SimpleNamespace

    import torch

    from riskfm.synthetic.calcium import make_calcium_exam
    from riskfm.train.engine import make_fabric
    from riskfm.train.tasks.calcium_segmentation import train_segmenter

    fabric = make_fabric(SimpleNamespace(accelerator="cpu", devices=1, strategy="auto", num_nodes=1,
                                         precision="32-true"))
    exams = [make_calcium_exam(i, burden=2 + i % 3, shape=(8, 48, 48), spacing=(3.0, 2.5, 2.5)) for i in range(2)]
    seg = train_segmenter(exams, widths=(4, 8), epochs=2, steps_per_epoch=2, batch_size=2, roi="none",
                          progress=False, fabric=fabric, max_seconds=3600)
    torch.save(seg.net.state_dict(), f"{sys.argv[1]}/rank{fabric.global_rank}.pt")
    print("history", len(seg.config.history), "world", fabric.world_size)
    torch.distributed.destroy_process_group()  # a script that started the group ends it (else gloo may abort at exit)
""")


@pytest.mark.slow
def test_calcium_segmentation_trains_under_ddp_with_replicas_in_step(tmp_path):
    (tmp_path / "calcium.py").write_text(CALCIUM)
    (tmp_path / "run").mkdir()
    out = _torchrun([tmp_path / "calcium.py", tmp_path / "run"], tmp_path)
    assert "history 2 world 2" in out
    a, b = (torch.load(tmp_path / "run" / f"rank{r}.pt", weights_only=True) for r in (0, 1))
    assert all(torch.equal(a[k], b[k]) for k in a)
