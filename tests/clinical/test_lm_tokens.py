"""clinical-lm-tokens: one token per variable from frozen LM embeddings of its name and values."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
from sklearn.metrics import roc_auc_score

import riskfm.clinical.lm_tokens as lm_tokens
from riskfm.clinical import LMTokenEncoder, TabularPreprocessor
from riskfm.clinical.spec import TabularInputSpec
from riskfm.clinical.text_encoder import TextEncoder, TextModelNotFoundError, default_text_model_path
from riskfm.encoders import create_encoder, list_encoders
from riskfm.models.risk_model import encoder_input_key


@pytest.fixture(scope="module", autouse=True)
def _minilm_installed():
    try:
        default_text_model_path()
    except TextModelNotFoundError as exc:
        pytest.skip(f"default text model not installed: {exc}")


@pytest.fixture
def table() -> pd.DataFrame:
    # Column names the serialiser knows (SBP, ldl_c), and two it has never seen (crp_mg_l, shift_worker).
    return pd.DataFrame({
        "age": [50.0, 60.0, 70.0, np.nan],
        "SBP": [120.0, 140.0, 135.0, 150.0],
        "ldl_c": [100.0, np.nan, 130.0, 90.0],
        "crp_mg_l": [1.0, 3.5, np.nan, 0.4],
        "sex": ["female", "male", "male", "female"],
        "shift_worker": ["yes", "no", None, "no"],
    })


@pytest.fixture
def pre(table) -> TabularPreprocessor:
    return TabularPreprocessor(numeric=["age", "SBP", "ldl_c", "crp_mg_l"],
                               categorical=["sex", "shift_worker"]).fit(table)


def _encoder(pre, **kwargs) -> LMTokenEncoder:
    return create_encoder("clinical-lm-tokens", **LMTokenEncoder.tabular_kwargs(pre), **kwargs)


def test_registered_reads_the_tabular_matrix_and_has_the_right_shapes(pre, table):
    assert "clinical-lm-tokens" in list_encoders("clinical")
    enc = _encoder(pre, feature_dim=48, token_dim=16)
    assert isinstance(enc.input_spec, TabularInputSpec) and encoder_input_key("clinical", enc) == "clinical_tabular"
    assert enc.input_spec.n_features == pre.n_features == enc.n_features
    assert enc.input_spec.extra["feature_names"] == pre.feature_names
    assert enc.columns == ["age", "SBP", "ldl_c", "crp_mg_l", "sex", "shift_worker"]
    x = torch.from_numpy(pre.transform(table))
    assert enc(x).shape == (4, 48) and enc.tokens(x).shape == (4, 6, 16)
    with pytest.raises(ValueError, match=f"expects \\[B, {pre.n_features}\\]"):
        enc(x[:, :-1])


def test_texts_carry_labels_and_units_and_unseen_names_are_humanised(pre):
    texts = _encoder(pre).input_spec.extra["texts"]
    assert texts["SBP"] == {"name": "Systolic blood pressure (mmHg)", "unknown": "Systolic blood pressure: unknown."}
    assert texts["ldl_c"]["name"] == "LDL cholesterol (mg/dL)"
    assert texts["crp_mg_l"]["name"] == "Crp mg l"
    assert texts["sex"]["levels"] == ["Sex: female.", "Sex: male.", "Sex: unknown."]
    assert texts["shift_worker"]["levels"] == ["Shift worker: no.", "Shift worker: yes.", "Shift worker: unknown."]
    relabelled = _encoder(pre, labels={"crp_mg_l": "C-reactive protein"}, units={"crp_mg_l": "mg/L"})
    assert relabelled.input_spec.extra["texts"]["crp_mg_l"]["name"] == "C-reactive protein (mg/L)"


def test_embeddings_are_centred_unit_rms_language_model_vectors(pre):
    enc = _encoder(pre)
    vocab = torch.cat([enc.name_embeddings, enc.numeric_unknown_embeddings, enc.level_embeddings])
    assert vocab.shape == (4 + 4 + 3 + 3, 384)
    torch.testing.assert_close(vocab.mean(dim=0), torch.zeros(384), atol=1e-5, rtol=0)
    assert vocab.pow(2).mean().item() == pytest.approx(1.0, rel=1e-5)
    # The language model's geometry is kept: distances between texts are the LM's (normalised)
    # distances times one common factor.
    texts = enc.input_spec.extra["texts"]
    names = [texts[c]["name"] for c in ("age", "SBP", "ldl_c", "crp_mg_l")]
    raw = torch.nn.functional.normalize(TextEncoder()(names).double(), dim=1)
    ratio = torch.pdist(enc.name_embeddings.double()) / torch.pdist(raw)
    torch.testing.assert_close(ratio, ratio.mean().expand_as(ratio), rtol=1e-4, atol=0)


def test_missing_values_get_their_own_token_not_the_mean(pre, table):
    enc = LMTokenEncoder.from_preprocessor(pre, token_dropout=0.0).eval()
    x = torch.from_numpy(pre.transform(table))
    tokens = enc.tokens(x)
    unknown = enc._unknown_tokens().detach()
    # Row 3 has no age; row 1 no LDL; row 2 no CRP and no shift_worker: exactly the unknown token.
    torch.testing.assert_close(tokens[3, 0], unknown[0])
    torch.testing.assert_close(tokens[1, 2], unknown[2])
    torch.testing.assert_close(tokens[2, 3], unknown[3])
    torch.testing.assert_close(tokens[2, 5], unknown[5])
    # A missing age is not an average age (z = 0 writes the name token without a value).
    at_mean = x[3:4].clone()
    at_mean[0, 1] = 0.0  # age__missing off, age z stays 0
    assert not torch.allclose(enc.tokens(at_mean)[0, 0], tokens[3, 0])
    # A row with nothing known still encodes to finite numbers.
    nothing = pre.transform(pd.DataFrame({c: [None] for c in table.columns}))
    assert torch.isfinite(enc(torch.from_numpy(nothing))).all()


def test_token_dropout_replaces_tokens_by_missing_tokens_only_in_training(pre, table):
    enc = _encoder(pre, token_dropout=0.5)
    x = torch.from_numpy(pre.transform(table)).repeat(50, 1)
    enc.eval()
    clean = enc.tokens(x)
    enc.train()
    torch.manual_seed(0)
    noisy = enc.tokens(x)
    unknown = enc._unknown_tokens().detach().expand_as(noisy)
    changed = ~torch.isclose(noisy, clean).all(dim=-1)
    assert 0.3 < changed.float().mean().item() < 0.6
    torch.testing.assert_close(noisy[changed], unknown[changed])


def test_language_model_runs_once_per_distinct_text(pre, monkeypatch):
    seen: list[str] = []
    original = TextEncoder._encode

    def counting(self, texts):
        seen.extend(texts)
        return original(self, texts)

    monkeypatch.setattr(TextEncoder, "_encode", counting)
    lm_tokens.clear_lm_embeddings()
    enc = _encoder(pre)
    texts = enc.input_spec.extra["texts"]
    distinct = {t for spec in texts.values() for v in spec.values() for t in ([v] if isinstance(v, str) else v)}
    assert sorted(seen) == sorted(distinct) and len(seen) == 14
    info = lm_tokens.lm_embedding_cache_info()
    assert (info.misses, info.lm_loads, info.size) == (14, 1, 14)
    # A second encoder (a reload, another run in this process) does not load or run the LM again.
    _encoder(pre)
    assert len(seen) == 14 and lm_tokens.lm_embedding_cache_info().lm_loads == 1
    # One new column: only its texts reach the LM.
    more = TabularPreprocessor(numeric=["age", "hdl"], categorical=[]).fit(pd.DataFrame({"age": [1.0], "hdl": [2.0]}))
    _encoder(more)
    assert sorted(seen[14:]) == ["HDL cholesterol (mg/dL)", "HDL cholesterol: unknown."]


def test_same_seed_same_weights_and_outputs_cached_or_not(pre, table):
    x = torch.from_numpy(pre.transform(table))
    lm_tokens.clear_lm_embeddings()
    torch.manual_seed(3)
    first = _encoder(pre).eval()  # the LM is loaded inside: it must not move the seeded generator
    torch.manual_seed(3)
    second = _encoder(pre).eval()  # every text cached
    for (k, a), (_, b) in zip(first.state_dict().items(), second.state_dict().items()):
        torch.testing.assert_close(a, b, rtol=0, atol=0, msg=k)
    torch.testing.assert_close(first(x), second(x), rtol=0, atol=0)
    torch.manual_seed(4)
    assert not torch.equal(_encoder(pre).place.weight, first.place.weight)


def test_a_missing_language_model_folder_is_named(pre, tmp_path):
    gone = tmp_path / "no_such_model"
    with pytest.raises(FileNotFoundError, match="no_such_model.*not a local folder"):
        _encoder(pre, model_path=gone)
    with pytest.raises(FileNotFoundError, match="not a local folder"):
        _encoder(pre, model_path="sentence-transformers/all-MiniLM-L6-v2")


def test_bad_layouts_are_clear_errors():
    with pytest.raises(ValueError, match="no columns"):
        LMTokenEncoder({"numeric": [], "categorical": {}})
    with pytest.raises(ValueError, match="end with 'unknown'"):
        LMTokenEncoder({"numeric": [], "categorical": {"sex": ["female", "male"]}})
    with pytest.raises(ValueError, match="listed twice"):
        LMTokenEncoder({"numeric": ["age"], "categorical": {"age": ["a", "unknown"]}})


def test_decoder_only_language_model_from_a_local_folder(qwen_dir, pre, table):
    enc = _encoder(pre, model_path=qwen_dir)
    assert enc.name_embeddings.shape == (4, 32) and enc.model_path == str(qwen_dir)
    assert enc(torch.from_numpy(pre.transform(table))).shape == (4, 64)


def test_learns_a_signal_from_a_small_table():
    """Risk from an unseen-named lab value and a categorical: held-out AUROC far above chance."""
    rng = np.random.default_rng(0)
    n = 600
    df = pd.DataFrame({"nt_probnp": rng.normal(300, 100, n), "age": rng.normal(60, 10, n),
                       "smoking_status": rng.choice(["never", "former", "current"], n)})
    df.loc[rng.random(n) < 0.1, "nt_probnp"] = np.nan
    logit = 2.0 * (df["nt_probnp"].fillna(300) - 300) / 100 + 1.5 * (df["smoking_status"] == "current") - 0.5
    logit = logit.to_numpy()
    y = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(np.float32)
    pre = TabularPreprocessor(numeric=["nt_probnp", "age"], categorical=["smoking_status"]).fit(df[:400])
    torch.manual_seed(0)
    enc = _encoder(pre)
    head = torch.nn.Linear(enc.feature_dim, 1)
    opt = torch.optim.AdamW([*enc.parameters(), *head.parameters()], lr=3e-3, weight_decay=1e-2)
    x, target = torch.from_numpy(pre.transform(df)), torch.from_numpy(y)
    for _ in range(150):
        opt.zero_grad()
        loss = torch.nn.functional.binary_cross_entropy_with_logits(head(enc(x[:400])).squeeze(1), target[:400])
        loss.backward()
        opt.step()
    enc.eval()
    with torch.no_grad():
        score = head(enc(x[400:])).squeeze(1).numpy()
    oracle = roc_auc_score(y[400:], logit[400:])
    assert roc_auc_score(y[400:], score) > oracle - 0.05 > 0.75


# --------------------------------------------------------------------------- inside riskfm train
def _write_manifest(path, n=120, seed=0):
    rng = np.random.default_rng(seed)
    bnp = rng.normal(300, 100, n)
    smoker = rng.choice(["never", "former", "current"], n)
    risk = 2.0 * (bnp - 300) / 100 + 1.5 * (smoker == "current") - 0.5
    sick = rng.random(n) < 1 / (1 + np.exp(-risk))
    df = pd.DataFrame({
        "patient_id": [f"p{i:03d}" for i in range(n)], "site": "a", "ecg_path": "", "ct_path": "",
        "nt_probnp": np.where(rng.random(n) < 0.1, np.nan, bnp.round(1)), "smoking_status": smoker,
        "stenosis_lm": 0, "stenosis_lad": sick.astype(int), "stenosis_lcx": 0, "stenosis_rca": 0,
        "mace_30d": sick.astype(int), "time_to_event_days": 100.0, "event": sick.astype(int),
    })
    df.to_csv(path, index=False)
    return path


@pytest.mark.slow  # a training run and an explanation: 7-40 s on 2 shared cores
def test_trains_inside_riskfm_train_and_reloads_for_predict(tmp_path):
    import riskfm
    from riskfm.train.run import load_run_model, run_training

    manifest = _write_manifest(tmp_path / "cohort.csv")
    cfg = {"manifest": str(manifest), "out": str(tmp_path / "run"), "modalities": ["clinical"],
           "targets": ["mace_30d"], "encoders": {"clinical": {"name": "clinical-lm-tokens", "kwargs": {"token_dim": 16}}},
           "split": {"test_fraction": 0.25, "val_fraction": 0.25},
           "train": {"epochs": 3, "batch_size": 16, "patience": 50, "progress": False, "accelerator": "cpu",
                     "seed": 1},
           "evaluate": {"n_boot": 20, "figures": False}}
    result = run_training(cfg)
    loaded = load_run_model(tmp_path / "run")
    enc = loaded.model.encoders["clinical"]
    assert isinstance(enc, LMTokenEncoder) and enc.columns == ["nt_probnp", "smoking_status"]
    assert loaded.tabular.feature_names == enc.input_spec.extra["feature_names"]
    again = riskfm.load_run(tmp_path / "run").predict(manifest)
    saved = result.predictions[result.predictions["target"] == "mace_30d"].set_index("patient_id")["y_prob"]
    again = again[again["target"] == "mace_30d"].set_index("patient_id")["y_prob"]
    np.testing.assert_allclose(again.loc[saved.index].to_numpy(), saved.to_numpy(), rtol=1e-5, atol=1e-6)
    assert saved.std() > 0  # not a constant prediction
    # Clinical attributions take the tabular path: one feature-ablation value per variable.
    explained = riskfm.load_run(tmp_path / "run").explain([saved.index[0]], target="mace_30d", cohort_size=0,
                                                          sanity=False)
    per_variable = explained.summary["patients"][saved.index[0]]["clinical"]
    assert set(per_variable) == {"nt_probnp", "smoking_status"}
