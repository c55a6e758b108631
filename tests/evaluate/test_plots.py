"""Run figures (riskfm.plots): each function draws an evaluate result and writes a 300 dpi PNG."""

from __future__ import annotations

import struct
from pathlib import Path

import matplotlib as mpl
import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from riskfm.evaluate import (
    assign_risk_groups,
    calibration,
    cumulative_incidence_by_group,
    roc_curve,
    roc_curves,
)
from riskfm.plots import plot_calibration, plot_cumulative_incidence, plot_roc, publication_style, save_figure
from riskfm.plots.style import PALETTE


def png_info(path: Path) -> tuple[int, int, float | None]:
    """(width px, height px, dpi from the pHYs chunk or None) read straight from the PNG bytes."""
    data = Path(path).read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", f"{path} is not a PNG"
    width, height = struct.unpack(">II", data[16:24])
    dpi = None
    pos = data.find(b"pHYs")
    if pos > 0:
        ppm_x, _, unit = struct.unpack(">IIB", data[pos + 4:pos + 13])
        dpi = ppm_x * 0.0254 if unit == 1 else None
    return width, height, dpi


def assert_png(path: Path, size_in: tuple[float, float]) -> None:
    assert path.is_file() and path.stat().st_size > 5000, f"{path} missing or nearly empty"
    width, height, dpi = png_info(path)
    assert (width, height) == (round(size_in[0] * 300), round(size_in[1] * 300))
    if dpi is not None:
        assert dpi == pytest.approx(300, abs=0.5)


def _predictions(n: int = 160, seed: int = 0, splits=("train", "test"), targets=("stenosis_lad", "mace_30d")):
    rng = np.random.default_rng(seed)
    split = rng.choice(list(splits), size=n)
    frames = []
    for target in targets:
        y = (rng.random(n) < 0.25).astype(float)
        p = 1.0 / (1.0 + np.exp(-(rng.normal(size=n) + 1.5 * y - 1.2)))
        y[:3] = np.nan
        frames.append(pd.DataFrame({
            "patient_id": [f"P{i:03d}" for i in range(n)], "split": split, "target": target,
            "y_true": y, "y_prob": p,
            "time_to_event_days": np.where(y == 1, rng.uniform(1, 30, n), 30.0),
            "event": np.where(y == 1, 1.0, 0.0),
        }))
    return pd.concat(frames, ignore_index=True)


def test_plot_roc_from_predictions_writes_png(tmp_path):
    df = _predictions()
    fig = roc_curves(df, split="test", n_boot=50, min_events=5).plot(title="ROC")
    ax = fig.axes[0]
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert labels[0] == "Chance" and len(labels) == 3
    assert labels[1].startswith("LAD stenosis: 0.") and "[" in labels[1]  # AUROC [CI]
    assert labels[2].startswith("30-day MACE: ")
    assert_png(save_figure(fig, tmp_path / "roc.png"), (3.5, 3.5))


def test_plot_roc_inputs_and_metrics_numbers():
    y = np.array([0, 0, 1, 1, 0, 1, 0, 1])
    p = np.array([0.1, 0.3, 0.7, 0.4, 0.5, 0.9, 0.2, 0.6])
    # 4 events and 4 non-events: below the default floor of 10 each, so no curve and no number ...
    small = plot_roc(roc_curves(y, p, ci=None))
    assert small.axes[0].get_legend().get_texts()[1].get_text() == (
        "model: n/e (4 events < 10, 4 non-events < 10)")
    assert len(small.axes[0].lines) == 2  # the chance line and the legend-only entry, no curve
    assert len(small.axes[0].lines[1].get_xdata()) == 0
    # ... and with the floor lowered, the AUROC of sklearn.
    single = roc_curves(y, p, ci=None, min_events=1, min_nonevents=1).plot()
    assert single.axes[0].get_legend().get_texts()[1].get_text() == f"model: {roc_auc_score(y, p):.2f}"
    quoted = {"a": {"auroc": {"value": 0.5, "ci": [0.1, 0.9], "method": "DeLong"}}}
    pair = plot_roc(roc_curves({"a": (y, p), "b": (y, 1 - p)}, metrics=quoted, ci=None, min_events=1,
                               min_nonevents=1))
    texts = [t.get_text() for t in pair.axes[0].get_legend().get_texts()]
    assert texts[1] == "a: 0.50 [0.10\u20130.90]"  # quoted from metrics, not recomputed
    assert texts[2] == "b: 0.06"
    # metrics.json cells of the previous version are quoted the same way.
    old = roc_curves({"a": (y, p)}, metrics={"a": {"auroc": 0.5, "auroc_ci": [0.1, 0.9]}}, min_events=1,
                     min_nonevents=1)
    assert (old.curves["a"].value, old.curves["a"].ci) == (0.5, (0.1, 0.9))
    with pytest.raises(ValueError, match="several splits"):
        roc_curves(_predictions())
    with pytest.warns(RuntimeWarning, match="only one class"), pytest.raises(ValueError, match="no curve"):
        roc_curves({"x": (np.zeros(4), np.arange(4) / 4)})


def test_roc_band_is_computed_in_evaluate_and_drawn_by_plots():
    df = _predictions(n=400)
    d = df[(df["split"] == "test") & (df["target"] == "mace_30d") & df["y_true"].notna()]
    c = roc_curve(d["y_true"], d["y_prob"], band=True, band_n_boot=50, seed=3)
    again = roc_curve(d["y_true"], d["y_prob"], band=True, band_n_boot=50, seed=3)
    pd.testing.assert_frame_equal(c.band, again.band)  # seeded
    assert list(c.band.columns) == ["fpr", "ci_low", "ci_high"] and len(c.band) == 101
    assert (c.band["ci_low"] <= c.band["ci_high"]).all() and c.band_method.endswith("(50 resamples)")
    assert c.to_dict()["band"]["ci_low"] == c.band["ci_low"].tolist()
    fig = c.plot(name="mace_30d")
    assert len(fig.axes[0].collections) == 1  # the shaded band


def test_plots_compute_no_statistics():
    """plots/ only draws: no resampling, quantiles or fits, and no evaluate computation is called there."""
    import ast

    import riskfm.plots

    forbidden = {"default_rng", "quantile", "nanquantile", "KaplanMeierFitter", "reliability_table", "roc_auc",
                 "calibration", "cumulative_incidence_by_group", "roc_curve_points", "censor_at", "wilson_interval"}
    for path in Path(riskfm.plots.__file__).parent.glob("*.py"):
        tree = ast.parse(path.read_text())
        calls = {n.func.id if isinstance(n.func, ast.Name) else getattr(n.func, "attr", "")
                 for n in ast.walk(tree) if isinstance(n, ast.Call)}
        assert not calls & forbidden, f"{path.name} computes: {sorted(calls & forbidden)}"
        modules = {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module}
        evaluate_modules = {m for m in modules if m.startswith("riskfm.evaluate")}
        assert evaluate_modules <= {"riskfm.evaluate.guards"}, f"{path.name} imports {evaluate_modules}"


def test_plot_calibration_writes_png(tmp_path):
    rng = np.random.default_rng(0)
    p = rng.beta(1, 6, 500)
    y = (rng.random(500) < p).astype(int)
    fig = plot_calibration(calibration(y, p, n_bins=8, strategy="quantile"), label="LAD stenosis", title="Calibration")
    assert len(fig.axes) == 2  # reliability diagram + histogram of predictions
    points = fig.axes[0].lines[1]
    assert len(points.get_xdata()) == 8
    assert_png(save_figure(fig, tmp_path / "cal.png"), (3.5, 4.4))
    with pytest.raises(ValueError, match="binary"):
        calibration(np.full(10, 0.5), np.full(10, 0.5))


def test_plot_cumulative_incidence_writes_png(tmp_path):
    rng = np.random.default_rng(0)
    p = rng.random(300)
    groups = assign_risk_groups(p, [0.4, 0.8])
    time = np.where(rng.random(300) < p * 0.5, rng.uniform(0, 30, 300), 30.0)
    event = (time < 30).astype(int)
    fig = plot_cumulative_incidence(cumulative_incidence_by_group(time, event, groups), title="MACE")
    ax = fig.axes[0]
    assert "Log-rank p" in ax.get_title(loc="left")
    assert [t.get_text().split(" risk")[0] for t in ax.get_legend().get_texts()] == ["Low", "Intermediate", "High"]
    assert_png(save_figure(fig, tmp_path / "ci.png"), (3.5, 4.0))
    one = cumulative_incidence_by_group(time, event, np.full(300, "all")).plot()
    assert "Log-rank" not in one.axes[0].get_title(loc="left")


def test_style_is_scoped_and_colour_blind_palette():
    before = mpl.rcParams["font.size"]
    with publication_style():
        assert mpl.rcParams["font.size"] == 8
        assert mpl.rcParams["axes.spines.top"] is False and mpl.rcParams["axes.spines.right"] is False
        assert mpl.rcParams["savefig.dpi"] == 300
    assert mpl.rcParams["font.size"] == before
    assert PALETTE[0] == "#0072B2"  # Okabe-Ito blue
