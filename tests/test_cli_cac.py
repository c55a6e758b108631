"""`riskfm cac score` is a thin wrapper over `score_scan`: what the command writes is the CalciumReport's."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from riskfm.cli import app
from riskfm.ct import CTVolume
from riskfm.ct.calcium import CalciumReport, ScanScore, score_scan
from riskfm.synthetic.calcium import make_calcium_cohort, make_calcium_exam

SMALL = {"shape": (8, 48, 48), "spacing": (3.0, 2.5, 2.5)}


@pytest.fixture(scope="module")
def exam():
    return make_calcium_exam(3, burden=3, **SMALL)


def test_calcium_report_fields_dict_and_plot(exam, tmp_path):
    report = score_scan(CTVolume(exam.hu, exam.spacing), heart_mask=exam.heart_roi)
    assert isinstance(report, CalciumReport) and ScanScore is CalciumReport
    assert report.roi_source == "given" and report.method == "threshold"
    assert report.agatston == report.score.agatston and report.volume_mm3 == report.score.volume_mm3
    assert report.category in ("0", "1-10", "11-100", "101-400", ">400")
    d = report.to_dict()
    json.dumps(d)  # JSON-able
    assert d["agatston"] == report.agatston and d["category"] == report.category
    assert d["findings"] == [] and d["forced"] is False and d["settings"]["roi"] == "given"
    png = report.plot(tmp_path / "sub" / "overlay.png")
    assert png.is_file() and png.stat().st_size > 1000
    with pytest.raises(ValueError, match="once"):
        score_scan(CTVolume(exam.hu, exam.spacing), heart_mask=exam.heart_roi, roi=exam.heart_roi)


def test_report_per_artery_with_labels(exam):
    class Oracle:  # a "model" returning the exam's true artery labels
        def predict(self, hu, spacing, roi=None):
            return exam.labels

    report = score_scan(CTVolume(exam.hu, exam.spacing), model=Oracle())
    assert report.method == "model" and set(report.per_artery) == {"LM", "LAD", "LCX", "RCA"}
    per = report.to_dict()["per_artery"]
    assert sum(v["agatston"] for v in per.values()) == pytest.approx(report.agatston)
    assert all(set(v) == {"agatston", "volume_mm3", "mass_mg", "n_lesions"} for v in per.values())


def test_cac_score_writes_what_the_report_holds(tmp_path):
    manifest = make_calcium_cohort(1, tmp_path / "c", **SMALL)
    row = pd.read_csv(manifest).iloc[0]
    ct, roi = tmp_path / "c" / row.ct_path, tmp_path / "c" / row.roi_path
    out = tmp_path / "o"
    result = CliRunner().invoke(app, ["--quiet", "cac", "score", str(ct), "--roi", str(roi), "--out", str(out)])
    assert result.exit_code == 0, result.output
    report = score_scan(ct, heart_mask=roi)
    assert f"Agatston {report.agatston:.1f} (bucket {report.category}, CAC-DRS {report.cac_drs_category})" \
        in result.stdout
    table = pd.read_csv(out / "per_artery.csv", index_col=0)
    assert np.isclose(table.loc["total", "agatston"], report.agatston)
    assert (out / "overlay.png").is_file() and (out / "scan_checks.csv").is_file()
    assert f"wrote {out / 'per_artery.csv'}" in result.stdout
