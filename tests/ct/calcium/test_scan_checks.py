"""Which scans can be calcium-scored: the checks of score_scan on real and synthetic scans, and progress."""

import numpy as np
import pandas as pd
import pytest

from riskfm.ct import CTVolume
from riskfm.ct.calcium import score_calcium
from riskfm.ct.calcium.roi import estimate_heart_roi, heart_region
from riskfm.ct.calcium.scan import ScanScore, UnsuitableScanError, score_scan
from riskfm.ct.calcium.scan_checks import Finding, ScanCheckLimits, check_calcium_scan
from riskfm.synthetic.calcium import make_calcium_exam

SMALL = {"shape": (8, 48, 48), "spacing": (3.0, 2.5, 2.5)}


def _fixture(fixtures_dir, rel):
    path = fixtures_dir / "ct" / rel
    if not path.exists():
        pytest.skip(f"real CT fixture {path} not found")
    return path


@pytest.fixture(scope="module")
def cta(fixtures_dir):
    return _fixture(fixtures_dir, "cardiac_cta/ct.nii.gz"), _fixture(fixtures_dir, "cardiac_cta/heart.nii.gz")


@pytest.fixture(scope="module")
def abdomen(fixtures_dir):
    return _fixture(fixtures_dir, "dicom_series")


def codes(findings, level=None):
    return {f.code for f in findings if level is None or f.level == level}


# ------------------------------------------------------------------------------ real scans
def test_contrast_cta_is_refused_with_every_finding_and_the_fix(cta):
    ct, _ = cta
    with pytest.raises(UnsuitableScanError) as info:
        score_scan(ct)
    err = info.value
    assert isinstance(err, ValueError)
    assert codes(err.findings, "refuse") == {"contrast"}
    contrast = next(f for f in err.findings if f.code == "contrast")
    assert contrast.value >= 150 and contrast.unit == "HU"   # measured 185 HU in the mediastinal region
    text = str(err)
    assert "contrast" in text and "--force" in text and f"{contrast.value:.0f} HU" in text
    assert "non-contrast" in text and "slice_thickness" in text   # the 1.5 mm warning is listed too


def test_contrast_cta_with_its_heart_mask_is_refused_too(cta):
    ct, heart = cta
    with pytest.raises(UnsuitableScanError) as info:
        score_scan(ct, roi=heart)
    contrast = next(f for f in info.value.findings if f.code == "contrast")
    assert contrast.value > 400   # chambers ~400 HU: 461 HU measured inside the mask


def test_forced_cta_scores_and_carries_the_warning(cta, tmp_path):
    ct, heart = cta
    res = score_scan(ct, roi=heart, force=True)
    assert isinstance(res, ScanScore) and res.forced and res.roi_source == "given"
    assert res.score.agatston > 100_000   # the enhanced blood pool, scored as "calcium"
    assert "contrast" in codes(res.refusals)
    assert any(line.startswith("WARNING") and "contrast" in line for line in res.warning_lines())
    paths = res.write(tmp_path)
    table = pd.read_csv(paths["per_artery"], index_col=0)
    assert table["warnings"].str.contains("contrast").all()
    checks = pd.read_csv(paths["scan_checks"])
    row = checks.set_index("code").loc["contrast"]
    assert row["level"] == "refuse" and bool(row["forced"]) and row["value"] > 400


def test_abdominal_series_is_refused_as_not_a_heart_scan(abdomen):
    with pytest.raises(UnsuitableScanError) as info:
        score_scan(abdomen)
    refused = codes(info.value.findings, "refuse")
    assert "no_lungs" in refused              # no lung on any of its 20 slices
    assert "heart_roi_width" in refused       # the "heart region" is the hull of bowel gas, 568 cm^2 across
    assert "slice_increment" in codes(info.value.findings, "warning")   # 3 mm slices at 2 mm
    assert "lung" in str(info.value) and "--force" in str(info.value)


# ------------------------------------------------------------------------- synthetic exams
@pytest.mark.parametrize("kwargs", [{}, SMALL, {"gated": False}])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_synthetic_non_contrast_exams_have_no_finding(seed, kwargs):
    ex = make_calcium_exam(seed, burden=4, **kwargs)
    vol = CTVolume(ex.hu, ex.spacing)
    assert check_calcium_scan(vol) == []
    assert check_calcium_scan(vol, ex.heart_roi) == []


def test_score_scan_of_a_synthetic_exam_matches_score_calcium_in_the_estimated_roi():
    ex = make_calcium_exam(3, burden=3)
    res = score_scan(CTVolume(ex.hu, ex.spacing))
    assert res.findings == [] and not res.forced and res.method == "threshold"
    expected = score_calcium(ex.hu, ex.spacing, roi=estimate_heart_roi(ex.hu, ex.spacing))
    assert res.score.agatston == pytest.approx(expected.agatston)
    assert np.array_equal(res.heart_mask, heart_region(ex.hu, ex.spacing).roi)
    assert res.table()["warnings"].eq("").all()


def test_score_calcium_itself_stays_a_pure_function_of_arrays():
    hu = np.full((1, 10, 10), 400.0)   # a "contrast" phantom: no checks in score_calcium
    assert score_calcium(hu, (3.0, 1.0, 1.0)).agatston == pytest.approx(100 * 4)


@pytest.mark.parametrize("z_mm, level", [(1.5, "warning"), (5.0, "warning"), (1.0, "refuse"), (6.0, "refuse")])
def test_slice_thickness_outside_the_agatston_convention_is_flagged(z_mm, level):
    n = max(8, int(round(48 / z_mm)))
    ex = make_calcium_exam(0, burden=3, shape=(n, 112, 112), spacing=(z_mm, 1.25, 1.25))
    findings = check_calcium_scan(CTVolume(ex.hu, ex.spacing))
    assert {(f.code, f.level) for f in findings} == {("slice_thickness", level)}
    assert findings[0].value == pytest.approx(z_mm)
    if level == "warning":   # scored, and the scale factor is in the message
        res = score_scan(CTVolume(ex.hu, ex.spacing))
        assert f"{z_mm / 3:.2f}" in res.findings[0].message and not res.forced
    else:
        with pytest.raises(UnsuitableScanError, match="slice_thickness"):
            score_scan(CTVolume(ex.hu, ex.spacing))


def test_overlapping_slices_are_flagged_from_the_recorded_thickness():
    ex = make_calcium_exam(0, burden=3, shape=(32, 112, 112), spacing=(1.5, 1.25, 1.25))
    vol = CTVolume(ex.hu, ex.spacing, meta={"slice_thickness_mm": 3.0})
    findings = check_calcium_scan(vol)
    assert {(f.code, f.level) for f in findings} == {("slice_increment", "warning")}
    assert "overlapping" in findings[0].message and "0.50" in findings[0].message


def _rotated(ex, degrees):
    """The exam on a grid tilted by ``degrees`` about the patient's left-right axis."""
    a = np.deg2rad(degrees)
    rot = np.array([[1.0, 0.0, 0.0], [0.0, np.cos(a), -np.sin(a)], [0.0, np.sin(a), np.cos(a)]])
    sz, sy, sx = ex.spacing
    axes = np.array([[0.0, 0.0, sx], [0.0, sy, 0.0], [sz, 0.0, 0.0]])   # (z, y, x) -> (L, P, S)
    affine = np.eye(4)
    affine[:3, :3] = rot @ axes
    return CTVolume(ex.hu, ex.spacing, affine)


def test_oblique_acquisition_is_refused_and_half_a_degree_is_not():
    ex = make_calcium_exam(1, burden=2)
    with pytest.raises(UnsuitableScanError) as info:
        score_scan(_rotated(ex, 8.0))
    oblique = next(f for f in info.value.findings if f.code == "oblique")
    assert oblique.refuses and oblique.value == pytest.approx(8.0, abs=0.01)
    assert check_calcium_scan(_rotated(ex, 0.5)) == []


def test_heart_not_in_view_and_z_extent_refusals():
    ex = make_calcium_exam(2, burden=2)
    lungs_gone = np.where(ex.hu < -400, 40.0, ex.hu).astype(np.float32)   # no air inside: not a chest
    lungs_gone[:, :3] = -1000.0
    found = codes(check_calcium_scan(CTVolume(lungs_gone, ex.spacing)), "refuse")
    assert {"no_lungs", "heart_roi_empty"} <= found
    tiny = np.zeros(ex.hu.shape, bool)
    tiny[8, 50:52, 60:62] = True
    assert "heart_roi_volume" in codes(check_calcium_scan(CTVolume(ex.hu, ex.spacing), tiny), "refuse")
    short = CTVolume(ex.hu[:6], ex.spacing)   # 18 mm along z
    assert "z_extent" in codes(check_calcium_scan(short), "refuse")


def test_contrast_levels_on_a_synthetic_exam_with_enhanced_blood():
    ex = make_calcium_exam(4, burden=2)
    region = heart_region(ex.hu, ex.spacing)
    for blood, level in [(100.0, "warning"), (350.0, "refuse")]:
        hu = ex.hu.copy()
        hu[region.mediastinum & (ex.hu > 0) & (ex.hu < 100)] += blood - 40.0
        found = [f for f in check_calcium_scan(CTVolume(hu, ex.spacing)) if f.code == "contrast"]
        assert len(found) == 1 and found[0].level == level


def test_limits_and_findings_validate_their_values():
    with pytest.raises(ValueError, match="contrast_warn_hu"):
        ScanCheckLimits(contrast_warn_hu=200.0, contrast_refuse_hu=120.0)
    with pytest.raises(ValueError, match="level"):
        Finding("x", "fatal", "m", 1.0, "HU", "l", "f")
    loose = ScanCheckLimits(contrast_refuse_hu=1000.0, contrast_warn_hu=1000.0)
    ex = make_calcium_exam(0, **SMALL)
    assert check_calcium_scan(CTVolume(ex.hu, ex.spacing), limits=loose) == []
    with pytest.raises(TypeError, match="CTVolume"):
        score_scan(ex.hu)


# ------------------------------------------------------------------------------------ CLI
def _runner():
    from typer.testing import CliRunner

    return CliRunner()


def test_cli_refuses_the_cta_and_scores_it_with_force(cta, tmp_path):
    from riskfm.cli import app

    ct, _ = cta
    r = _runner().invoke(app, ["cac", "score", str(ct), "--out", str(tmp_path / "o")])
    assert r.exit_code == 2, r.output
    assert "contrast" in r.output and "--force" in r.output and "error:" in r.output
    assert not (tmp_path / "o" / "per_artery.csv").exists()
    r = _runner().invoke(app, ["cac", "score", str(ct), "--force", "--out", str(tmp_path / "o")])
    assert r.exit_code == 0, r.output
    assert "WARNING" in r.stdout and "contrast" in r.stdout and "not a valid calcium score" in r.stdout
    assert pd.read_csv(tmp_path / "o" / "per_artery.csv", index_col=0)["warnings"].str.contains("contrast").all()
    assert "contrast" in set(pd.read_csv(tmp_path / "o" / "scan_checks.csv")["code"])


# ------------------------------------------------------------------------------- progress
@pytest.fixture
def loud(monkeypatch):
    """Progress on (another test may have run ``riskfm --quiet`` in this process).

    Returns the ordered log of what happened: ``("status", message)`` for every status line and
    ``("render", seed)`` for every synthetic exam rendered, so tests check order, not the clock.
    """
    import riskfm.progress as progress
    import riskfm.synthetic.calcium as synthetic_calcium

    monkeypatch.delenv("RISKFM_QUIET", raising=False)
    monkeypatch.setitem(progress._state, "quiet", False)
    events = []
    original_status, original_render = progress.status, synthetic_calcium.make_calcium_exam

    def logged_status(message):
        events.append(("status", message))
        original_status(message)

    def logged_render(seed, *args, **kwargs):
        events.append(("render", seed))
        return original_render(seed, *args, **kwargs)

    monkeypatch.setattr(progress, "status", logged_status)
    monkeypatch.setattr(synthetic_calcium, "make_calcium_exam", logged_render)
    return events


@pytest.mark.slow  # trains a model end to end (seconds)
def test_cac_train_reports_progress_on_stderr_first(loud, tmp_path):
    from riskfm.cli import app

    r = _runner().invoke(app, ["cac", "train", "--n-exams", "2", "--epochs", "2", "--steps-per-epoch", "1",
                               "--out", str(tmp_path / "m.pt")])
    assert r.exit_code == 0, r.output
    err = r.stderr
    assert err.startswith("riskfm: rendering 2 synthetic training exams")
    assert "rendering exams" in err and "training unet2d" in err   # the bars
    assert "epoch=2/2" in err and "loss=" in err                    # the training bar's last state stays
    assert "loss per epoch" in r.stdout and "riskfm:" not in r.stdout
    # The status line comes before the first (slow) exam is rendered: the user sees at once what runs.
    assert loud[0] == ("status", "rendering 2 synthetic training exams")
    assert [kind for kind, _ in loud].count("render") >= 2   # the 2 training exams, after it


@pytest.mark.slow  # trains a model end to end (seconds)
def test_quiet_silences_cac_train(tmp_path, monkeypatch):
    import riskfm.progress as progress
    from riskfm.cli import app

    monkeypatch.setitem(progress._state, "quiet", False)
    r = _runner().invoke(app, ["--quiet", "cac", "train", "--n-exams", "1", "--epochs", "1", "--steps-per-epoch", "1",
                               "--out", str(tmp_path / "m.pt")])
    assert r.exit_code == 0, r.output
    assert r.stderr == ""
