"""Figures drawn from the real fixtures: PTB record s0010_re (ECG) and the cardiac CTA (CT).

Each figure must be written, non-blank and of the size the figure says (figsize x dpi pixels).
"""

import numpy as np
import pytest
import torch
from PIL import Image

from riskfm.ct import CTInputSpec, prepare_ct, read_ct
from riskfm.ecg import ECGInputSpec, prepare_ecg, read_ecg
from riskfm.encoders import create_encoder
from riskfm.explain import compare_median_beats, explain
from riskfm.explain.beat_space import lead_ii_r_peaks, paste_beats
from riskfm.models.fusion import ConcatFusion
from riskfm.models.heads import BinaryHead, StenosisHead
from riskfm.models.risk_model import RiskModel
from riskfm.plots.ecg_paper import plot_ecg_paper
from riskfm.plots.style import save_figure

DPI = 100  # enough to check the drawing; the size check uses the same dpi


def _check_png(path, fig, dpi=DPI):
    """Written, expected size, and not blank (ink covers part of the image, with contrast)."""
    assert path.is_file() and path.stat().st_size > 10_000
    w, h = fig.get_size_inches() * dpi
    img = np.asarray(Image.open(path).convert("L"), dtype=float)
    # Agg truncates fractional pixel sizes (the ECG print-out is sized in millimetres)
    assert abs(img.shape[0] - h) < 1 and abs(img.shape[1] - w) < 1, (img.shape, h, w)
    ink = (img < 200).mean()
    assert 0.01 < ink < 0.9, f"{path.name}: {ink:.1%} of the pixels are dark"
    assert img.std() > 20


def _model(enc, seed=0):
    torch.manual_seed(seed)
    fusion = ConcatFusion({enc.modality: enc.feature_dim}, proj_dim=8, modality_dropout=0.0)
    return RiskModel({enc.modality: enc}, fusion, [StenosisHead(fusion.out_dim), BinaryHead(fusion.out_dim)]).eval()


@pytest.fixture(scope="module")
def ptb(fixtures_dir):
    ecg = read_ecg(fixtures_dir / "ecg" / "ptb" / "s0010_re")
    spec = ECGInputSpec(fs=250.0, n_samples=2500, bandpass_hz=(0.67, 40.0))  # 10 s, mV
    x, _ = prepare_ecg(ecg, spec)
    return x, spec


def test_twelve_lead_paper_figure_of_s0010_re(ptb, tmp_path):
    x, spec = ptb
    enc = create_encoder("resnet1d-small", input_spec=spec)
    model = _model(enc)
    batch = {"patient_id": ["s0010_re"], "ecg": torch.as_tensor(x)[None], "ecg_present": torch.tensor([True])}
    a = explain(model, batch, "ecg", "integrated_gradients", ("stenosis", "LAD"), n_steps=16)
    fig = a.plot(0)
    path = save_figure(fig, tmp_path / "ecg_paper.png", dpi=DPI)
    _check_png(path, fig)
    # drawn to scale: (10 s + 0.4 s calibration) x 25 mm/s = 260 mm of paper plus 12 mm margins
    assert fig.get_size_inches()[0] * 25.4 == pytest.approx(272.0, abs=0.5)


def test_median_beat_attribution_of_s0010_re(ptb, tmp_path):
    x, spec = ptb
    peaks = lead_ii_r_peaks(x, spec.fs, spec.leads)
    assert 11 <= len(peaks) <= 16  # ~81 beats per minute over 10 s (52 R peaks in the 38.4 s record)
    enc = create_encoder("resnet1d-small", input_spec=spec)
    model = _model(enc)
    batch = {"patient_id": ["s0010_re"], "ecg": torch.as_tensor(x)[None], "ecg_present": torch.tensor([True])}
    a = explain(model, batch, "ecg", "gradcam", "mace_30d")
    beat = a.to_median_beat(0)
    assert beat.beat.shape == beat.attribution.shape == (12, 174)  # round(62.5) + round(112.5) at 250 Hz
    assert beat.n_beats >= 10
    # the median beat's R peak sits at 0 s in lead II
    lead_ii = beat.beat[1]
    assert abs(beat.time_s[np.argmax(np.abs(lead_ii))]) < 0.04
    fig = a.plot(0, kind="median_beat")
    path = save_figure(fig, tmp_path / "median_beat.png", dpi=DPI)
    _check_png(path, fig)


def test_median_beat_map_pasted_back_on_s0010_re(ptb, tmp_path):
    x, spec = ptb
    from riskfm.ecg.beats import detect_r_peaks, median_beat

    beat_spec = ECGInputSpec(fs=250.0, n_samples=2500, bandpass_hz=(0.67, 40.0), representation="median_beat")
    beat = median_beat(x, spec.fs)
    enc = create_encoder("median-beat-cnn", input_spec=beat_spec)
    model = _model(enc)
    batch = {"patient_id": ["s0010_re"], "ecg": torch.as_tensor(beat)[None], "ecg_present": torch.tensor([True])}
    a = explain(model, batch, "ecg", "occlusion", "mace_30d")
    assert a.meta["window_samples"] == 10  # 0.04 s on median beats
    peaks = detect_r_peaks(x, spec.fs)
    before = round(0.25 * spec.fs)
    overlay = paste_beats(a.values[0], peaks, x.shape[1], before=before)
    assert overlay.shape == x.shape and np.abs(overlay).sum() > 0
    assert np.diff(peaks).min() > 174  # ~81 bpm: beat windows do not overlap, each is a plain copy
    p = peaks[3]
    np.testing.assert_allclose(overlay[:, p - before:p - before + 174], a.values[0], atol=1e-12)
    fig = plot_ecg_paper(x, spec.fs, spec.leads, attribution=overlay, title="s0010_re, median-beat model")
    _check_png(save_figure(fig, tmp_path / "pasted.png", dpi=DPI), fig)


def test_ct_slices_figure_of_the_cardiac_cta(fixtures_dir, tmp_path):
    vol = read_ct(fixtures_dir / "ct" / "cardiac_cta" / "ct.nii.gz")
    spec = CTInputSpec(spacing=(3.0, 3.0, 3.0), shape=(48, 48, 48))
    x = prepare_ct(vol, spec)
    enc = create_encoder("cnn3d-small", widths=(4, 8, 8, 8), input_spec=spec)
    model = _model(enc)
    batch = {"patient_id": ["cta"], "ct": torch.as_tensor(x)[None], "ct_present": torch.tensor([True])}
    a = explain(model, batch, "ct", "gradcam", ("stenosis", "LAD"))
    assert a.values.shape == (1, 4, 48, 48, 48) and a.meta["shared_over_channels"]
    assert all(0 <= p < 48 for p in a.peak(0))
    from riskfm.ct.preprocess import crop_or_pad, resample_to_spacing

    hu = crop_or_pad(resample_to_spacing(vol, spec.spacing).array, spec.shape, fill=-1024.0)
    fig = a.plot(0, hu=hu, window=(300.0, 800.0))
    path = save_figure(fig, tmp_path / "ct.png", dpi=DPI)
    _check_png(path, fig)
    b = explain(model, batch, "ct", "occlusion", "mace_30d", window=16, stride=16)
    fig = b.plot(0)  # background from the input channel closest to the default CTA window
    _check_png(save_figure(fig, tmp_path / "ct_occlusion.png", dpi=DPI), fig)


def test_median_beat_comparison_statistics_and_figure(ptb, tmp_path):
    """Welch t-test and BH q-values per sample agree with scipy; the figure is drawn."""
    from scipy import stats

    x, spec = ptb
    from riskfm.ecg.beats import median_beat

    base = median_beat(x, spec.fs)
    g = np.random.default_rng(0)
    high = base[None] + g.normal(0, 0.05, (20, *base.shape))
    high[:, 7, 90:140] += 0.15  # ST elevation in V2 in the "high-risk" group
    low = base[None] + g.normal(0, 0.05, (30, *base.shape))
    comp = compare_median_beats(high, low, fs=spec.fs, leads=spec.leads, target="stenosis_lad")
    ref_p = stats.ttest_ind(high, low, axis=0, equal_var=False).pvalue
    np.testing.assert_allclose(comp.p, ref_p, rtol=1e-10)
    np.testing.assert_allclose(comp.q.ravel(), stats.false_discovery_control(ref_p.ravel()), rtol=1e-10)
    assert comp.significant[7, 95:135].all()
    assert comp.significant.mean() < 0.1
    half = stats.t.ppf(0.975, 19) * high.std(0, ddof=1) / np.sqrt(20)
    np.testing.assert_allclose(comp.high_risk_ci[1] - comp.mean_high, half, rtol=1e-10)
    fig = comp.plot()
    _check_png(save_figure(fig, tmp_path / "median_beats.png", dpi=DPI), fig)
    with pytest.raises(ValueError, match="at least 2 patients"):
        compare_median_beats(high[:1], low, fs=spec.fs)
