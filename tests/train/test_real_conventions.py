"""A cohort in PhysioNet's record-name convention and DICOM folders trains through `riskfm train`."""

import pandas as pd
import pytest
import yaml
from typer.testing import CliRunner

from riskfm.cli import app

from .foreign_cohort import write_foreign_cohort

pytestmark = pytest.mark.xdist_group("run_identity")


def test_record_names_without_extension_train_with_nobody_excluded(tmp_path):
    manifest = write_foreign_cohort(tmp_path / "data", n=30)
    df = pd.read_csv(manifest)
    df["ecg_path"] = df["ecg_path"].str.removesuffix(".hea")  # waveforms/subj-000, as PTB-XL lists them
    assert not df["ecg_path"].str.contains(r"\.").any()
    df.to_csv(manifest, index=False)
    cfg = {"manifest": str(manifest), "out": str(tmp_path / "run"), "modalities": ["ecg", "clinical"],
           "targets": ["mace_30d"], "encoders": {"ecg": {"name": "resnet1d-small"}, "clinical": {"name": "tabular-mlp"}},
           "split": {"test_fraction": 0.25, "val_fraction": 0.25},
           "train": {"epochs": 1, "batch_size": 8, "progress": False}, "evaluate": {"n_boot": 20, "figures": False}}
    (tmp_path / "run.yaml").write_text(yaml.safe_dump(cfg))
    result = CliRunner().invoke(app, ["train", str(tmp_path / "run.yaml")])
    assert result.exit_code == 0, result.output
    assert pd.read_csv(tmp_path / "run" / "exclusions.csv").empty
    preds = pd.read_csv(tmp_path / "run" / "predictions.csv")
    assert preds["patient_id"].nunique() == 30
    report = (tmp_path / "run" / "cohort_report.txt").read_text()
    assert "30 patients kept, 0 excluded" in report and "ecg available: 30" in report
    # the inferred clinical variables are printed and written with their types
    assert "clinical variables" in result.output and "smoker" in result.output
    table = pd.read_csv(tmp_path / "run" / "clinical_columns.csv").set_index("column")
    assert table.loc["age", "type"] == "numeric" and table.loc["smoker", "type"] == "categorical"
