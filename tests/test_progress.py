"""Long commands say on stderr what they are doing (phase, counts, time left); --quiet / RISKFM_QUIET=1 silence them.

Covered: writing the synthetic cohort (``make_cohort``), ``riskfm pretrain-ct``, ``riskfm ct plaque``,
``riskfm ct stenosis``, ``riskfm ct abnormality`` and ``riskfm explain``, each with tiny settings.
"""

from __future__ import annotations

import pandas as pd
import pytest
from typer.testing import CliRunner

from riskfm.progress import QUIET_ENV, set_quiet

SPACING = "3.4,3.0,3.0"
BAR = "%|"  # every tqdm bar line holds its percentage followed by the bar


@pytest.fixture(autouse=True)
def _loud(monkeypatch):
    """Each test starts (and leaves the process) with progress on: ``--quiet`` sets process-wide state."""
    monkeypatch.delenv(QUIET_ENV, raising=False)
    set_quiet(False)
    yield
    set_quiet(False)


def _quiet_stderr(text: str) -> str:
    """What of ``text`` is riskfm's progress: status lines and bars (other libraries' warnings ignored)."""
    return "\n".join(line for line in text.replace("\r", "\n").splitlines()
                     if line.startswith("riskfm:") or BAR in line)


@pytest.fixture(scope="module")
def cohort(tmp_path_factory):
    """20 patients, every CT present, small grids: enough for CORA's recipes and a one-epoch run."""
    from riskfm.synthetic import make_cohort

    return make_cohort(n=20, seed=11, out_dir=tmp_path_factory.mktemp("progress_cohort"), missing_ct=0.0,
                       missing_ecg=0.0, ct_shape=(24, 32, 32), ct_spacing=(3.4, 3.0, 3.0), n_workers=1,
                       progress=False)


@pytest.fixture(scope="module")
def checkpoint(cohort, tmp_path_factory):
    from riskfm.ct.pretrain import PretrainConfig
    from riskfm.ct.synthesis import SynthesisConfig
    from riskfm.train.tasks.cora_pretrain import pretrain_cora

    cfg = PretrainConfig(width=4, patch_size=(16, 16, 16), spacing=(3.4, 3.0, 3.0), steps=1, batch_size=1,
                         synthesis=SynthesisConfig(patch_size=(16, 16, 16)))
    return pretrain_cora(cohort.manifest_path, tmp_path_factory.mktemp("progress_pre"), cfg,
                         show_progress=False).checkpoint


def _invoke(args, env=None):
    from riskfm.cli import app

    result = CliRunner().invoke(app, [str(a) for a in args], env=env)
    assert result.exit_code == 0, result.output + repr(result.exception)
    return result


# ------------------------------------------------------------------------------- the cohort
def test_make_cohort_shows_a_bar_over_patients(tmp_path, capsys, monkeypatch):
    from riskfm.synthetic import make_cohort

    small = dict(n=20, seed=1, missing_ct=0.5, ct_shape=(16, 24, 24), ct_spacing=(4.0, 3.0, 3.0))
    make_cohort(out_dir=tmp_path / "a", n_workers=2, **small)
    err = capsys.readouterr().err
    assert "writing 20 synthetic patients" in err and "/20" in err and "patient" in err
    make_cohort(out_dir=tmp_path / "b", n_workers=1, **small)
    assert "writing 20 synthetic patients" in capsys.readouterr().err
    monkeypatch.setenv(QUIET_ENV, "1")
    make_cohort(out_dir=tmp_path / "c", n_workers=1, **small)
    assert capsys.readouterr().err == ""
    monkeypatch.delenv(QUIET_ENV)
    make_cohort(out_dir=tmp_path / "d", n_workers=1, progress=False, **small)
    assert capsys.readouterr().err == ""
    pd.testing.assert_frame_equal(pd.read_csv(tmp_path / "a" / "manifest.csv"),
                                  pd.read_csv(tmp_path / "c" / "manifest.csv"))


# ------------------------------------------------------------------------------- CORA commands
def test_pretrain_ct_reports_reading_and_steps_with_loss(cohort, tmp_path):
    args = ["pretrain-ct", cohort.manifest_path, "--width", "4", "--patch", "16", "--spacing", SPACING,
            "--steps", "3", "--batch-size", "1"]
    result = _invoke([*args, "--out", tmp_path / "a"])
    err = result.stderr
    assert "reading 20 CTs" in err and "pretraining CORA" in err and "3/3" in err and "loss=" in err
    assert "step 1/3" not in result.stdout  # progress is on stderr, not among the results
    assert "wrote" in result.stdout
    quiet = _invoke(["--quiet", *args, "--out", tmp_path / "b"])
    assert _quiet_stderr(quiet.stderr) == "" and "wrote" in quiet.stdout


def test_ct_plaque_reports_each_phase(cohort, checkpoint, tmp_path):
    args = ["ct", "plaque", cohort.manifest_path, "--checkpoint", checkpoint, "--steps", "2",
            "--batch-size", "2", "--test-fraction", "0.5"]
    result = _invoke([*args, "--out", tmp_path / "a"])
    err = result.stderr
    for phase in ("reading 20 CTs", "linear probe on 10 training CTs", "fine-tuning CORA (plaque)",
                  "scoring 20 CTs"):
        assert phase in err, f"{phase!r} not in stderr:\n{err}"
    assert "2/2" in err and "loss=" in err and "AUROC" in result.stdout and "AUROC" not in err
    quiet = _invoke(["--quiet", *args, "--out", tmp_path / "b"])
    assert _quiet_stderr(quiet.stderr) == "" and "AUROC" in quiet.stdout


def test_ct_stenosis_and_abnormality_report_progress_unless_quiet(cohort, checkpoint, tmp_path):
    args = ["ct", "stenosis", cohort.manifest_path, "--checkpoint", checkpoint, "--patch", "16", "--steps", "2",
            "--test-fraction", "0.2"]
    err = _invoke([*args, "--out", tmp_path / "a"]).stderr
    for phase in ("reading 20 CTs", "fine-tuning CORA (stenosis)", "evaluating on 4 test CTs"):
        assert phase in err, f"{phase!r} not in stderr:\n{err}"
    quiet = _invoke([*args, "--out", tmp_path / "b"], env={QUIET_ENV: "1"})
    assert _quiet_stderr(quiet.stderr) == "" and "F1" in quiet.stdout

    ct = cohort.root / "ct" / "P00000.nii.gz"
    args = ["ct", "abnormality", ct, "--checkpoint", checkpoint]
    err = _invoke([*args, "--out", tmp_path / "map.nii.gz"]).stderr
    assert f"riskfm: reading {ct}" in err and "abnormality map" in err and "window" in err
    quiet = _invoke(["--quiet", *args, "--out", tmp_path / "map2.nii.gz"])
    assert _quiet_stderr(quiet.stderr) == ""


def test_library_training_bars_honour_their_flag(capsys):
    import numpy as np
    import torch

    from riskfm.train.tasks.sampled import SampledBatchTask, fit_sampled

    module = torch.nn.Linear(3, 1)

    def batches(rng):
        x = torch.from_numpy(rng.normal(size=(4, 3)).astype(np.float32))
        return x, x.sum(dim=1, keepdim=True)

    def fit_line(**kw):
        fit_sampled(SampledBatchTask("cora-plaque", module, torch.nn.functional.mse_loss, batches), 12,
                    desc="fitting a line", **kw)

    fit_line()
    err = capsys.readouterr().err
    assert "fitting a line" in err and "12/12" in err and "loss=" in err
    fit_line(progress=False)
    assert capsys.readouterr().err == ""
    set_quiet(True)
    fit_line()
    assert capsys.readouterr().err == ""


# ------------------------------------------------------------------------------- riskfm explain
@pytest.fixture(scope="module")
def tiny_run(cohort, tmp_path_factory):
    """One epoch of an ECG + tabular-clinical model on the 20 patients (seconds)."""
    from riskfm.recipes.demo import demo_config
    from riskfm.train.run import run_training

    root = tmp_path_factory.mktemp("progress_run")
    cfg = demo_config(cohort.manifest_path, root / "report", quick=True, epochs=1)
    cfg["modalities"] = ["ecg", "clinical"]
    del cfg["encoders"]["ct"]
    cfg["split"].update(test_fraction=0.3, val_fraction=0.3)
    cfg["train"].update(batch_size=8, progress=False)
    cfg["evaluate"] = {"n_boot": 10, "figures": False}
    run_training(cfg)
    return root / "report"


def test_explain_reports_each_phase_unless_quiet(tiny_run, tmp_path):
    preds = pd.read_csv(tiny_run / "predictions.csv", dtype={"patient_id": str})
    pid = preds.query("split == 'test'")["patient_id"].iloc[0]
    args = ["explain", tiny_run, "-p", pid, "--n-steps", "4", "--cohort-size", "6", "--dpi", "50"]
    result = _invoke([*args, "--out", tmp_path / "a"])
    err = result.stderr
    for phase in (f"riskfm: loading the model of {tiny_run}", "riskfm: explaining mace_30d for 1 patient",
                  "riskfm: ecg attributions (integrated gradients)", "drawing ECG figures",
                  "riskfm: cohort figures: 6 patients", "modality Shapley values of 6 patients"):
        assert phase in err, f"{phase!r} not in stderr:\n{err}"
    assert (tmp_path / "a" / "mace_30d" / f"ecg_paper_{pid}.png").is_file()
    quiet = _invoke(["--quiet", *args, "--out", tmp_path / "b"])
    assert _quiet_stderr(quiet.stderr) == "" and "files for target mace_30d" in quiet.stdout
