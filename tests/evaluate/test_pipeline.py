"""riskfm.evaluate.evaluate and `riskfm evaluate`: files written, schema, numbers, report."""

from __future__ import annotations

import re
import shutil
import subprocess

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import average_precision_score, roc_auc_score

from riskfm.evaluate import EvaluationSpec, evaluate, read_metrics

FOUNDATION_KEYS = {"auroc", "n", "n_pos", "n_excluded_unknown", "prevalence"}
ESTIMATE_KEYS = {"value", "ci", "method", "n"}


def make_predictions(n: int = 360, seed: int = 0) -> tuple[pd.DataFrame, pd.DataFrame]:
    rng = np.random.default_rng(seed)
    pids = [f"P{i:04d}" for i in range(n)]
    split = np.array(["train"] * (n // 3) + ["val"] * (n // 6) + ["test"] * (n // 4) + ["external"] * (n - n // 3 - n // 6 - n // 4))
    frames = []
    for target, prev in (("stenosis_lad", 0.3), ("mace_30d", 0.2)):
        x = rng.normal(size=n)
        p = 1 / (1 + np.exp(-(1.5 * x + np.log(prev / (1 - prev)))))
        y = (rng.random(n) < p).astype(float)
        y[5] = np.nan  # an unknown label, excluded and counted
        frames.append(pd.DataFrame({
            "patient_id": pids, "split": split, "target": target, "y_true": y, "y_prob": p,
            "site": np.where(split == "external", "site_ext", "site_a"),
            "time_to_event_days": np.where(y == 1, rng.uniform(1, 30, n), 30.0),
            "event": np.where(y == 1, 1.0, 0.0)}))
    cov = pd.DataFrame({"patient_id": pids, "sex": rng.choice(["F", "M"], n), "age": rng.integers(35, 85, n)})
    return pd.concat(frames, ignore_index=True), cov


@pytest.fixture(scope="module")
def evaluated(tmp_path_factory):
    df, cov = make_predictions()
    out = tmp_path_factory.mktemp("eval")
    metrics = evaluate(df, out, covariates=cov, spec={"n_boot": 100, "subgroup_bins": {"age": [50, 65]}})
    return df, out, metrics


def test_metrics_json_keeps_foundation_schema_and_extends_it(evaluated):
    df, out, metrics = evaluated
    on_disk = read_metrics(out / "metrics.json")
    assert on_disk["test"]["mace_30d"]["auroc"] == metrics["test"]["mace_30d"]["auroc"]  # returned = written
    assert list(on_disk) == ["train", "val", "test", "external"]
    for split, by_target in on_disk.items():
        for target, cell in by_target.items():
            assert FOUNDATION_KEYS <= set(cell)
            d = df[(df["split"] == split) & (df["target"] == target) & df["y_true"].notna()]
            # Every estimate: value, ci [low, high], method, n.
            for est in (cell["auroc"], cell["auprc"], cell["calibration"]["slope"], cell["threshold"]["sensitivity"]):
                assert ESTIMATE_KEYS <= set(est) and len(est["ci"]) == 2
            assert cell["auroc"]["value"] == pytest.approx(roc_auc_score(d["y_true"], d["y_prob"]), abs=1e-12)
            assert cell["auprc"]["value"] == pytest.approx(average_precision_score(d["y_true"], d["y_prob"]),
                                                           abs=1e-12)
            assert {"slope", "intercept", "ece", "brier"} <= set(cell["calibration"]) and "threshold" in cell
            assert cell["threshold"]["chosen_on"] == "train" and cell["threshold"]["rule"] == "incidence"
    text = (out / "metrics.json").read_text()
    assert "_ci\"" not in text and "ci_low" not in text  # one spelling in JSON: "ci": [low, high]
    test = on_disk["test"]["mace_30d"]
    assert set(test["recalibration"]) == {"platt", "temperature", "isotonic"}
    assert 0.5 < test["survival"]["harrell_c"]["value"] <= 1
    assert set(test["fairness_gaps"]) >= {"sex", "age"}
    gaps = [g for by_t in on_disk.values() for c in by_t.values() for g in c.get("fairness_gaps", {}).values()
            if g["value"] is not None]
    assert gaps  # some attribute has two estimable levels
    for g in gaps:
        assert g["method"] == "stratified bootstrap (100 resamples) over patients"
        assert g["ci"][0] <= g["value"] <= g["ci"][1]  # max - min with its interval
        if {lv["kind"] for lv in g["levels"].values()} == {"binary"}:  # binary: M_g - M_~g
            a, b = g["levels"].values()
            assert a["value"] == pytest.approx(-b["value"])
    hr = test["risk_group_contrasts"][0]["hazard_ratio"]
    assert ESTIMATE_KEYS <= set(hr)
    assert "recalibration" not in on_disk["val"]["mace_30d"]  # never judged where it was fitted
    # The incidence threshold: the top prevalence fraction of training patients is high risk.
    tr = df[(df["split"] == "train") & (df["target"] == "mace_30d") & df["y_true"].notna()]
    t = on_disk["train"]["mace_30d"]["threshold"]["threshold"]
    assert (tr["y_prob"] >= t).mean() == pytest.approx(tr["y_true"].mean(), abs=1.5 / len(tr))


def test_tables_figures_and_self_contained_report(evaluated):
    _, out, _ = evaluated
    tables = {p.stem for p in (out / "tables").glob("*.csv")}
    assert {"discrimination", "validation", "thresholds", "risk_levels", "calibration_bins", "recalibration",
            "survival", "risk_group_contrasts", "decision_curves", "subgroups", "fairness_gaps"} <= tables
    sub = pd.read_csv(out / "tables" / "subgroups.csv")
    assert {"sex", "age", "site"} & set(sub["attribute"]) >= {"sex", "age"}
    # Flat tables spell intervals ci_low / ci_high (<statistic>_ci_low when a row has several).
    assert {"ci_low", "ci_high"} <= set(sub.columns)
    assert {"auroc_ci_low", "auroc_ci_high", "auprc_ci_low"} <= set(pd.read_csv(out / "tables" / "discrimination.csv"))
    assert {"sensitivity_ci_low", "f1_ci_high"} <= set(pd.read_csv(out / "tables" / "thresholds.csv"))
    for name in ("fairness_gaps", "risk_group_contrasts", "calibration_bins"):
        assert {"ci_low", "ci_high"} <= set(pd.read_csv(out / "tables" / f"{name}.csv")), name
    for name in ("discrimination", "thresholds", "subgroups", "fairness_gaps", "risk_group_contrasts"):
        cols = pd.read_csv(out / "tables" / f"{name}.csv").columns
        assert not [c for c in cols if c.endswith(("_low", "_high")) and "ci_" not in c and c != "cut_low"], name
    figs = {p.name for p in (out / "figures").glob("*.png")}
    for name in ("roc_test.png", "calibration_test_mace_30d.png", "cumulative_incidence_test_mace_30d.png",
                 "decision_curve_test_mace_30d.png", "forest_test_mace_30d.png", "validation_auroc.png"):
        assert name in figs
    html = (out / "report.html").read_text()
    for section in ("Discrimination", "Thresholds", "Calibration", "Time to event", "Decision curves",
                    "Subgroups and fairness"):
        assert f">{section}</h2>" in html
    imgs = re.findall(r"<img [^>]*src='([^']*)'", html)
    assert len(imgs) >= len(figs) - 1 and all(s.startswith("data:image/png;base64,") for s in imgs)
    assert "http://" not in html and "https://" not in html and "<script" not in html


def test_spec_errors_name_the_key_and_file(tmp_path):
    with pytest.raises(ValueError, match=r"unknown key\(s\) \['n_bootstrap'\]"):
        EvaluationSpec.from_any({"n_bootstrap": 10})
    f = tmp_path / "spec.yaml"
    f.write_text("threshold: median\n")
    with pytest.raises(ValueError, match=r"spec.yaml.*threshold: must be one of"):
        EvaluationSpec.from_any(f)


def test_covariates_and_missing_splits_are_reported(tmp_path):
    df, cov = make_predictions(n=200, seed=1)
    with pytest.raises(ValueError, match="appears more than once"):
        evaluate(df, tmp_path, covariates=pd.concat([cov, cov.head(1)]), spec={"figures": False})
    only_test = df[df["split"] == "test"]
    m = evaluate(only_test, tmp_path / "t", spec={"figures": False, "n_boot": 20})
    assert "threshold" not in m["test"]["mace_30d"]  # never chosen on the evaluation split
    html = (tmp_path / "t" / "report.html").read_text()
    assert "thresholds are never chosen on evaluation splits" in html


def test_cli_evaluate_writes_outputs(tmp_path):
    from typer.testing import CliRunner

    from riskfm.commands.evaluate import app

    df, cov = make_predictions(n=200, seed=2)
    df.to_csv(tmp_path / "predictions.csv", index=False)
    cov.to_csv(tmp_path / "cov.csv", index=False)
    (tmp_path / "spec.yaml").write_text("n_boot: 20\nrecalibration: [platt]\n")
    r = CliRunner().invoke(app, [str(tmp_path / "predictions.csv"), "--spec", str(tmp_path / "spec.yaml"),
                                 "--covariates", str(tmp_path / "cov.csv"), "--no-figures", "--out",
                                 str(tmp_path / "ev")])
    assert r.exit_code == 0, r.output
    assert "AUROC" in r.output and (tmp_path / "ev" / "report.html").is_file()
    assert set(read_metrics(tmp_path / "ev" / "metrics.json")["test"]["mace_30d"]["recalibration"]) == {"platt"}
    bad = CliRunner().invoke(app, [str(tmp_path / "missing.csv")])
    assert bad.exit_code == 2 and "not found" in bad.output


def _chromium() -> str:
    """The headless browser on PATH. Tests never install system packages: without one, skip."""
    for name in ("chromium", "chromium-browser"):
        path = shutil.which(name)
        if path:
            return path
    pytest.skip("Chromium is not installed (no `chromium` or `chromium-browser` on PATH); "
                "run `make browser-deps` (installs it with apt-get, needs root and network) to render the report")


@pytest.mark.slow  # starts a headless browser on the full report
def test_report_figures_render_in_headless_chromium(evaluated, tmp_path):
    from matplotlib.image import imread

    _, out, _ = evaluated
    exe = _chromium()
    shot = tmp_path / "shot.png"
    cmd = [exe, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
           "--disable-component-update", "--disable-sync", "--no-first-run", "--hide-scrollbars",
           f"--user-data-dir={tmp_path / 'profile'}", "--window-size=1200,5000", f"--screenshot={shot}",
           (out / "report.html").resolve().as_uri()]
    proc = subprocess.run(cmd, capture_output=True, timeout=120)
    assert shot.is_file(), proc.stderr.decode(errors="replace")[-2000:]
    img = imread(shot)[..., :3]
    # Vermillion (#D55E00) appears only inside the figures (ROC curves, event histograms), never in
    # the page's CSS: many such pixels mean the embedded PNGs were decoded and drawn.
    verm = np.all(np.abs(img - np.array([0xD5, 0x5E, 0x00]) / 255) < 0.06, axis=-1)
    assert verm.sum() > 2000, f"only {verm.sum()} figure-coloured pixels in the screenshot"
