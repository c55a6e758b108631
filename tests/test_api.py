"""The five-line use of README.md, run verbatim, and the Run object behind it."""

import re
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

import riskfm

REPO = Path(__file__).resolve().parents[1]

# one xdist worker trains the run once for every test of this module
pytestmark = pytest.mark.xdist_group("api_five_lines")


def _five_line_block() -> str:
    text = (REPO / "README.md").read_text()
    section = text[text.index("## In Python"):]
    block = re.search(r"```python\n(.*?)```", section, re.S)
    assert block, "README's 'In Python' section has no python block"
    return block.group(1)


@pytest.fixture(scope="module")
def five_lines(tmp_path_factory, tiny_cohort):
    """Run README's block verbatim in a folder holding a small run.yaml and new_patients.csv."""
    root = tmp_path_factory.mktemp("five_lines")
    manifest = pd.read_csv(tiny_cohort.manifest_path)
    manifest["ecg_path"] = manifest["ecg_path"].map(lambda p: p if pd.isna(p) else str(tiny_cohort.root / p))
    manifest["ct_path"] = manifest["ct_path"].map(lambda p: p if pd.isna(p) else str(tiny_cohort.root / p))
    manifest.to_csv(root / "cohort.csv", index=False)
    new = manifest[manifest["site"] == "site_ext"].drop(columns=["mace_30d", "stenosis_lad"])
    new.to_csv(root / "new_patients.csv", index=False)
    cfg = {"manifest": "cohort.csv", "out": "runs/quickstart", "modalities": ["ecg", "ct", "clinical"],
           "targets": ["stenosis", "mace_30d"],
           "split": {"external_sites": ["site_ext"], "test_fraction": 0.25, "val_fraction": 0.25, "seed": 0},
           "encoders": {"ecg": {"name": "resnet1d-small"}, "ct": {"name": "cnn3d-small"},
                        "clinical": {"name": "tabular-mlp"}},
           "train": {"epochs": 2, "batch_size": 16, "progress": False},
           "evaluate": {"n_boot": 50, "min_events": 3, "min_nonevents": 3, "figures": False}}
    (root / "run.yaml").write_text(yaml.safe_dump(cfg))
    block = _five_line_block().replace('patients=["P00001"]', f'patients=["{new["patient_id"].iloc[0]}"]')
    namespace: dict = {}
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(root)
        exec(compile(block, "README.md", "exec"), namespace)  # noqa: S102 - the README's own code
    return root, namespace, new


def test_readme_block_is_the_five_line_use():
    block = _five_line_block()
    for call in ('riskfm.train("run.yaml")', 'riskfm.load_run("runs/quickstart")', 'run.predict("new_patients.csv")',
                 "run.evaluate()", "run.explain(patients=", "riskfm.list_encoders()"):
        assert call in block


def test_five_lines_train_predict_evaluate_explain(five_lines):
    root, ns, new = five_lines
    run, scores, metrics, explained = ns["run"], ns["scores"], ns["metrics"], ns["explained"]
    assert isinstance(run, riskfm.Run) and run.out_dir == root.absolute() / "runs/quickstart"
    # one score per new patient and target, probabilities in [0, 1]
    probs = scores[scores["target"] != "risk_score"]
    assert set(probs["patient_id"]) == set(new["patient_id"].astype(str))
    assert not probs.duplicated(["patient_id", "target"]).any()
    assert set(probs["target"]) == {"stenosis_rca", "stenosis_lm", "stenosis_lad", "stenosis_lcx", "mace_30d"}
    assert probs["y_prob"].between(0, 1).all()
    # the scores are the run's own external predictions: same model, same patients
    own = pd.read_csv(root / "runs/quickstart/predictions.csv", dtype={"patient_id": str}).query("split == 'external'")
    merged = own.merge(probs, on=["patient_id", "target"], suffixes=("", "_new"))
    assert len(merged) == len(probs) and np.allclose(merged["y_prob"], merged["y_prob_new"], atol=1e-5)
    # evaluate() recomputes the run's metrics into runs/quickstart/evaluation, leaving the run's own alone
    assert (root / "runs/quickstart/evaluation/metrics.json").is_file()
    assert metrics.keys() == run.metrics.keys()
    assert explained.files and all((root / f).is_file() for f in explained.files)
    assert "resnet1d-small" in ns["riskfm"].list_encoders()


def test_run_loads_lazily_and_reports_its_parts(five_lines):
    root, _, _ = five_lines
    run = riskfm.load_run(root / "runs/quickstart")
    assert run._loaded is None  # nothing read until asked
    assert run.config.out.endswith("quickstart") and "mace_30d" in run.targets
    assert run.model.training is False
    assert {"patient_id", "split", "target", "y_prob"} <= set(run.predictions.columns)
    assert "external" in run.metrics
    assert repr(run) == f"Run({str(root.absolute() / 'runs/quickstart')!r})"


def test_predict_counts_exclusions(five_lines, tmp_path):
    root, _, new = five_lines
    broken = new.copy()
    broken.loc[broken.index[0], "ct_path"] = str(tmp_path / "missing.nii.gz")
    broken.to_csv(tmp_path / "broken.csv", index=False)
    run = riskfm.load_run(root / "runs/quickstart")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        scores = run.predict(tmp_path / "broken.csv")
    assert any("1 patient(s) excluded" in str(w.message) for w in caught)
    assert scores.attrs["exclusions"]["patient_id"].astype(str).tolist() == [str(broken["patient_id"].iloc[0])]
    assert str(broken["patient_id"].iloc[0]) not in set(scores["patient_id"])


def test_load_run_of_a_folder_without_model_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="not a finished run folder \\(has no model.pt\\)"):
        riskfm.load_run(tmp_path)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        riskfm.load_run(tmp_path / "nowhere")


def test_mismatched_model_file_names_model_pt(five_lines, tmp_path):
    import shutil

    import torch

    from riskfm.errors import CheckpointError

    root, _, _ = five_lines
    copy = tmp_path / "run"
    shutil.copytree(root / "runs/quickstart", copy, ignore=shutil.ignore_patterns("explain", "evaluation"))
    bundle = torch.load(copy / "model.pt", weights_only=True)
    key = next(k for k in bundle["model"] if k.endswith("weight"))
    bundle["model"][key] = torch.zeros(3, 3)
    torch.save(bundle, copy / "model.pt")
    with pytest.raises(CheckpointError, match=r"model\.pt: its weights do not fit the model .*another riskfm version"):
        _ = riskfm.load_run(copy).model


def test_model_pt_is_a_risk_model_bundle_and_older_ones_still_load(five_lines, tmp_path):
    import shutil

    import torch

    from riskfm.errors import CheckpointError

    root, _, _ = five_lines
    run = root / "runs/quickstart"
    bundle = torch.load(run / "model.pt", weights_only=True)
    assert bundle["kind"] == "risk-model" and bundle["version"] == 1 and bundle["fingerprint"]
    reference = riskfm.load_run(run).model.state_dict()
    # a model.pt written before bundles (no kind, version, fingerprint, riskfm) loads the same weights
    legacy = tmp_path / "legacy"
    shutil.copytree(run, legacy, ignore=shutil.ignore_patterns("explain", "evaluation"))
    torch.save({k: v for k, v in bundle.items() if k not in ("kind", "version", "fingerprint", "riskfm")},
               legacy / "model.pt")
    loaded = riskfm.load_run(legacy).model.state_dict()
    assert all(torch.equal(v, loaded[k]) for k, v in reference.items())
    # a bundle of another kind in its place is refused, naming both kinds
    torch.save({**bundle, "kind": "cora-dense"}, legacy / "model.pt")
    with pytest.raises(CheckpointError, match=r"model\.pt: holds a 'cora-dense' checkpoint, not 'risk-model'"):
        _ = riskfm.load_run(legacy).model


def test_train_accepts_a_dict_with_overrides(five_lines, tmp_path):
    root, _, _ = five_lines
    cfg = yaml.safe_load((root / "run.yaml").read_text())
    cfg["manifest"] = str(root / "cohort.csv")
    run = riskfm.train(cfg, out=str(tmp_path / "again"), train__epochs=1)
    assert run.out_dir == tmp_path / "again" and len(run.fit.history) == 1
    assert riskfm.load_run(tmp_path / "again").config.train.epochs == 1


def test_import_riskfm_is_light_and_lists_its_api():
    import subprocess
    import sys

    code = "import riskfm, sys; print('torch' in sys.modules); print(sorted(riskfm.__all__))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split("\n")
    assert out[0] == "False"  # `import riskfm` does not import torch
    for name in ("Run", "load_run", "train", "list_encoders"):
        assert name in riskfm.__all__ and getattr(riskfm, name) is not None
