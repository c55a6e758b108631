"""Language-model text encoder: MiniLM from the installed package, a tiny decoder-only Qwen2, the cache."""

from __future__ import annotations

import os

import pytest
import torch

from riskfm.clinical import TextEncoder, serialise_clinical
from riskfm.clinical.text_encoder import TextModelNotFoundError, default_text_model_path
from riskfm.encoders import create_encoder

TEXTS = [
    serialise_clinical({"age": 63, "sex": "female", "hypertension": 1, "diabetes": 0, "ldl": 96}),
    serialise_clinical({"age": 71, "sex": "male", "hypertension": 0, "diabetes": 1, "ldl": None}),
    "Age: 40 years.",
]


class ForwardCounter:
    """Counts language-model forward passes and the texts they encode."""

    def __init__(self, module: torch.nn.Module) -> None:
        self.calls = 0
        self.texts = 0
        self.handle = module.register_forward_hook(self)

    def __call__(self, _module, _args, output) -> None:
        self.calls += 1
        self.texts += output.last_hidden_state.shape[0]


@pytest.fixture(scope="module")
def minilm() -> TextEncoder:
    try:
        default_text_model_path()
    except TextModelNotFoundError as exc:
        pytest.skip(f"default text model not installed: {exc}")
    return create_encoder("minilm")


@pytest.fixture
def fresh(minilm: TextEncoder) -> TextEncoder:
    minilm.clear_cache()
    yield minilm
    minilm.clear_cache()


# --------------------------------------------------------------------------- MiniLM (encoder model)
def test_minilm_loads_offline_from_the_installed_package(minilm):
    assert isinstance(minilm, TextEncoder)
    assert minilm.feature_dim == 384 and minilm.modality == "clinical"
    assert minilm.pooling == "mean" and not minilm.decoder_only
    assert minilm.input_spec.model_path == str(default_text_model_path())
    assert (default_text_model_path() / "config.json").is_file()
    assert os.environ.get("HF_HUB_OFFLINE") == "1"


def test_minilm_embeddings_are_deterministic_and_equal_for_equal_texts(fresh):
    batch = [TEXTS[0], TEXTS[1], TEXTS[0]]
    first = fresh(batch)
    assert first.shape == (3, 384) and first.dtype == torch.float32 and torch.isfinite(first).all()
    assert torch.equal(first[0], first[2])
    fresh.clear_cache()
    assert torch.equal(fresh(batch), first)  # recomputed from scratch, same numbers
    # Different patients give different embeddings.
    assert not torch.allclose(first[0], first[1])


def test_mean_pooling_ignores_padding(fresh):
    # In a batch the short text is padded; its embedding must equal the plain token mean of the text alone.
    embeddings = fresh(TEXTS)
    tokens = fresh.tokenizer([TEXTS[2]], return_tensors="pt")
    with torch.no_grad():
        alone = fresh.lm(**tokens).last_hidden_state[0].mean(dim=0)
    assert torch.allclose(embeddings[2], alone, atol=1e-5)


def test_cache_encodes_each_unique_text_once(fresh):
    counter = ForwardCounter(fresh.lm)
    try:
        for _epoch in range(3):
            fresh([TEXTS[0], TEXTS[1], TEXTS[0]])
            fresh([TEXTS[1], TEXTS[2]])
        assert counter.texts == 3
        info = fresh.cache_info()
        assert (info.misses, info.size) == (3, 3)
        assert info.hits == 3 * 5 - 3
        # precompute batches the uncached texts only, batch_size at a time.
        fresh.batch_size = 2
        new = [f"Age: {a} years." for a in range(50, 55)]
        assert fresh.precompute(new + TEXTS) == 5
        assert counter.calls == 2 + 3 and counter.texts == 3 + 5
    finally:
        fresh.batch_size = 32
        counter.handle.remove()


def test_frozen_encoder_has_no_gradients_and_stays_in_eval(fresh):
    fresh.train()
    assert not fresh.lm.training
    assert not any(p.requires_grad for p in fresh.parameters())
    assert not fresh(TEXTS[:1]).requires_grad


def test_loading_weights_empties_the_cache(fresh):
    fresh(TEXTS)
    fresh.load_state_dict(fresh.state_dict())
    assert fresh.cache_info().size == 0


def test_reloading_a_risk_model_checkpoint_keeps_the_frozen_cache(fresh):
    """The best epoch's weights are reloaded without the frozen LM's: its texts are not encoded again."""
    from riskfm.models.fusion import ConcatFusion
    from riskfm.models.heads import build_head
    from riskfm.models.risk_model import RiskModel

    fusion = ConcatFusion({"clinical": fresh.feature_dim})
    model = RiskModel({"clinical": fresh}, fusion, [build_head("mace_30d", fusion.out_dim)])
    model.freeze_encoder("clinical")
    model.eval()  # no dropout: the two forward passes must agree
    counter = ForwardCounter(fresh.lm)
    batch = {"clinical_text": list(TEXTS), "clinical_present": torch.ones(len(TEXTS), dtype=torch.bool)}
    before = model(batch)["mace_30d"].detach()
    model.load_checkpoint_state_dict(model.checkpoint_state_dict())
    after = model(batch)["mace_30d"].detach()
    counter.handle.remove()
    assert counter.texts == len(set(TEXTS)) and fresh.cache_info().size == len(set(TEXTS))
    torch.testing.assert_close(before, after)
    # Whole-model weights that include the LM's still empty the cache (they may be other weights).
    model.load_state_dict(model.state_dict())
    assert fresh.cache_info().size == 0


def test_long_text_truncation_warns(fresh):
    fresh.max_length = 8
    fresh._warned_truncation = False
    try:
        with pytest.warns(UserWarning, match="truncated"):
            fresh([TEXTS[0]])
    finally:
        fresh.max_length = 256


def test_bad_inputs_are_clear_errors(minilm, tmp_path):
    with pytest.raises(TypeError, match="single str"):
        minilm("Age: 63 years.")
    with pytest.raises(TypeError, match="str texts"):
        minilm(["ok", 3])
    assert minilm([]).shape == (0, 384)
    with pytest.raises(FileNotFoundError, match="not a local folder"):
        TextEncoder("sentence-transformers/all-MiniLM-L6-v2")
    with pytest.raises(FileNotFoundError, match="config.json"):
        TextEncoder(tmp_path)
    with pytest.raises(ValueError, match="pooling"):
        TextEncoder(pooling="cls")
    with pytest.raises(ValueError, match="512 positions"):
        TextEncoder(max_length=1024)


# --------------------------------------------------------------------------- tiny decoder-only Qwen2
def test_decoder_only_model_uses_last_token_pooling(qwen_dir):
    enc = TextEncoder(qwen_dir)
    assert enc.decoder_only and enc.pooling == "last" and enc.input_spec.pooling == "last"
    assert enc.feature_dim == 32
    assert enc.tokenizer.pad_token == enc.tokenizer.eos_token  # missing pad token -> eos


@pytest.mark.parametrize("side", ["right", "left"])
def test_last_token_embedding_is_the_last_real_token_state(qwen_dir, side):
    enc = TextEncoder(qwen_dir)
    enc.tokenizer.padding_side = side
    texts = ["Age: 40 years.", TEXTS[0]]
    mask = enc.tokenizer(texts, padding=True, return_tensors="pt")["attention_mask"]
    pad_column = 0 if side == "left" else -1
    assert mask[0, pad_column] == 0  # the short text really is padded on that side

    embeddings = enc(texts)
    for i, text in enumerate(texts):
        ids = enc.tokenizer([text], return_tensors="pt")["input_ids"]  # alone: no padding at all
        with torch.no_grad():
            reference = enc.lm(input_ids=ids).last_hidden_state[0, -1]
        assert torch.allclose(embeddings[i], reference, atol=1e-5), (side, i)


def test_trainable_language_model_gets_gradients_and_no_cache(qwen_dir):
    enc = TextEncoder(qwen_dir, freeze=False)
    enc.train()
    out = enc(TEXTS[:2])
    assert out.requires_grad and out.shape == (2, 32)
    out.square().mean().backward()
    grad = enc.lm.get_input_embeddings().weight.grad
    assert grad is not None and torch.isfinite(grad).all() and grad.abs().sum() > 0
    assert enc.cache_info().size == 0
    with pytest.raises(RuntimeError, match="no cache"):
        enc.precompute(TEXTS)
