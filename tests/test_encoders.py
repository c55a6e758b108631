"""The encoder registry: one contract test over every registered encoder, the factory's errors, checkpoints."""

from __future__ import annotations

import argparse
import subprocess
import sys
import warnings

import pytest
import torch
from torch import nn

from riskfm.clinical.spec import TabularInputSpec, TextInputSpec
from riskfm.ct.spec import CTInputSpec
from riskfm.ecg.spec import ECGInputSpec
from riskfm.encoders import (
    CheckpointError,
    EncoderArgumentError,
    UnknownEncoderError,
    _unregister,
    check_encoder_kwargs,
    create_encoder,
    encoder_info,
    list_encoders,
    register_encoder,
)
from riskfm.errors import RiskfmError

# Constructor arguments an entry needs to be built in a test (everything else: registry defaults).
# The full-width CORA U-Net keeps its 19.4M parameters; a 16^3 grid keeps its forward pass fast.
_TEST_KWARGS = {"tabular-mlp": {"n_features": 7}, "cora-resunet": {"input_spec": {"shape": (16, 16, 16)}},
                # Embeds 5 short texts with the installed MiniLM once per process (cached after).
                "clinical-lm-tokens": {"layout": {"numeric": ["age", "ldl"],
                                                  "categorical": {"sex": ["female", "male", "unknown"]}}}}
# Language-model encoders load real weights (seconds); tests/clinical/test_text_encoder.py covers them.
_SLOW = {"text-lm"}
# Adapters wrap the user's own model (local transformers folder / torch module); tests/ecg/test_ecg_models.py covers them.
_NEEDS_USER_MODEL = {"hf-ecg", "generic-ecg"}
# Modalities whose encoders produce spatial / temporal maps, with the map's rank.
_MAP_RANK = {"ecg": 3, "ct": 5}


def _example_input(encoder: nn.Module, batch: int = 2) -> torch.Tensor:
    spec = encoder.input_spec
    if isinstance(spec, ECGInputSpec):
        return torch.randn(batch, len(spec.leads), spec.input_samples)  # median beats are shorter
    if isinstance(spec, CTInputSpec):
        return torch.rand(batch, spec.in_channels, *spec.shape)
    if isinstance(spec, TabularInputSpec):
        return torch.randn(batch, spec.n_features)
    raise AssertionError(f"no example input for {type(spec).__name__}")


def _build(name: str, **kwargs) -> nn.Module:
    if name in _NEEDS_USER_MODEL:
        pytest.skip(f"{name} wraps a user model; see tests/ecg/test_ecg_models.py")
    if name in _SLOW:
        pytest.skip(f"{name} loads a language model; see tests/clinical/test_text_encoder.py")
    torch.manual_seed(0)
    return create_encoder(name, **{**_TEST_KWARGS.get(name, {}), **kwargs})


# --------------------------------------------------------------------------- contract, every encoder
@pytest.mark.parametrize("name", list_encoders())
def test_registry_entry_is_documented(name):
    info = encoder_info(name)
    assert info.name == name
    assert info.modality in ("ecg", "ct", "clinical")
    assert info.licence and info.source and info.description


@pytest.mark.parametrize("name", list_encoders())
def test_encoder_contract_forward_and_gradients(name):
    encoder = _build(name)
    info = encoder_info(name)
    assert encoder.modality == info.modality
    assert isinstance(encoder.feature_dim, int) and encoder.feature_dim > 0
    assert isinstance(encoder.input_spec, ECGInputSpec | CTInputSpec | TabularInputSpec | TextInputSpec)

    x = _example_input(encoder).requires_grad_(True)
    encoder.train()
    out = encoder(x)
    assert out.shape == (2, encoder.feature_dim)
    assert torch.isfinite(out).all()

    out.square().mean().backward()
    # Attribution methods (saliency, IG, Grad-CAM) need finite, non-zero input gradients.
    assert x.grad is not None and torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0
    first = next(p for p in encoder.parameters() if p.requires_grad)
    assert first.grad is not None and torch.isfinite(first.grad).all() and first.grad.abs().sum() > 0


@pytest.mark.parametrize("name", list_encoders())
def test_gradcam_layer_gives_a_map(name):
    encoder = _build(name)
    rank = _MAP_RANK.get(encoder.modality)
    if rank is None:
        assert not hasattr(encoder, "gradcam_layer") or encoder.gradcam_layer is None
        return
    layer = encoder.gradcam_layer
    assert any(layer is m for m in encoder.modules())
    captured = []
    handle = layer.register_forward_hook(lambda _m, _i, out: captured.append(out))
    try:
        encoder.eval()
        with torch.no_grad():
            encoder(_example_input(encoder))
    finally:
        handle.remove()
    assert len(captured) == 1 and captured[0].ndim == rank and captured[0].shape[0] == 2


@pytest.mark.parametrize("name", list_encoders())
def test_wrong_input_shape_is_a_clear_error(name):
    encoder = _build(name)
    x = _example_input(encoder)
    bad = torch.cat([x, x[:, :1]], dim=1)  # one channel / feature too many
    with pytest.raises(ValueError, match="expects"):
        encoder(bad)


# --------------------------------------------------------------------------- registry
def test_list_encoders_by_modality():
    assert {"resnet1d", "resnet1d-small"} <= set(list_encoders("ecg"))
    assert "cnn3d-small" in list_encoders("ct")
    assert {"text-lm", "tabular-mlp"} <= set(list_encoders("clinical"))
    assert set(list_encoders()) == set().union(*(list_encoders(m) for m in ("ecg", "ct", "clinical")))
    with pytest.raises(ValueError, match="modality"):
        list_encoders("eeg")


def test_alias_resolves_but_is_not_listed():
    assert encoder_info("minilm").name == "text-lm"
    assert "minilm" not in list_encoders()


def test_unknown_name_suggests_close_matches():
    with pytest.raises(KeyError) as err:
        create_encoder("resnet1d_smal")
    message = str(err.value)
    assert "Did you mean" in message and "'resnet1d-small'" in message
    for name in list_encoders():
        assert name in message


def test_unknown_name_is_a_value_error_and_a_key_error_with_a_plain_message():
    with pytest.raises(ValueError) as err:
        create_encoder("resnet1dd")
    assert isinstance(err.value, KeyError) and isinstance(err.value, UnknownEncoderError)
    assert isinstance(err.value, RiskfmError)
    assert str(err.value).startswith("unknown encoder 'resnet1dd'. Did you mean 'resnet1d'")  # no repr quotes
    with pytest.raises(UnknownEncoderError):
        encoder_info("nope")
    with pytest.raises(UnknownEncoderError):
        check_encoder_kwargs("nope", {})


def test_unknown_keyword_is_named_before_construction():
    with pytest.raises(ValueError) as err:
        create_encoder("resnet1d-small", widht=3)
    message = str(err.value)
    assert isinstance(err.value, EncoderArgumentError) and isinstance(err.value, TypeError)  # TypeError as before
    assert "encoder 'resnet1d-small'" in message and "'widht'" in message
    assert "did you mean 'widths'" in message
    assert "it accepts: in_leads, widths, feature_dim, blocks, kernel_size, input_spec" in message
    with pytest.raises(EncoderArgumentError, match=r"unknown keyword arguments 'widht' .*, 'bogus'"):
        check_encoder_kwargs("resnet1d", {"widht": 3, "bogus": 1})
    assert check_encoder_kwargs("cnn3d-small", {"widths": (8, 8, 8, 8)}).name == "cnn3d-small"


def test_keyword_with_a_wrong_value_or_type_names_encoder_and_keywords():
    with pytest.raises(ValueError, match=r"encoder 'cnn3d-small': invalid keyword arguments \{'norm': 'group'\}: "
                                         r".*norm must be"):
        create_encoder("cnn3d-small", norm="group")
    with pytest.raises(EncoderArgumentError, match=r"encoder 'resnet1d-small': invalid keyword arguments "
                                                   r"\{'widths': 'abc'\}: ") as err:
        create_encoder("resnet1d-small", widths="abc")
    assert err.value.__cause__ is not None  # the constructor's own error is kept for --verbose


def test_missing_required_keyword_is_named():
    with pytest.raises(EncoderArgumentError, match="encoder 'tabular-mlp': missing required keyword argument "
                                                   "'n_features'") as err:
        create_encoder("tabular-mlp")
    assert isinstance(err.value, TypeError)


def test_factory_taking_kwargs_reports_the_constructor_error_as_value_error():
    with pytest.raises(EncoderArgumentError, match="encoder 'ecgfounder-tiny': invalid keyword arguments.*widht"):
        create_encoder("ecgfounder-tiny", widht=3)


def test_small_variant_overrides_defaults_and_kwargs_override_both():
    assert encoder_info("resnet1d-small").default_kwargs["widths"] == (16, 32, 64, 128)
    enc = create_encoder("resnet1d-small", feature_dim=32)
    assert enc.widths == (16, 32, 64, 128) and enc.feature_dim == 32


def test_register_rejects_clashes_and_bad_modality():
    class Other(nn.Module):
        pass

    with pytest.raises(ValueError, match="already registered"):
        register_encoder("resnet1d", modality="ecg", licence="x", source="x", description="x")(Other)
    with pytest.raises(ValueError, match="modality"):
        register_encoder("eeg-net", modality="eeg", licence="x", source="x", description="x")


def test_contract_is_checked_at_creation():
    @register_encoder("broken-test-encoder", modality="ecg", licence="x", source="x", description="x")
    class Broken(nn.Module):
        modality = "ct"  # wrong, and no feature_dim / input_spec

    try:
        with pytest.raises(TypeError, match="feature_dim.*input_spec.*modality"):
            create_encoder("broken-test-encoder")
    finally:
        _unregister("broken-test-encoder")
    assert "broken-test-encoder" not in list_encoders()


def test_importing_the_registry_is_cheap():
    code = (
        "import sys, riskfm.encoders\n"
        "heavy = [m for m in ('riskfm.ecg.resnet1d', 'riskfm.ct.cnn3d', 'riskfm.clinical.text_encoder', "
        "'transformers') if m in sys.modules]\n"
        "assert not heavy, heavy\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


# --------------------------------------------------------------------------- checkpoints
def _same_weights(a: nn.Module, b: nn.Module) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


@pytest.mark.parametrize("layout", ["bare", "state_dict", "model", "ddp_prefix", "compiled_ddp"])
def test_checkpoint_round_trip(tmp_path, layout):
    torch.manual_seed(1)
    source = create_encoder("resnet1d-small")
    sd = source.state_dict()
    payload = {
        "bare": sd,
        "state_dict": {"state_dict": sd, "epoch": 3},
        "model": {"model": sd, "optimizer": {}},
        "ddp_prefix": {"state_dict": {f"module.{k}": v for k, v in sd.items()}},
        "compiled_ddp": {f"module._orig_mod.{k}": v for k, v in sd.items()},
    }[layout]
    path = tmp_path / "enc.pt"
    torch.save(payload, path)
    torch.manual_seed(2)
    assert not _same_weights(source, create_encoder("resnet1d-small"))
    loaded = create_encoder("resnet1d-small", checkpoint=path)
    assert _same_weights(source, loaded)
    x = torch.randn(2, 12, 1000)
    assert torch.equal(source.eval()(x), loaded.eval()(x))


def test_checkpoint_safetensors(tmp_path):
    from safetensors.torch import save_file

    source = create_encoder("cnn3d-small")
    path = tmp_path / "enc.safetensors"
    save_file({k: v.contiguous() for k, v in source.state_dict().items()}, str(path))
    assert _same_weights(source, create_encoder("cnn3d-small", checkpoint=path))


def test_checkpoint_key_mismatch_lists_keys(tmp_path):
    sd = dict(create_encoder("resnet1d-small").state_dict())
    sd.pop("fc.bias")
    sd["head.weight"] = torch.zeros(3)
    path = tmp_path / "enc.pt"
    torch.save(sd, path)
    with pytest.raises(CheckpointError) as err:
        create_encoder("resnet1d-small", checkpoint=path)
    assert "fc.bias" in str(err.value) and "head.weight" in str(err.value) and str(path) in str(err.value)
    # strict=False loads the matching subset and says what it skipped.
    with pytest.warns(UserWarning, match="strict=False"):
        enc = create_encoder("resnet1d-small", checkpoint=path, strict=False)
    assert torch.equal(enc.state_dict()["fc.weight"], sd["fc.weight"])


def test_checkpoint_shape_mismatch_is_refused(tmp_path):
    path = tmp_path / "small.pt"
    torch.save(create_encoder("resnet1d-small").state_dict(), path)
    with pytest.raises(CheckpointError, match="wrong shape"):
        create_encoder("resnet1d", checkpoint=path, strict=False)


def test_checkpoint_missing_file_and_remote_paths(tmp_path):
    missing = tmp_path / "nope.pt"
    with pytest.raises(FileNotFoundError, match="nope.pt"):
        create_encoder("resnet1d-small", checkpoint=missing)
    with pytest.raises(ValueError, match="local"):
        create_encoder("resnet1d-small", checkpoint="https://example.org/weights.pt")


def test_checkpoint_weights_only_by_default(tmp_path):
    sd = create_encoder("resnet1d-small").state_dict()
    path = tmp_path / "legacy.pt"
    # A typical legacy training checkpoint: hyper-parameters pickled as an argparse Namespace.
    torch.save({"state_dict": sd, "hparams": argparse.Namespace(lr=1e-3)}, path)
    with pytest.raises(CheckpointError, match="weights_only=False"):
        create_encoder("resnet1d-small", checkpoint=path)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the explicit opt-in loads cleanly
        enc = create_encoder("resnet1d-small", checkpoint=path, weights_only=False)
    assert torch.equal(enc.state_dict()["fc.weight"], sd["fc.weight"])


def test_checkpoint_without_tensors_is_refused(tmp_path):
    path = tmp_path / "junk.pt"
    torch.save({"state_dict": {"fc.weight": [1, 2, 3]}}, path)
    with pytest.raises(CheckpointError, match="tensors"):
        create_encoder("resnet1d-small", checkpoint=path)


def test_corrupt_and_truncated_checkpoints_get_a_short_message(tmp_path):
    path = tmp_path / "random.pt"
    path.write_bytes(bytes(range(256)) * 8)
    with pytest.raises(CheckpointError) as err:
        create_encoder("resnet1d-small", checkpoint=path)
    assert str(err.value) == f"{path}: not a readable torch checkpoint (truncated or corrupt?)"
    good = tmp_path / "good.pt"
    torch.save(create_encoder("resnet1d-small").state_dict(), good)
    for size in (1000, good.stat().st_size // 2):  # in the header; inside a tensor (torch: OSError 22)
        cut = tmp_path / f"cut{size}.pt"
        cut.write_bytes(good.read_bytes()[:size])
        with pytest.raises(CheckpointError, match="truncated or corrupt"):
            create_encoder("resnet1d-small", checkpoint=cut)
    bad_st = tmp_path / "bad.safetensors"
    bad_st.write_bytes(b"\x00" * 64)
    with pytest.raises(CheckpointError, match="not a readable safetensors file"):
        create_encoder("resnet1d-small", checkpoint=bad_st)


def test_refused_checkpoint_message_is_one_line(tmp_path):
    path = tmp_path / "legacy.pt"
    torch.save({"state_dict": {}, "hparams": argparse.Namespace(lr=1e-3)}, path)
    with pytest.raises(CheckpointError) as err:
        create_encoder("resnet1d-small", checkpoint=path)
    message = str(err.value)
    assert "\n" not in message and message.startswith(f"{path}: refused:")
    assert "argparse.Namespace" in message and "weights_only: false" in message
    assert isinstance(err.value, RiskfmError)


@pytest.mark.parametrize("name", ["resnet1d", "resnet1d-small", "median-beat-cnn", "ecgfounder-12lead",
                                  "ecgfounder-1lead", "ecgfounder-tiny", "cnn3d-small", "cora-resunet",
                                  "cora-resunet-small"])
def test_input_spec_without_building_is_the_built_encoders_spec(name, monkeypatch):
    from riskfm.encoders import create_encoder, encoder_info, encoder_input_spec

    built = create_encoder(name).input_spec
    if encoder_info(name).modality == "ecg":
        custom = {"fs": 250, "n_samples": 2500, "leads": list(built.leads)}
    else:
        custom = {"shape": [32, 32, 32], "spacing": [2.0, 2.0, 2.0]}
    if name == "median-beat-cnn":
        custom["representation"] = "median_beat"
    built_custom = create_encoder(name, input_spec=custom).input_spec

    def no_build(*a, **k):
        raise AssertionError("the encoder was built to read its spec")

    monkeypatch.setattr("riskfm.encoders.create_encoder", no_build)
    assert encoder_input_spec(name) == built
    assert encoder_input_spec(name, input_spec=custom) == built_custom
    assert built.batch_key == encoder_info(name).modality


def test_input_spec_without_building_checks_keywords_like_create_encoder():
    from riskfm.encoders import EncoderArgumentError, UnknownEncoderError, encoder_input_spec

    with pytest.raises(UnknownEncoderError):
        encoder_input_spec("resnet-1d-smal")
    with pytest.raises(EncoderArgumentError, match="widht"):
        encoder_input_spec("resnet1d", widht=3)


def test_fine_tuning_recipe_is_read_from_the_registry_without_building(monkeypatch):
    from riskfm.train.config import RunConfig
    from riskfm.train.finetune import with_finetune_recipes

    def no_build(*a, **k):
        raise AssertionError("the encoder was built to read its recipe")

    monkeypatch.setattr("riskfm.encoders.create_encoder", no_build)
    published = {"lr": 1e-4, "weight_decay": 1e-5, "optimizer": "adam", "scheduler": "plateau"}
    for name in ("ecgfounder-12lead", "ecgfounder", "ecgfounder-1lead", "ecgfounder-tiny"):
        assert dict(encoder_info(name).finetune_recipe) == published
    assert encoder_info("resnet1d").finetune_recipe is None  # trained from scratch: no published recipe

    # an encoder a user registers brings its own recipe, applied where the config is silent
    @register_encoder("recipe-test-encoder", modality="ecg", licence="x", source="x", description="x",
                      finetune_recipe={"lr": 3e-5, "scheduler": "cosine"})
    class WithRecipe(nn.Module):
        pass

    try:
        given = RunConfig(manifest="m.csv", out="o", modalities=["ecg"],
                          encoders={"ecg": {"name": "recipe-test-encoder", "weight_decay": 0.5}},
                          train={"optimizer": "adamw"})
        before = given.model_dump()
        cfg, notes = with_finetune_recipes(given)
        assert given.model_dump() == before  # the user's config object is never changed
        assert cfg.encoders["ecg"].lr == 3e-5 and cfg.encoders["ecg"].weight_decay == 0.5  # the user's value kept
        assert cfg.train.scheduler == "cosine" and cfg.train.optimizer == "adamw"
        assert notes == ["encoders.ecg.lr = 3e-05 (recipe-test-encoder recipe)",
                         "train.scheduler = cosine (recipe-test-encoder recipe)"]
    finally:
        _unregister("recipe-test-encoder")
    with pytest.raises(ValueError, match=r"finetune_recipe keys \['learning_rate'\]"):
        register_encoder("bad-recipe", modality="ecg", licence="x", source="x", description="x",
                         finetune_recipe={"learning_rate": 1e-3})
