"""`riskfm study ecg-stenosis`: seed 002's study end to end, its numbers checked against sklearn / lifelines / statsmodels.

One tiny training run on the synthetic cohort (module fixture) is analysed from Python and then
from the CLI (which must reuse it, not retrain); a second cohort is written by the test itself
(its own WFDB files, site names, date and normal-ECG columns, no follow-up, no external site).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from scipy.stats import chi2
from sklearn.metrics import roc_auc_score
from typer.testing import CliRunner

from riskfm.arteries import STENOSIS_COLUMNS
from riskfm.recipes.ecg_stenosis_analysis import PAPER_AUROC
from riskfm.train.config import ConfigError

# One worker runs the module: the training run of the fixture is built once and shared.
pytestmark = pytest.mark.xdist_group("ecg_stenosis_study")

MEDIAN_BEAT = {"name": "median-beat-cnn", "kwargs": {"feature_dim": 16, "input_spec": {
    "fs": 250.0, "n_samples": 2500, "bandpass_hz": [0.67, 40.0], "representation": "median_beat"}}}
FAST_STUDY = {"date_column": "ecg_date", "attribution_patients": 2, "n_steps": 4, "figures": False, "n_boot": 50}


def _config(manifest: Path, out: Path, **study) -> dict:
    return {"manifest": str(manifest), "out": str(out), "modalities": ["ecg"], "targets": ["stenosis"],
            "split": {"external_sites": ["site_ext"], "test_fraction": 0.3, "val_fraction": 0.2, "seed": 0},
            "encoders": {"ecg": MEDIAN_BEAT},
            "train": {"epochs": 1, "batch_size": 32, "lr": 2e-3, "progress": False, "seed": 0},
            "evaluate": {"n_boot": 20, "figures": False, "min_events": 3, "min_nonevents": 3},
            "study": {**FAST_STUDY, **study}}


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory):
    from riskfm.recipes import ecg_stenosis
    from riskfm.synthetic import make_cohort

    root = tmp_path_factory.mktemp("ecg_study")
    cohort = make_cohort(n=240, seed=0, out_dir=root / "cohort", n_workers=1, progress=False, acquisition_dates=True)
    path = root / "study.yaml"
    path.write_text(yaml.safe_dump(_config(cohort.manifest_path, root / "out")))
    res = ecg_stenosis(path, progress=False)
    return path, cohort, res


def _sets(preds: pd.DataFrame) -> dict[str, pd.DataFrame]:
    return {"internal test": preds[preds["split"] == "test"],
            "external site_ext": preds[(preds["split"] == "external") & (preds["site"] == "site_ext")]}


def _delong(y, p):
    pos, neg = p[y == 1], p[y == 0]
    psi = (pos[:, None] > neg[None, :]) + 0.5 * (pos[:, None] == neg[None, :])
    return psi.mean(), psi.mean(axis=1).var(ddof=1) / len(pos) + psi.mean(axis=0).var(ddof=1) / len(neg)


@pytest.mark.slow
def test_per_artery_auroc_is_sklearns_on_the_written_predictions(synthetic):
    _, _, res = synthetic
    preds = pd.read_csv(res.files["predictions"], dtype={"patient_id": str})
    summary = res.tables["summary"]
    assert list(summary["split"].unique()) == ["internal test", "external site_ext"]  # the paper's order
    assert len(summary) == 8 and list(summary["artery"][:4]) == ["RCA", "LM", "LAD", "LCX"]
    estimated = 0
    for name, d in _sets(preds).items():
        for target in STENOSIS_COLUMNS:
            row = summary[(summary["split"] == name) & (summary["target"] == target)].iloc[0]
            x = d[d["target"] == target].dropna(subset=["y_true"])
            assert row["n"] == len(x) and row["n_pos"] == x["y_true"].sum()
            ref = PAPER_AUROC["internal" if name.startswith("internal") else "external"][target]
            assert row["paper_auroc"] == ref
            if min(x["y_true"].sum(), len(x) - x["y_true"].sum()) < 3:
                assert np.isnan(row["auroc"]) and "< 3" in row["not_estimable"]
                continue
            estimated += 1
            assert row["auroc"] == pytest.approx(roc_auc_score(x["y_true"], x["y_prob"]), abs=1e-12)
            assert row["ci_low"] <= row["auroc"] <= row["ci_high"]
    assert estimated >= 5
    assert summary.loc[summary["split"] == "internal test", "paper_auroc"].tolist() == [0.794, 0.818, 0.744, 0.755]
    assert summary.loc[summary["split"] != "internal test", "paper_auroc"].tolist() == [0.749, 0.971, 0.667, 0.727]
    layout = res.tables["paper_layout"]
    assert list(layout["Artery"]) == ["RCA", "LM", "LAD", "LCX"] and "internal test paper" in layout.columns
    html = Path(res.files["report"]).read_text()
    for title in ("a. Per-artery AUROC", "b. Normal-ECG subset", "c. Subgroup stability", "d. Risk groups",
                  "e. Waveforms and attributions", "arXiv:2512.05136"):
        assert title in html
    assert res.metrics["run"] == "trained"


@pytest.mark.slow
def test_subgroups_and_heterogeneity_against_sklearn_and_statsmodels(synthetic):
    from statsmodels.stats.meta_analysis import combine_effects

    _, cohort, res = synthetic
    preds = pd.read_csv(res.files["predictions"], dtype={"patient_id": str})
    manifest = pd.read_csv(cohort.manifest_path, dtype={"patient_id": str}).set_index("patient_id")
    sub, het = res.tables["subgroups"], res.tables["heterogeneity"]
    assert set(sub["attribute"]) == {"age", "sex", "acquisition time"}
    checked = 0
    for name, d in _sets(preds).items():
        for target in STENOSIS_COLUMNS:
            x = d[d["target"] == target].dropna(subset=["y_true"])
            year = pd.to_datetime(manifest.loc[x["patient_id"], "ecg_date"]).dt.year.astype(str).to_numpy()
            age = pd.cut(manifest.loc[x["patient_id"], "age"], [-np.inf, 50, 65, np.inf],
                         labels=["\u226450", "50\u201365", ">65"]).astype(str).to_numpy()
            sex = manifest.loc[x["patient_id"], "sex"].to_numpy()
            for attribute, levels in (("acquisition time", year), ("age", age), ("sex", sex)):
                rows = sub[(sub["split"] == name) & (sub["target"] == target) & (sub["attribute"] == attribute)]
                est, var = [], []
                for _, r in rows[rows["level"] != "All"].iterrows():
                    m = levels == r["level"]
                    y, p = x["y_true"].to_numpy()[m], x["y_prob"].to_numpy()[m]
                    assert r["n"] == m.sum() and r["n_pos"] == y.sum()
                    if np.isfinite(r["value"]):
                        assert r["value"] == pytest.approx(roc_auc_score(y, p), abs=1e-12)
                        e, v = _delong(y, p)
                        if v > 0:  # a perfectly separated level has no variance: left out of Q
                            est.append(e)
                            var.append(v)
                        checked += 1
                h = het[(het["split"] == name) & (het["target"] == target) & (het["attribute"] == attribute)].iloc[0]
                if len(est) >= 2:
                    ref = combine_effects(np.array(est), np.array(var), use_t=False)
                    assert h["q"] == pytest.approx(ref.q, rel=1e-9)
                    assert h["p_value"] == pytest.approx(chi2.sf(ref.q, len(est) - 1), rel=1e-9)
                    assert h["i2"] == pytest.approx(max(0.0, ref.i2), abs=1e-9)  # statsmodels does not truncate at 0
                else:
                    assert np.isnan(h["q"]) and "no test" in h["not_estimable"]
    assert checked >= 10


@pytest.mark.slow
def test_risk_groups_calibration_and_cumulative_events_against_references(synthetic):
    from lifelines import KaplanMeierFitter
    from lifelines.statistics import logrank_test
    from statsmodels.stats.proportion import proportion_confint

    _, _, res = synthetic
    preds = pd.read_csv(res.files["predictions"], dtype={"patient_id": str})
    thresholds = res.tables["risk_thresholds"].set_index("target")
    groups, curves, at_risk = res.tables["risk_groups"], res.tables["cumulative_incidence"], res.tables["at_risk"]
    for target in STENOSIS_COLUMNS:
        train = preds[(preds["split"] == "train") & (preds["target"] == target)].dropna(subset=["y_true"])
        prev = train["y_true"].mean()
        t = thresholds.loc[target, "threshold"]
        assert thresholds.loc[target, "train_prevalence"] == pytest.approx(prev)
        assert t == pytest.approx(np.quantile(train["y_prob"], 1 - prev))
        for name, d in _sets(preds).items():
            x = d[d["target"] == target].dropna(subset=["y_true"])
            high = x["y_prob"].to_numpy() >= t
            for g, m in (("high", high), ("low", ~high)):
                r = groups[(groups["split"] == name) & (groups["target"] == target) & (groups["group"] == g)]
                if not m.any():
                    assert r.empty
                    continue
                r = r.iloc[0]
                k = int(x["y_true"].to_numpy()[m].sum())
                assert (r["n"], r["n_events"]) == (m.sum(), k)
                lo, hi = proportion_confint(k, m.sum(), alpha=0.05, method="wilson")
                assert (r["ci_low"], r["ci_high"]) == pytest.approx((lo, hi), abs=1e-9)
                # Kaplan-Meier incidence of the manifest's event in this risk group (lifelines)
                c = curves[(curves["split"] == name) & (curves["target"] == target) & (curves["group"] == g)]
                km = KaplanMeierFitter().fit(x["time_to_event_days"].to_numpy()[m], x["event"].to_numpy()[m])
                for tt in (30.0, 180.0):
                    mine = c.loc[c["time_days"] <= tt, "incidence"].iloc[-1]
                    assert mine == pytest.approx(1 - km.survival_function_at_times(tt).iloc[0], abs=1e-12)
            if high.any() and (~high).any():
                a = at_risk[(at_risk["split"] == name) & (at_risk["target"] == target)]
                lr = logrank_test(x["time_to_event_days"][high], x["time_to_event_days"][~high],
                                  x["event"][high], x["event"][~high])
                assert a["logrank_p"].iloc[0] == pytest.approx(lr.p_value, rel=1e-9)
                t0 = a[(a["time_days"] == 0.0) & (a["group"] == "high")]["at_risk"].iloc[0]
                assert t0 == high.sum()
    calib = res.tables["calibration"]
    assert {"mean_predicted", "observed_rate", "slope", "intercept"} <= set(calib.columns)


@pytest.mark.slow
def test_normal_ecg_subset_waveforms_and_attributions(synthetic):
    _, _, res = synthetic
    preds = pd.read_csv(res.files["predictions"], dtype={"patient_id": str})
    per = res.tables["normal_ecg_patients"]
    counts = res.metrics["normal_ecg"]["counts"]
    normal = res.tables["normal_ecg"]
    for name, d in _sets(preds).items():
        ids = set(d["patient_id"])
        mine = per[per["patient_id"].isin(ids)]
        c = counts[name]
        assert c["normal"] + c["abnormal"] + c["unknown_or_unmeasurable"] == c["patients"] == len(ids)
        assert (mine["reason"].str.startswith("unmeasurable")).sum() == c["unknown_or_unmeasurable"]
        assert c["normal"] > 0 and c["abnormal"] > 0  # the synthetic ST changes make both groups
        keep = set(mine.loc[mine["normal"] == True, "patient_id"])  # noqa: E712
        for target in STENOSIS_COLUMNS:
            row = normal[(normal["split"] == name) & (normal["target"] == target)].iloc[0]
            x = d[(d["target"] == target) & d["patient_id"].isin(keep)].dropna(subset=["y_true"])
            assert row["n"] == len(x)
            if np.isfinite(row["auroc"]):
                assert row["auroc"] == pytest.approx(roc_auc_score(x["y_true"], x["y_prob"]), abs=1e-12)
    wave = res.tables["waveforms"]
    assert len(wave) >= 6 and (wave["largest_difference_ci_low"] <= wave["largest_difference_mv"]).all()
    frame = res.tables["median_beats_internal_test_LAD"]
    assert {"difference", "difference_ci_low", "difference_ci_high"} <= set(frame.columns)
    leads = res.tables["attribution_leads"]
    sums = leads.groupby(["split", "artery"])["share"].sum()
    assert np.allclose(sums, 1.0) and (leads["n_patients"] <= 2).all()
    listed = json.loads((Path(res.files["report"]).parent / "study_outputs.json").read_text())
    assert "report.html" in listed and not res.figures  # study.figures: false


@pytest.mark.slow
def test_cli_reuses_the_finished_run_and_prints_the_summary(synthetic, tmp_path):
    from riskfm.cli import app

    path, _, res = synthetic
    model = Path(res.files["run"]) / "model.pt"
    before = model.stat().st_mtime_ns
    out = CliRunner().invoke(app, ["--quiet", "study", "ecg-stenosis", str(path)])
    assert out.exit_code == 0, out.output
    assert "external site_ext" in out.output and "paper_auroc" in out.output
    assert f"report: {res.files['report']}" in out.output
    assert model.stat().st_mtime_ns == before  # reused, not retrained
    # Another study option changes the report only: still the same run, reused.
    from riskfm.recipes import ecg_stenosis

    again = ecg_stenosis(path, {"study.date_bins": "quantile"}, progress=False)
    assert again.metrics["run"] == "reused" and model.stat().st_mtime_ns == before
    pd.testing.assert_frame_equal(again.tables["summary"], res.tables["summary"])
    levels = again.tables["subgroups"].query("attribute == 'acquisition time' and level != 'All'")["level"]
    assert levels.nunique() <= 4 and levels.str.contains("\u2013").all()


def test_wrong_study_keys_and_missing_columns_are_clear_errors(tmp_path):
    from riskfm.cli import app
    from riskfm.recipes import ecg_stenosis

    manifest = tmp_path / "m.csv"
    pd.DataFrame({"patient_id": ["a"], "ecg_path": ["a.hea"], **{c: [0] for c in STENOSIS_COLUMNS}}).to_csv(
        manifest, index=False)
    cfg = _config(manifest, tmp_path / "out")
    cfg["study"] = {"date_colum": "ecg_date"}
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(cfg))
    with pytest.raises(ConfigError, match=r"study\.date_colum: unknown key \(did you mean 'date_column'\?\)"):
        ecg_stenosis(path)
    with pytest.raises(ConfigError, match=r"study\.date_column: column 'acquired' is not in the manifest"):
        ecg_stenosis(path, {"study": {"date_column": "acquired"}})
    with pytest.raises(ConfigError, match=r"study\.normal_ecg_column: column 'nl' is not in the manifest"):
        ecg_stenosis(path, {"study": {"normal_ecg_column": "nl"}})
    with pytest.raises(ConfigError, match=r"study\.date_bins"):
        ecg_stenosis(path, {"study": {"date_bins": "month"}})
    assert not (tmp_path / "out").exists()  # refused before anything was trained or written
    out = CliRunner().invoke(app, ["study", "ecg-stenosis", str(path)])
    assert out.exit_code == 2 and "study.date_colum: unknown key" in out.output


def _write_own_cohort(root: Path, n: int = 150) -> Path:
    """A cohort in another group's layout: WFDB records written with wfdb.wrsamp, own ids, sites and columns."""
    import wfdb

    from riskfm.synthetic.ecg_render import EcgSiteProfile, render_ecg

    rng = np.random.default_rng(7)
    (root / "waveforms" / "2019").mkdir(parents=True)
    leads = ["I", "II", "III", "aVR", "aVL", "aVF", "V1", "V2", "V3", "V4", "V5", "V6"]
    rows = []
    for i in range(n):
        sev = rng.beta(1.2, 3.0, 4)
        sig = render_ecg(rng, sev, heart_rate_bpm=float(rng.uniform(55, 95)), age=60.0, female=bool(i % 2),
                         profile=EcgSiteProfile())
        name = f"ecg{i:04d}"
        wfdb.wrsamp(name, fs=500, units=["mV"] * 12, sig_name=leads, p_signal=sig.T.astype(np.float64),
                    fmt=["16"] * 12, adc_gain=[1000.0] * 12, baseline=[0] * 12,
                    write_dir=str(root / "waveforms" / "2019"))
        labels = (rng.random(4) < 1 / (1 + np.exp(-(sev - 0.45) / 0.08))).astype(int)
        rows.append({"patient_id": f"MRN-{1000 + i}", "site": ["riverside", "hilltop"][i % 2],
                     "ecg_path": f"waveforms/2019/{name}", "age": int(rng.integers(35, 85)),
                     "sex": "F" if i % 2 else "M",
                     "acquired_on": str(pd.Timestamp("2018-01-01") + pd.Timedelta(days=int(rng.integers(0, 1400))))[:10],
                     "read_normal": "yes" if sev.max() < 0.4 else "no",
                     **dict(zip(STENOSIS_COLUMNS, labels.tolist()))})
    path = root / "cohort_list.csv"
    pd.DataFrame(rows).to_csv(path, index=False)
    return path


@pytest.mark.slow
def test_a_manifest_written_by_the_test_itself(tmp_path):
    from riskfm.recipes import ecg_stenosis

    manifest = _write_own_cohort(tmp_path)
    cfg = _config(manifest, tmp_path / "study", date_column="acquired_on", normal_ecg_column="read_normal",
                  figures=True, dpi=50, attribution_patients=2)
    cfg["split"] = {"external_sites": [], "test_fraction": 0.4, "val_fraction": 0.2, "seed": 1}
    res = ecg_stenosis(cfg, progress=False)
    preds = pd.read_csv(res.files["predictions"], dtype={"patient_id": str})
    test = preds[preds["split"] == "test"]
    summary = res.tables["summary"]
    assert list(summary["split"].unique()) == ["internal test"]
    for target in STENOSIS_COLUMNS:
        row = summary[summary["target"] == target].iloc[0]
        x = test[test["target"] == target]
        if np.isfinite(row["auroc"]):
            assert row["auroc"] == pytest.approx(roc_auc_score(x["y_true"], x["y_prob"]), abs=1e-12)
    # No external site and no follow-up: said so, not silently left out.
    skipped = res.metrics["skipped"]
    assert any("no external validation" in v for v in skipped.values())
    assert any("time_to_event_days" in v for v in skipped.values())
    html = Path(res.files["report"]).read_text()
    assert "no external validation" in html and "no follow-up" in html
    # The normal-ECG subset is the manifest's column.
    own = pd.read_csv(manifest, dtype={"patient_id": str}).set_index("patient_id")
    per = res.tables["normal_ecg_patients"].set_index("patient_id")
    assert (per["normal"].astype(bool) == (own.loc[per.index, "read_normal"] == "yes")).all()
    assert "read_normal" in res.metrics["normal_ecg"]["rule"]
    # Acquisition years of its own date column, its own sex codes.
    levels = res.tables["subgroups"].groupby("attribute")["level"].unique()
    assert {"F", "M"} <= set(levels["sex"]) and {"2018", "2019"} <= set(levels["acquisition time"])
    # Figures drawn and embedded in the report.
    assert "forest_internal_test" in res.figures and any(k.startswith("median_beat_difference") for k in res.figures)
    assert all(Path(p).is_file() for p in res.figures.values())
    assert html.count("data:image/png;base64") == len(res.figures)


def test_the_run_is_the_configs_ecg_encoder_for_the_four_arteries(tmp_path):
    from riskfm.recipes.ecg_stenosis_study import study_run_config
    from riskfm.recipes.study_config import load_study_config

    ckpt = tmp_path / "12_lead_ECGFounder.pth"
    cfg = {"manifest": str(tmp_path / "m.csv"), "out": str(tmp_path / "study"),
           "encoders": {"ecg": {"name": "ecgfounder-12lead", "checkpoint": str(ckpt), "finetune": "full"},
                        "ct": {"name": "cnn3d-small"}},
           "study": {"n_boot": 200}}
    run, notes = study_run_config(load_study_config(cfg))
    assert run.modalities == ["ecg"] and run.targets == ["stenosis"] and set(run.encoders) == {"ecg"}
    assert run.encoders["ecg"].name == "ecgfounder-12lead" and run.encoders["ecg"].checkpoint == str(ckpt)
    assert Path(run.out) == tmp_path / "study" / "run"
    # What the study changed in the given run configuration is said, not done silently.
    assert any("modalities ['ecg', 'ct', 'clinical'] -> ['ecg']" in n for n in notes)
    assert any("targets ['stenosis', 'mace_30d'] -> ['stenosis']" in n for n in notes)
    same, none = study_run_config(load_study_config({**cfg, "modalities": ["ecg"], "targets": ["stenosis"],
                                                     "encoders": {"ecg": {"name": "resnet1d-small"}}}))
    assert none == [] and same.encoders["ecg"].name == "resnet1d-small"


@pytest.mark.slow
def test_an_ecgfounder_checkpoint_is_fine_tuned_and_explained_on_raw_records(synthetic, tmp_path):
    import torch

    from riskfm.encoders import create_encoder
    from riskfm.recipes import ecg_stenosis

    # A checkpoint in the released layout ({"state_dict": ...}) of the small ECGFounder network.
    torch.manual_seed(0)
    ckpt = tmp_path / "tiny_ECGFounder.pth"
    torch.save({"state_dict": create_encoder("ecgfounder-tiny").state_dict()}, ckpt)
    _, cohort, _ = synthetic
    cfg = _config(cohort.manifest_path, tmp_path / "study", attribution_patients=2)
    cfg["encoders"] = {"ecg": {"name": "ecgfounder-tiny", "checkpoint": str(ckpt)}}
    res = ecg_stenosis(cfg, progress=False)
    assert res.metrics["encoder"] == "ecgfounder-tiny" and res.metrics["checkpoint"] == str(ckpt)
    assert "from " + str(ckpt) in Path(res.files["report"]).read_text()
    preds = pd.read_csv(res.files["predictions"], dtype={"patient_id": str})
    row = res.tables["summary"].query("split == 'external site_ext' and artery == 'LAD'").iloc[0]
    x = preds[(preds["split"] == "external") & (preds["target"] == "stenosis_lad")]
    assert row["auroc"] == pytest.approx(roc_auc_score(x["y_true"], x["y_prob"]), abs=1e-12)
    # Raw 10 s records: the attributions are moved into median-beat space on lead II's R peaks.
    leads = res.tables["attribution_leads"]
    assert len(leads) and np.allclose(leads.groupby(["split", "artery"])["share"].sum(), 1.0)


@pytest.mark.slow
def test_a_study_folder_holding_another_run_is_refused_not_reused(synthetic):
    from riskfm.recipes import ecg_stenosis
    from riskfm.train.run_folder import RunFolderError

    path, cohort, res = synthetic
    other = cohort.manifest_path.with_name("manifest_other.csv")
    pd.read_csv(cohort.manifest_path).iloc[:-1].to_csv(other, index=False)  # one patient fewer
    with pytest.raises(RunFolderError, match="holds another run"):
        ecg_stenosis(path, {"manifest": str(other)}, progress=False)
    assert (Path(res.files["run"]) / "model.pt").is_file()


def test_the_documented_configs_are_valid_study_configs():
    import re

    from riskfm.recipes.ecg_stenosis_study import ECGStenosisOptions, study_run_config
    from riskfm.recipes.study_config import load_study_config

    # docs/studies_ecg_stenosis.md, or docs/studies.md once merged into it: the ECG study's YAML blocks.
    docs = Path(__file__).resolve().parents[2] / "docs"
    text = "".join(p.read_text() for p in (docs / "studies_ecg_stenosis.md", docs / "studies.md") if p.is_file())
    blocks = [b for b in re.findall(r"```yaml\n(.*?)```", text, re.S) if "date_column: ecg_date" in b]
    assert len(blocks) >= 2
    for block in blocks:
        study = load_study_config(yaml.safe_load(block))
        opts = study.options(ECGStenosisOptions)
        run, notes = study_run_config(study)
        assert notes == [] and opts.date_column == "ecg_date" and run.targets == ["stenosis"]


def test_date_strata_and_yes_no_columns():
    from riskfm.recipes.ecg_stenosis_analysis import date_levels, parse_flags

    years, notes = date_levels(pd.Series([2019, 2020, None, 2021]), "yr", "m.csv")
    assert years.tolist()[:2] == ["2019", "2020"] and pd.isna(years.iloc[2])  # numbers are years, not ns
    assert notes == ["yr: 0 value(s) not readable as dates and 1 missing: those patients are in no "
                     "acquisition-time stratum"]
    levels, notes = date_levels(pd.Series(["2019-03-01", "2020-05-03", "garbage", None]), "d", "m.csv")
    assert list(levels.cat.categories) == ["2019", "2020"] and levels.isna().sum() == 2
    assert notes == ["d: 1 value(s) not readable as dates and 1 missing: those patients are in no acquisition-time "
                     "stratum"]
    one_year, notes = date_levels(pd.Series(["2019-03-01", "2019-05-03", "2019-06-01", "2019-08-01"]), "d", "m")
    assert one_year.nunique() == 4 and "quantile bins used instead of years" in notes[0]
    with pytest.raises(ValueError, match="column 'd' holds no dates"):
        date_levels(pd.Series(["soon", "later"]), "d", "m.csv")
    flags = parse_flags(pd.Series(["yes", "No", "1", "0", None, "normal"]), "nl", "m.csv")
    assert flags.tolist()[:4] == [True, False, True, False] and pd.isna(flags.iloc[4]) and flags.iloc[5]
    with pytest.raises(ValueError, match="m.csv: column 'nl' must be yes/no.*'maybe'"):
        parse_flags(pd.Series(["yes", "maybe"]), "nl", "m.csv")
