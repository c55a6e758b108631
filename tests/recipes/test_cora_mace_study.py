"""`riskfm study cora-mace`: CORA's 30-day MACE arms (CT, clinical text through a frozen LM, both)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import yaml
from scipy.stats import norm
from sklearn.metrics import roc_auc_score
from typer.testing import CliRunner

from riskfm.cli import app
from riskfm.errors import RiskfmError
from riskfm.evaluate.discrimination import stratified_bootstrap_indices
from riskfm.recipes import cora_mace
from riskfm.recipes.cora_mace_arms import ArmPlan, ArmRun, check_same_splits, plan_arms, table1_columns
from riskfm.recipes.cora_mace_study import compare_arms
from riskfm.recipes.study_config import load_study_config
from riskfm.train.config import ConfigError

pytestmark = pytest.mark.xdist_group("cora_mace")

ARMS = ["ct", "clinical", "ct_clinical"]


# --------------------------------------------------------------------------- a tiny decoder-only LLM
def _byte_level_alphabet() -> list[str]:
    """The 256 printable characters byte-level BPE uses for bytes (GPT-2 convention)."""
    printable = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), ord("ÿ") + 1)]
    extra = iter(range(256, 512))
    return [chr(b) if b in printable else chr(next(extra)) for b in range(256)]


@pytest.fixture(scope="module")
def qwen_dir(tmp_path_factory) -> Path:
    """A random 2-layer Qwen2 (hidden 32, byte-level tokens) standing in for the paper's Qwen-7B."""
    from transformers import Qwen2Config, Qwen2Model
    from transformers.models.qwen2.tokenization_qwen2 import Qwen2Tokenizer

    folder = tmp_path_factory.mktemp("tiny_qwen2")
    vocab = {ch: i for i, ch in enumerate(_byte_level_alphabet())}
    vocab["<|endoftext|>"] = len(vocab)
    Qwen2Tokenizer(vocab=vocab, merges=[], pad_token=None).save_pretrained(folder)
    # One token per byte: CORA's prompt plus 12 variables is ~450 tokens.
    config = Qwen2Config(vocab_size=len(vocab), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                         num_attention_heads=2, num_key_value_heads=2, max_position_embeddings=1024)
    torch.manual_seed(0)
    Qwen2Model(config).save_pretrained(folder)
    return folder


def _config(manifest: Path, out: Path, qwen: Path, **extra) -> dict:
    cfg = {
        "manifest": str(manifest), "out": str(out), "modalities": ["ct", "clinical"], "targets": ["mace_30d"],
        "split": {"external_sites": ["site_ext"], "test_fraction": 0.3, "val_fraction": 0.25, "seed": 0},
        "encoders": {"ct": {"name": "cora-resunet-small", "kwargs": {"width": 4}},
                     "clinical": {"name": "text-lm", "freeze": True,
                                  "kwargs": {"model_path": str(qwen), "max_length": 1024}}},
        "fusion": {"proj_dim": 8},
        "train": {"epochs": 1, "batch_size": 16, "progress": False, "accelerator": "cpu", "seed": 1},
        "evaluate": {"n_boot": 20, "figures": False, "min_events": 1, "min_nonevents": 1},
        "study": {"n_boot": 60, "seed": 4},
    }
    cfg.update(extra)
    return cfg


def _write(path: Path, cfg: dict) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(cfg))
    return path


@pytest.fixture(scope="module")
def cli_study(tiny_cohort, qwen_dir, tmp_path_factory):
    """The study run once from the command line: (config path, CLI result)."""
    root = tmp_path_factory.mktemp("cora_mace")
    path = _write(root / "study.yaml", _config(tiny_cohort.manifest_path, root / "study", qwen_dir))
    result = CliRunner().invoke(app, ["study", "cora-mace", str(path)])
    assert result.exit_code == 0, result.output
    return path, result


# --------------------------------------------------------------------------- end to end
@pytest.mark.slow
def test_cli_study_writes_every_arm_the_tables_figures_and_report(cli_study):
    path, result = cli_study
    out = path.parent / "study"
    assert f"report: {out / 'report.html'}" in result.output
    for name in ARMS:
        assert (out / "arms" / name / "model.pt").is_file()
        assert (out / "arms" / name / "study_arm.json").is_file()
    summary = pd.read_csv(out / "summary.csv")
    assert list(zip(summary["split"], summary["arm"])) == [(s, a) for s in ("test", "external") for a in ARMS]
    assert summary["auroc"].notna().all() and (summary["ci_low"] <= summary["auroc"]).all()
    assert (summary["auroc"] <= summary["ci_high"]).all()
    assert (out / "figures" / "roc_test.png").is_file() and (out / "figures" / "roc_external.png").is_file()
    html = (out / "report.html").read_text()
    assert "Paired bootstrap tests" in html and "CT (scratch) + clinical" in html and "data:image/png" in html
    study = json.loads((out / "study.json").read_text())
    assert study["options"]["n_boot"] == 60 and len(study["comparisons"]) == 2 * 3
    # Default pairs: the richer arm first, so a positive difference is a gain.
    assert [(c["arm_1"], c["arm_2"]) for c in study["comparisons"][:3]] == [
        ("ct_clinical", "ct"), ("ct_clinical", "clinical"), ("ct", "clinical")]
    # Each arm is one run of the config restricted to its modalities; the paper's fusion for CT.
    arm_cfg = yaml.safe_load((out / "arms" / "ct_clinical" / "config.yaml").read_text())
    assert arm_cfg["modalities"] == ["ct", "clinical"] and arm_cfg["targets"] == ["mace_30d"]
    assert arm_cfg["fusion"]["passthrough"] == ["ct"]
    assert arm_cfg["data"]["clinical_columns"] == ["age", "sex", "race", "bmi", "sbp", "dbp", "tobacco",
                                                   "hypertension", "diabetes", "total_cholesterol", "ldl", "hdl"]
    assert yaml.safe_load((out / "arms" / "clinical" / "config.yaml").read_text())["modalities"] == ["clinical"]
    # An arm without clinical variables does not carry them (its identity is independent of the other arms).
    assert yaml.safe_load((out / "arms" / "ct" / "config.yaml").read_text())["data"]["clinical_columns"] is None


@pytest.mark.slow
def test_every_arm_has_the_same_split_and_is_scored_on_the_same_patients(cli_study):
    out = cli_study[0].parent / "study"
    splits = {a: pd.read_csv(out / "arms" / a / "splits.csv", dtype={"patient_id": str}) for a in ARMS}
    for split in ("train", "val", "test", "external"):
        ids = {a: set(s.loc[s["split"] == split, "patient_id"]) for a, s in splits.items()}
        assert ids["ct"] == ids["clinical"] == ids["ct_clinical"] and ids["ct"], split
    preds = pd.read_csv(out / "predictions.csv", dtype={"patient_id": str})
    test = preds[preds["split"] == "test"]
    assert set(test["patient_id"]) == set(splits["ct"].loc[splits["ct"]["split"] == "test", "patient_id"])
    # Patients without a CT are scored by the CT arms from the missing-CT embedding: counted in a note.
    manifest = pd.read_csv(yaml.safe_load(cli_study[0].read_text())["manifest"], dtype={"patient_id": str})
    no_ct = set(manifest.loc[manifest["ct_path"].isna(), "patient_id"])
    notes = json.loads((out / "study.json").read_text())["notes"]
    for split in ("test", "external"):
        k = len(set(preds.loc[preds["split"] == split, "patient_id"]) & no_ct)
        assert any(n.startswith(f"{split}: {k} of ") and "have no CT" in n for n in notes) == (k > 0)


@pytest.mark.slow
def test_written_aurocs_equal_sklearn_on_the_written_predictions(cli_study):
    out = cli_study[0].parent / "study"
    preds = pd.read_csv(out / "predictions.csv", dtype={"patient_id": str})
    summary = pd.read_csv(out / "summary.csv")
    for row in summary.itertuples():
        part = preds[preds["split"] == row.split]
        assert row.n == len(part) and row.n_events == part["y_true"].sum()
        assert row.auroc == pytest.approx(roc_auc_score(part["y_true"], part[f"y_prob_{row.arm}"]), abs=1e-12)
        # ... and the study's predictions are the arm run's own predictions of those patients.
        own = pd.read_csv(out / "arms" / row.arm / "predictions.csv", dtype={"patient_id": str})
        own = own[(own["split"] == row.split) & (own["target"] == "mace_30d")].set_index("patient_id")
        np.testing.assert_allclose(own.loc[part["patient_id"], "y_prob"], part[f"y_prob_{row.arm}"], rtol=1e-12)


@pytest.mark.slow
def test_paired_tests_equal_an_independent_recomputation_on_the_same_resamples(cli_study):
    out = cli_study[0].parent / "study"
    preds = pd.read_csv(out / "predictions.csv", dtype={"patient_id": str})
    comparisons = pd.read_csv(out / "comparisons.csv")
    for row in comparisons.itertuples():
        part = preds[preds["split"] == row.split]
        y = part["y_true"].to_numpy()
        p1, p2 = part[f"y_prob_{row.arm_1}"].to_numpy(), part[f"y_prob_{row.arm_2}"].to_numpy()
        idx = stratified_bootstrap_indices(y, n_boot=60, seed=4)
        diffs = np.array([roc_auc_score(y[i], p1[i]) - roc_auc_score(y[i], p2[i]) for i in idx])
        assert row.difference == pytest.approx(roc_auc_score(y, p1) - roc_auc_score(y, p2), abs=1e-12)
        assert row.ci_low == pytest.approx(np.quantile(diffs, 0.025), abs=1e-12)
        assert row.ci_high == pytest.approx(np.quantile(diffs, 0.975), abs=1e-12)
        sd = diffs.std(ddof=1)
        if sd > 0:
            assert row.p_value == pytest.approx(2 * norm.sf(abs(row.difference / sd)), rel=1e-9)


@pytest.mark.slow
def test_python_rerun_reuses_finished_arms_and_gives_the_same_tables(cli_study):
    path, _ = cli_study
    out = path.parent / "study"
    stamps = {a: (out / "arms" / a / "model.pt").stat().st_mtime_ns for a in ARMS}
    before = pd.read_csv(out / "summary.csv")
    res = cora_mace(path)
    assert res.tables["arms"]["reused"].tolist() == [True, True, True]
    assert {a: (out / "arms" / a / "model.pt").stat().st_mtime_ns for a in ARMS} == stamps
    assert res.tables["summary"]["not_estimable"].isna().all() and before["not_estimable"].isna().all()
    pd.testing.assert_frame_equal(res.tables["summary"].drop(columns="not_estimable"),
                                  before.drop(columns="not_estimable"), check_dtype=False)
    assert res.files["report"] == out / "report.html"
    # Only the same arm configuration counts as finished: another learning rate is another run.
    from riskfm.recipes.cora_mace_arms import _finished

    kw = {"image_projection": False, "clinical_columns": "table1", "notes": []}
    same = plan_arms(load_study_config(path).run, ["ct"], **kw)[0]
    other = plan_arms(load_study_config(path, {"train.lr": 0.5}).run, ["ct"], **kw)[0]
    assert _finished(same) and not _finished(other)
    # A study option is not part of an arm: a new n_boot re-reads the arms and recomputes the intervals.
    res = cora_mace(path, overrides={"study.n_boot": 30})
    assert res.tables["arms"]["reused"].all() and res.tables["summary"]["method"].str.contains("30 resamples").all()


@pytest.mark.slow
def test_a_pretrained_ct_checkpoint_is_compared_with_the_same_encoder_from_scratch(tmp_path, qwen_dir, tiny_cohort):
    from riskfm.ct.cora import CoraResUNet, cora_input_spec

    torch.manual_seed(11)  # stands in for `riskfm pretrain-ct` weights: what matters is that they are loaded
    net = CoraResUNet(width=4, input_spec=cora_input_spec((2.0, 1.5, 1.5), (32, 32, 32)))
    torch.save({"model": net.state_dict()}, tmp_path / "cora_pretrained.pt")
    cfg = _config(tiny_cohort.manifest_path, tmp_path / "study", qwen_dir)
    cfg["encoders"]["ct"]["checkpoint"] = str(tmp_path / "cora_pretrained.pt")
    cfg["study"] = {"arms": ["ct", "ct_scratch"], "splits": ["test"], "n_boot": 20}
    res = cora_mace(cfg)
    arms = res.tables["arms"].set_index("arm")
    assert arms.loc["ct", "ct_weights"] == str(tmp_path / "cora_pretrained.pt")
    assert arms.loc["ct_scratch", "ct_weights"] == "scratch"
    assert res.tables["summary"]["label"].tolist() == ["CT (pretrained)", "CT (scratch)"]
    preds = res.tables["predictions"]
    assert not np.allclose(preds["y_prob_ct"], preds["y_prob_ct_scratch"])  # other starting weights
    assert res.tables["comparisons"][["arm_1", "arm_2"]].values.tolist() == [["ct", "ct_scratch"]]


# --------------------------------------------------------------------------- errors
def test_a_wrong_study_key_is_a_clear_error_naming_it(tmp_path, qwen_dir, tiny_cohort):
    cfg = _config(tiny_cohort.manifest_path, tmp_path / "o", qwen_dir)
    cfg["study"] = {"n_bot": 100}
    path = _write(tmp_path / "bad.yaml", cfg)
    result = CliRunner().invoke(app, ["study", "cora-mace", str(path)])
    assert result.exit_code == 2
    assert "study.n_bot: unknown key (did you mean 'n_boot'?)" in result.output
    with pytest.raises(ConfigError, match=r"study\.arms\.0: .*'ct', 'ct_scratch'"):
        cora_mace({**cfg, "study": {"arms": ["image"]}})
    assert not (tmp_path / "o").exists()  # refused before anything is written


def test_scratch_arms_need_a_checkpoint_and_arms_need_their_modalities(tmp_path, qwen_dir, tiny_cohort):
    cfg = _config(tiny_cohort.manifest_path, tmp_path / "o", qwen_dir)
    with pytest.raises(RiskfmError, match=r"study.arms: \['ct_scratch'\] .*encoders.ct.checkpoint is not set"):
        cora_mace({**cfg, "study": {"arms": ["ct", "ct_scratch"]}})
    no_ct = {**cfg, "modalities": ["clinical"], "encoders": {"clinical": cfg["encoders"]["clinical"]}}
    with pytest.raises(RiskfmError, match=r"modalities: the arms .* need \['clinical', 'ct'\]"):
        cora_mace(no_ct)
    with pytest.raises(RiskfmError, match="split.external_sites is empty"):
        cora_mace({**cfg, "split": {"seed": 0}, "study": {"splits": ["external"]}})
    with pytest.raises(RiskfmError, match="train.devices: 1"):
        cora_mace({**cfg, "train": {**cfg["train"], "devices": 2}})
    with pytest.raises(ConfigError, match="names an arm not in arms"):
        cora_mace({**cfg, "study": {"arms": ["ct", "clinical"], "pairs": [["ct", "ct_clinical"]]}})


def test_a_training_run_folder_is_not_a_study_folder(tmp_path, qwen_dir, tiny_cohort):
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "fingerprint.json").write_text("{}")
    with pytest.raises(RiskfmError, match="is a riskfm train run folder"):
        cora_mace(_config(tiny_cohort.manifest_path, tmp_path / "run", qwen_dir))


# --------------------------------------------------------------------------- the arms' plan
def test_a_checkpoint_gives_pretrained_and_scratch_arms_on_one_split(tmp_path, qwen_dir, tiny_cohort):
    cfg = _config(tiny_cohort.manifest_path, tmp_path / "o", qwen_dir, targets=["stenosis", "mace_30d"],
                  modalities=["ecg", "ct", "clinical"])
    cfg["encoders"]["ct"]["checkpoint"] = str(tmp_path / "cora_pretrained.pt")
    notes: list[str] = []
    run = load_study_config(cfg).run
    plans = plan_arms(run, None, image_projection=False, clinical_columns="table1", notes=notes)
    assert [p.name for p in plans] == ["ct", "ct_scratch", "clinical", "ct_clinical", "ct_clinical_scratch"]
    by = {p.name: p for p in plans}
    assert by["ct"].ct_weights == by["ct_clinical"].ct_weights == "pretrained"
    assert by["ct"].config.encoders["ct"].checkpoint == str(tmp_path / "cora_pretrained.pt")
    assert by["ct_scratch"].config.encoders["ct"].checkpoint is None
    assert by["ct_clinical_scratch"].config.encoders["ct"].checkpoint is None
    assert by["clinical"].ct_weights is None and by["clinical"].config.fusion.passthrough == []
    for p in plans:
        assert p.config.targets == ["mace_30d"] and p.config.split == run.split and p.config.train == run.train
        assert p.config.out == str(tmp_path / "o" / "arms" / p.name)
        assert p.config.fusion.passthrough == (["ct"] if "ct" in p.modalities else [])
    assert any("targets" in n for n in notes) and any("['ecg']" in n for n in notes)
    # riskfm's own fusion on request: the CT features projected like the text embedding.
    plans = plan_arms(run, ["ct_clinical"], image_projection=True, clinical_columns="all", notes=[])
    assert plans[0].config.fusion.passthrough == [] and plans[0].config.data.clinical_columns is None


def test_table1_columns_are_recognised_under_their_aliases():
    cols = ["patient_id", "site", "ct_path", "Age", "gender", "SBP", "smoking_status", "troponin", "mace_30d", "HDL_C"]
    assert table1_columns(cols) == (["Age", "gender", "SBP", "smoking_status", "HDL_C"], ["troponin"])


def _fake_run(name: str, splits: dict[str, str]) -> ArmRun:
    plan = ArmPlan(name, name, ("ct",), "scratch", type("Cfg", (), {"out": f"/runs/{name}"})())
    return ArmRun(plan, pd.DataFrame(), pd.Series(splits), False, 0, 0.5)


def test_arms_that_split_the_cohort_differently_are_refused():
    a = _fake_run("ct", {"P1": "train", "P2": "test", "P3": "val"})
    check_same_splits([a, _fake_run("clinical", {"P1": "train", "P2": "test"})])  # a patient fewer: fine
    with pytest.raises(RiskfmError, match=r"arms 'ct' and 'clinical' split the cohort differently .*'P2': test vs "
                                          r"train"):
        check_same_splits([a, _fake_run("clinical", {"P1": "train", "P2": "train", "P4": "test"})])


# --------------------------------------------------------------------------- the statistics
def test_compare_arms_matches_sklearn_and_a_numpy_paired_bootstrap():
    rng = np.random.default_rng(0)
    y = (rng.random(120) < 0.2).astype(int)
    p_a = y * 1.5 + rng.normal(0, 0.6, 120)
    p_b = y * 0.3 + rng.normal(0, 0.6, 120)
    aurocs, tests = compare_arms(y, {"a": p_a, "b": p_b}, [("a", "b")], n_boot=200, seed=7, confidence=0.9,
                                 min_events=10, min_nonevents=10)
    idx = stratified_bootstrap_indices(y, n_boot=200, seed=7)
    for arm, p in (("a", p_a), ("b", p_b)):
        row = aurocs.set_index("arm").loc[arm]
        boot = [roc_auc_score(y[i], p[i]) for i in idx]  # the same resamples for every arm
        assert row["auroc"] == pytest.approx(roc_auc_score(y, p), abs=1e-12)
        assert (row["ci_low"], row["ci_high"]) == pytest.approx(tuple(np.quantile(boot, [0.05, 0.95])), abs=1e-12)
    diffs = np.array([roc_auc_score(y[i], p_a[i]) - roc_auc_score(y[i], p_b[i]) for i in idx])
    t = tests.iloc[0]
    assert t["difference"] == pytest.approx(roc_auc_score(y, p_a) - roc_auc_score(y, p_b), abs=1e-12)
    assert (t["ci_low"], t["ci_high"]) == pytest.approx(tuple(np.quantile(diffs, [0.05, 0.95])), abs=1e-12)
    assert t["p_value"] == pytest.approx(2 * norm.sf(abs(t["difference"]) / diffs.std(ddof=1)), rel=1e-9)
    assert t["p_value"] < 0.05 and t["significance"] in ("*", "**", "***")  # a clear difference is found


def test_too_few_events_are_not_estimable_not_numbers():
    y = np.array([0] * 30 + [1] * 3)
    p = np.linspace(0, 1, 33)
    aurocs, tests = compare_arms(y, {"a": p, "b": p[::-1]}, [("a", "b")], n_boot=50, seed=0, confidence=0.95,
                                 min_events=10, min_nonevents=10)
    assert aurocs["auroc"].isna().all() and (aurocs["not_estimable"] == "3 events < 10").all()
    assert np.isnan(tests.loc[0, "difference"]) and tests.loc[0, "not_estimable"] == "3 events < 10"
    assert tests.loc[0, "significance"] is None
