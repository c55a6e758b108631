"""`riskfm explain RUN_DIR --patients ...` on a demo-configured run: every figure is written, in a folder
per target (OUT/<target>/), so a second target does not overwrite the first."""

import json

import numpy as np
import pandas as pd
import pytest
from PIL import Image
from typer.testing import CliRunner

from riskfm.cli import app

pytestmark = pytest.mark.xdist_group("explain_run")


@pytest.fixture(scope="module")
def demo_run(tiny_cohort, tmp_path_factory):
    """The demo's configuration (median-beat ECG, CT CNN, frozen MiniLM on clinical text), 1 epoch, on 40
    patients of the shared tiny cohort (the language model dominates the cost on a CPU)."""
    from riskfm.recipes.demo import demo_config
    from riskfm.train.run import run_training

    root = tmp_path_factory.mktemp("explain_run")
    manifest = pd.read_csv(tiny_cohort.manifest_path, dtype={"patient_id": str})
    external = manifest["site"] == "site_ext"
    keep = pd.concat([manifest[~external].head(28), manifest[external].head(12)])
    for col in ("ecg_path", "ct_path"):
        keep[col] = [str(tiny_cohort.root / p) if isinstance(p, str) and p else "" for p in keep[col]]
    keep.to_csv(root / "manifest.csv", index=False)
    cfg = demo_config(root / "manifest.csv", root / "report", quick=True, epochs=1)
    cfg["encoders"]["ct"]["kwargs"] = {"widths": [4, 8, 8, 8]}
    cfg["encoders"]["clinical"] = {"name": "text-lm", "freeze": True}  # token attributions roll up to variables
    cfg["split"].update(test_fraction=0.3, val_fraction=0.3)
    cfg["train"].update(batch_size=16, progress=False)
    cfg["evaluate"] = {"n_boot": 10, "figures": False}
    run_training(cfg)
    return root / "report"


def _patients(run, n=1):
    """Test-split patients with every modality."""
    import yaml

    preds = pd.read_csv(run / "predictions.csv", dtype={"patient_id": str})
    manifest = pd.read_csv(yaml.safe_load((run / "config.yaml").read_text())["manifest"], dtype={"patient_id": str})
    full = manifest[(manifest["ecg_path"].fillna("") != "") & (manifest["ct_path"].fillna("") != "")]
    ids = [p for p in preds.query("split == 'test'")["patient_id"].unique() if p in set(full["patient_id"])]
    return ids[:n]


def test_explain_command_writes_every_figure(demo_run, tmp_path):
    pid = _patients(demo_run)[0]
    out = tmp_path / "explain"
    result = CliRunner().invoke(app, ["explain", str(demo_run), "--patients", pid, "--out", str(out),
                                      "--n-steps", "8", "--cohort-size", "24", "--sanity", "--dpi", "80"])
    assert result.exit_code == 0, result.output + repr(result.exception)
    out = out / "mace_30d"  # every file of a target in its own folder
    for name in (f"ecg_paper_{pid}.png", f"ecg_median_beat_{pid}.png", f"ct_{pid}.png", f"clinical_{pid}.png",
                 f"modalities_{pid}.png", "modalities_cohort.png", "median_beats_mace_30d.png",
                 "sanity_randomisation.png", "sanity_deletion_insertion.png"):
        path = out / name
        assert path.is_file(), f"{name} missing; output:\n{result.output}"
        img = np.asarray(Image.open(path).convert("L"), dtype=float)
        assert img.std() > 10 and (img < 200).mean() > 0.005, f"{name} looks blank"
    summary = json.loads((out / "summary.json").read_text())
    assert summary["target"] == "mace_30d"
    patient = summary["patients"][pid]
    assert set(patient["modalities"]) == {"ecg", "ct", "clinical"}
    assert {"age", "sex", "ldl"} <= set(patient["clinical"])  # token attributions rolled up to variables
    assert len(patient["ecg_per_lead"]) == 12 and len(patient["ct_peak_voxel"]) == 3
    assert summary["clinical_method"] == "layer_integrated_gradients"
    assert summary["cohort"]["median_beats"]["n_high"] >= 2
    cohort = pd.read_csv(out / "modalities_cohort.csv")
    np.testing.assert_allclose(cohort[["ecg", "ct", "clinical"]].sum(1), cohort["f_all"] - cohort["f_none"], atol=1e-5)


def test_explain_command_reports_unknown_patients_and_methods(demo_run, tmp_path):
    result = CliRunner().invoke(app, ["explain", str(demo_run), "-p", "NOPE", "--out", str(tmp_path)])
    assert result.exit_code == 2
    assert "patients not in" in result.output and "NOPE" in result.output
    result = CliRunner().invoke(app, ["explain", str(demo_run), "-p", "NOPE", "--ecg-method", "lime"])
    assert result.exit_code == 2 and "method 'lime' is not available for ecg" in result.output


def test_explain_command_other_methods_and_target(demo_run, tmp_path):
    pid = _patients(demo_run)[0]
    result = CliRunner().invoke(app, ["explain", str(demo_run), "-p", pid, "--out", str(tmp_path),
                                      "--target", "stenosis_lad", "--ecg-method", "saliency",
                                      "--ct-method", "saliency", "--n-steps", "4", "--cohort-size", "0",
                                      "--dpi", "60"])
    assert result.exit_code == 0, result.output + repr(result.exception)
    lad = tmp_path / "stenosis_lad"
    summary = json.loads((lad / "summary.json").read_text())
    assert (summary["target"], summary["ecg_method"], summary["ct_method"]) == ("stenosis_lad", "saliency",
                                                                                 "saliency")
    assert (lad / f"ct_{pid}.png").is_file() and not (lad / "modalities_cohort.png").exists()
    assert not any(f.is_file() for f in tmp_path.iterdir()) and f"-> {lad}" in result.stdout
    # A second target into the same --out writes beside the first instead of over it.
    before = {f.name: f.stat().st_mtime_ns for f in lad.iterdir()}
    result = CliRunner().invoke(app, ["explain", str(demo_run), "-p", pid, "--out", str(tmp_path),
                                      "--target", "mace_30d", "--ecg-method", "saliency", "--ct-method", "saliency",
                                      "--n-steps", "4", "--cohort-size", "0", "--dpi", "60"])
    assert result.exit_code == 0, result.output + repr(result.exception)
    assert json.loads((tmp_path / "mace_30d" / "summary.json").read_text())["target"] == "mace_30d"
    assert (tmp_path / "mace_30d" / f"ct_{pid}.png").is_file()
    assert {f.name: f.stat().st_mtime_ns for f in lad.iterdir()} == before
    assert json.loads((lad / "summary.json").read_text())["target"] == "stenosis_lad"
    assert not (tmp_path / "summary.json").exists()


def test_target_folder_names():
    from riskfm.explain.run import target_folder

    assert target_folder("out", "mace_30d").as_posix() == "out/mace_30d"
    assert target_folder("out", "stenosis/LAD x").as_posix() == "out/stenosis_LAD_x"
