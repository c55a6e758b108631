"""Every user mistake ends in `error: <message>` naming the thing and the fix, exit 2, no traceback.

The traceback appears only with ``--verbose`` (before or after the command) or ``RISKFM_VERBOSE=1``;
unexpected internal errors exit 1 with a hint to rerun with ``--verbose``. Nothing here trains.
"""

from __future__ import annotations

import os

import numpy as np
import pytest
import torch
import yaml
from typer.testing import CliRunner

from riskfm.cli import app
from riskfm.errors import CheckpointError, RiskfmError, checkpoint_load_error, error_message, is_user_error


class Evil:
    """A class a weights_only load must refuse to unpickle."""

    def __init__(self) -> None:
        self.payload = "would run on unpickling"


@pytest.fixture(autouse=True)
def _no_env_verbose(monkeypatch):
    monkeypatch.delenv("RISKFM_VERBOSE", raising=False)


def _invoke(args):
    return CliRunner().invoke(app, [str(a) for a in args])


def _assert_user_error(result, *needles):
    assert result.exit_code == 2, (result.exit_code, result.output, repr(result.exception))
    assert "Traceback" not in result.output, result.output
    assert "error: " in result.output, result.output
    for needle in needles:
        assert needle in result.output, (needle, result.output)


# --------------------------------------------------------------------------- files
@pytest.fixture()
def files(tmp_path):
    """A tiny manifest, a tiny CT, a corrupt and an unsafe checkpoint, configs."""
    import nibabel as nib

    hu = np.full((8, 8, 8), -1000.0, np.float32)  # air around a soft-tissue block: a plausible CT
    hu[2:6, 2:6, 2:6] = np.random.default_rng(0).normal(40.0, 30.0, (4, 4, 4))
    nib.save(nib.Nifti1Image(hu, np.eye(4)), str(tmp_path / "ct.nii.gz"))
    (tmp_path / "ecg").mkdir()
    rows = ["patient_id,site,ecg_path,ct_path,mace_30d"]
    rows += [f"p{i},a,ecg/p{i}.csv,ct.nii.gz,{i % 2}" for i in range(4)]
    (tmp_path / "manifest.csv").write_text("\n".join(rows) + "\n")
    (tmp_path / "corrupt.pt").write_bytes(np.random.default_rng(0).bytes(4096))
    torch.save({"state_dict": {"w": torch.zeros(2)}, "extra": Evil()}, tmp_path / "unsafe.pt")
    base = {"manifest": "manifest.csv", "out": "run", "modalities": ["ecg"], "targets": ["mace_30d"],
            "train": {"epochs": 1, "progress": False}}
    (tmp_path / "unknown_encoder.yaml").write_text(yaml.safe_dump({**base, "encoders": {"ecg": {"name": "resnet1dd"}}}))
    (tmp_path / "bad_kwarg.yaml").write_text(yaml.safe_dump(
        {**base, "encoders": {"ecg": {"name": "resnet1d-small", "kwargs": {"widht": 3}}}}))
    for name, ecg in {"spec_list": {"name": "resnet1d-small", "kwargs": {"input_spec": [500, 5000]}},
                      "spec_type": {"name": "resnet1d-small", "kwargs": {"input_spec": {"fs": "fast"}}},
                      "spec_key": {"name": "resnet1d-small", "kwargs": {"input_spec": {"fz": 500}}},
                      "wrong_modality": {"name": "cnn3d-small"}}.items():
        (tmp_path / f"{name}.yaml").write_text(yaml.safe_dump({**base, "encoders": {"ecg": ecg}}))
    (tmp_path / "syntax.yaml").write_text("manifest: manifest.csv\nmodalities: [ecg\ntargets: [mace_30d]\n")
    (tmp_path / "indent.yaml").write_text("manifest: manifest.csv\ntrain:\n  epochs: 3\n   lr: 0.1\n")
    return tmp_path


# --------------------------------------------------------------------------- riskfm train
def test_train_unknown_encoder_names_key_and_close_match(files):
    result = _invoke(["train", files / "unknown_encoder.yaml"])
    _assert_user_error(result, "unknown_encoder.yaml", "encoders.ecg.name", "'resnet1dd'",
                       "did you mean 'resnet1d'", "resnet1d-small")
    assert not (files / "run").exists()  # failed before the run folder (or any data) was touched


def test_train_bad_encoder_keyword_names_it_and_the_accepted_ones(files):
    result = _invoke(["train", files / "bad_kwarg.yaml"])
    _assert_user_error(result, "bad_kwarg.yaml", "encoders.ecg.kwargs", "'resnet1d-small'", "'widht'",
                       "did you mean 'widths'", "it accepts:", "feature_dim")
    assert not (files / "run").exists()


def test_train_missing_config(files):
    _assert_user_error(_invoke(["train", files / "nope.yaml"]), "nope.yaml", "not found")


@pytest.mark.parametrize(("name", "needles"), [
    ("spec_list", ("encoders.ecg.kwargs", "input_spec must be a mapping", "[500, 5000]")),
    ("spec_type", ("encoders.ecg.kwargs", "input_spec.fs must be float", "'fast'")),
    ("spec_key", ("encoders.ecg.kwargs", "'fz'", "did you mean 'fs'")),
    ("wrong_modality", ("encoders.ecg.name", "'cnn3d-small' is a ct encoder")),
])
def test_train_bad_encoder_config_is_one_or_two_lines(files, name, needles):
    result = _invoke(["train", files / f"{name}.yaml"])
    _assert_user_error(result, f"{name}.yaml", *needles)
    assert len(result.output.strip().splitlines()) <= 2, result.output
    assert not (files / "run").exists()


@pytest.mark.parametrize(("kwargs", "needle"), [
    ({"input_spec": "abc"}, "input_spec must be a mapping"),
    ({"input_spec": {"n_samples": -5}}, "input_spec.n_samples must be positive"),
    ({"input_spec": {"bandpass_hz": 5}}, "input_spec.bandpass_hz must be tuple[float, float] | None"),
])
def test_create_encoder_bad_input_spec_is_an_encoder_argument_error(kwargs, needle):
    from riskfm.encoders import EncoderArgumentError, create_encoder

    with pytest.raises(EncoderArgumentError) as err:
        create_encoder("resnet1d-small", **kwargs)
    assert needle in str(err.value) and is_user_error(err.value) and "\n" not in str(err.value)


def test_create_encoder_wraps_deep_errors_of_the_callers_values():
    from torch import nn

    from riskfm.encoders import EncoderArgumentError, _unregister, create_encoder, register_encoder

    @register_encoder("test-deep-error", modality="ecg", licence="MIT", source="riskfm", description="test")
    class Deep(nn.Module):
        def __init__(self, widths=(4,)):
            super().__init__()
            self.first = widths[0]  # an IndexError on [], not a TypeError / ValueError

    try:
        with pytest.raises(EncoderArgumentError, match=r"test-deep-error.*\[\].*IndexError"):
            create_encoder("test-deep-error", widths=[])
    finally:
        _unregister("test-deep-error")


@pytest.mark.parametrize(("name", "where"), [("syntax.yaml", "syntax.yaml:"), ("indent.yaml", "indent.yaml:4:")])
def test_train_yaml_syntax_error_names_file_and_line(files, name, where):
    result = _invoke(["train", files / name])
    _assert_user_error(result, where, "not valid YAML", "check the indentation")
    assert len(result.output.strip().splitlines()) <= 2


@pytest.mark.parametrize("how", ["global", "command", "env"])
def test_verbose_shows_the_traceback(files, monkeypatch, how):
    args = ["train", files / "unknown_encoder.yaml"]
    if how == "global":
        args = ["--verbose", *args]
    elif how == "command":
        args = [*args, "--verbose"]
    else:
        monkeypatch.setenv("RISKFM_VERBOSE", "1")
    result = _invoke(args)
    assert result.exit_code == 2
    assert "Traceback" in result.output and "UnknownEncoderError" in result.output
    assert "error: " in result.output and "'resnet1dd'" in result.output


# --------------------------------------------------------------------------- checkpoints
def test_cac_score_corrupt_model(files):
    result = _invoke(["cac", "score", files / "ct.nii.gz", "--model", files / "corrupt.pt", "--out", files / "o"])
    _assert_user_error(result, "corrupt.pt", "not a readable riskfm checkpoint (truncated or corrupt?)")


def test_cac_score_truncated_model(files):
    from riskfm.ct.calcium.segmentation import CalciumSegmenter, SegmenterConfig, _build

    seg = CalciumSegmenter(_build(SegmenterConfig(widths=(4, 8, 8, 8))), SegmenterConfig(widths=(4, 8, 8, 8)))
    path = seg.save(files / "seg.pt")
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    result = _invoke(["cac", "score", files / "ct.nii.gz", "--model", path, "--out", files / "o"])
    _assert_user_error(result, "seg.pt", "truncated or corrupt?")


def test_cac_score_unsafe_model(files):
    result = _invoke(["cac", "score", files / "ct.nii.gz", "--model", files / "unsafe.pt", "--out", files / "o"])
    _assert_user_error(result, "unsafe.pt", "refused", "Evil", "weights_only", "if you trust its origin")


def test_cac_score_missing_model(files):
    result = _invoke(["cac", "score", files / "ct.nii.gz", "--model", files / "nope.pt", "--out", files / "o"])
    _assert_user_error(result, "nope.pt", "not found")


@pytest.mark.parametrize("command", ["plaque", "stenosis", "segment"])
@pytest.mark.parametrize(("ckpt", "needle"), [("corrupt.pt", "truncated or corrupt?"), ("unsafe.pt", "refused"),
                                              ("nope.pt", "checkpoint not found")])
def test_ct_tasks_bad_checkpoint(files, command, ckpt, needle):
    result = _invoke(["ct", command, files / "manifest.csv", "--checkpoint", files / ckpt, "--out", files / "o",
                      "--steps", "1"])
    _assert_user_error(result, ckpt, needle)


def test_ct_abnormality_bad_checkpoint(files):
    result = _invoke(["ct", "abnormality", files / "ct.nii.gz", "--checkpoint", files / "corrupt.pt",
                      "--out", files / "a.nii.gz"])
    _assert_user_error(result, "corrupt.pt", "truncated or corrupt?")


def test_pretrain_ct_resume_from_corrupt_last_checkpoint(files):
    out = files / "pre"
    (out / "checkpoints").mkdir(parents=True)
    (out / "checkpoints" / "last.ckpt").write_bytes(b"\x00" * 100)
    result = _invoke(["pretrain-ct", files / "manifest.csv", "--out", out, "--width", "4", "--patch", "8",
                      "--spacing", "4,4,4", "--steps", "1", "--batch-size", "1"])
    _assert_user_error(result, "last.ckpt", "truncated or corrupt?", "--no-resume")


@pytest.mark.parametrize("ckpt", ["corrupt.pt", "unsafe.pt"])
def test_predict_and_explain_with_a_bad_model_pt(files, ckpt):
    run = files / "run_dir"
    run.mkdir()
    (run / "model.pt").write_bytes((files / ckpt).read_bytes())
    needle = "truncated or corrupt?" if ckpt == "corrupt.pt" else "refused"
    result = _invoke(["predict", run, files / "manifest.csv", "--out", files / "p.csv"])
    _assert_user_error(result, os.path.join("run_dir", "model.pt"), needle)
    result = _invoke(["explain", run, "-p", "p0", "--out", files / "x"])
    _assert_user_error(result, os.path.join("run_dir", "model.pt"), needle)


def test_predict_folder_that_is_not_a_run(files):
    result = _invoke(["predict", files, files / "manifest.csv"])
    _assert_user_error(result, "no model.pt", "riskfm train")


# --------------------------------------------------------------------------- internal errors, messages
def test_internal_error_exits_1_with_a_hint(files, monkeypatch):
    import riskfm.train.run

    def boom(*_a, **_k):
        raise RuntimeError("CUDA error: device-side assert triggered\nsecond line of torch's story")

    monkeypatch.setattr(riskfm.train.run, "predict_manifest", boom)
    run = files / "run_dir"
    run.mkdir()
    (run / "model.pt").write_bytes(b"")
    result = _invoke(["predict", run, files / "manifest.csv"])
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output and "second line" not in result.output
    assert "error: internal error, RuntimeError: CUDA error: device-side assert triggered" in result.output
    assert "run with --verbose" in result.output
    result = _invoke(["--verbose", "predict", run, files / "manifest.csv"])
    assert result.exit_code == 1 and "Traceback" in result.output and "run with --verbose" not in result.output


def test_run_model_mismatch_is_a_user_error(files, monkeypatch):
    import riskfm.train.run

    def mismatch(*_a, **_k):
        raise RuntimeError("checkpoint does not match the model: missing ['head.weight']")

    monkeypatch.setattr(riskfm.train.run, "predict_manifest", mismatch)
    run = files / "run_dir"
    run.mkdir()
    (run / "model.pt").write_bytes(b"")
    result = _invoke(["predict", run, files / "manifest.csv"])
    _assert_user_error(result, os.path.join("run_dir", "model.pt"), "head.weight", "riskfm train")


def test_error_message_of_key_and_os_errors():
    assert error_message(KeyError("patient 'x' is not in the manifest")) == "patient 'x' is not in the manifest"
    assert error_message(KeyError("mace_30d")) == "missing key 'mace_30d'"
    try:
        open("/nonexistent-riskfm-dir/file.csv")  # noqa: SIM115
    except OSError as exc:
        assert error_message(exc) == "/nonexistent-riskfm-dir/file.csv: No such file or directory"
    assert is_user_error(KeyError("x")) and is_user_error(PermissionError("x")) and is_user_error(RiskfmError("x"))
    assert not is_user_error(RuntimeError("x")) and not is_user_error(TypeError("x"))


def test_load_checkpoint_errors_are_short(files):
    from riskfm.train.checkpoint import load_checkpoint, save_atomic

    with pytest.raises(CheckpointError) as err:
        load_checkpoint(files / "corrupt.pt")
    assert str(err.value) == f"{files / 'corrupt.pt'}: not a readable riskfm checkpoint (truncated or corrupt?)"
    assert isinstance(err.value, ValueError) and isinstance(err.value, RiskfmError)
    with pytest.raises(CheckpointError, match=r"unsafe\.pt: refused: .*Evil.*weights_only.*trust its origin") as err:
        load_checkpoint(files / "unsafe.pt")
    assert "\n" not in str(err.value)
    good = save_atomic({"epoch": 1, "w": torch.ones(3)}, files / "good.ckpt")
    (files / "trunc.ckpt").write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    big = save_atomic({"model": {"w": torch.ones(100, 100)}}, files / "big.ckpt")  # cut inside a tensor:
    (files / "trunc_big.ckpt").write_bytes(big.read_bytes()[: big.stat().st_size // 2])  # torch says OSError(22)
    (files / "empty.ckpt").write_bytes(b"")
    for name in ("trunc.ckpt", "trunc_big.ckpt", "empty.ckpt"):
        with pytest.raises(CheckpointError, match="truncated or corrupt"):
            load_checkpoint(files / name)
    with pytest.raises(FileNotFoundError, match="nope.ckpt"):
        load_checkpoint(files / "nope.ckpt")
    with pytest.raises(CheckpointError, match="folder"):
        load_checkpoint(files)
    torch.save([torch.ones(1)], files / "list.ckpt")
    with pytest.raises(CheckpointError, match="not a dict"):
        load_checkpoint(files / "list.ckpt")
    assert load_checkpoint(files / "unsafe.pt", weights_only=False)["extra"].payload  # the explicit opt-in


def test_checkpoint_load_error_only_calls_refusals_refusals():
    refused = RuntimeError("Weights only load failed. ... Unsupported global: GLOBAL mymod.Thing was not an "
                           "allowed global by default.")
    corrupt = RuntimeError("Weights only load failed. ... Unsupported operand 224")
    assert "refused" in str(checkpoint_load_error("a.pt", refused)) and "mymod.Thing" in str(
        checkpoint_load_error("a.pt", refused))
    assert "truncated or corrupt" in str(checkpoint_load_error("a.pt", corrupt))
    assert "truncated or corrupt" in str(checkpoint_load_error("a.pt", refused, weights_only=False))


# --------------------------------------------------------------------------- riskfm ecg store
@pytest.mark.parametrize(("args", "needles"), [
    (["--encoder", "resnet1dd"], ("unknown encoder 'resnet1dd'", "resnet1d")),
    (["--encoder", "cnn3d-small"], ("'cnn3d-small' is a ct encoder",)),
    (["--spec", "nope.json"], ("nope.json", "not found")),
    (["--spec", "bad.json"], ("bad.json", "not valid JSON")),
    (["--spec", "badkey.json"], ("badkey.json", "'fz'", "did you mean 'fs'")),
    (["--encoder", "resnet1d-small", "--shard", "5/2"], ("0 <= i < N",)),
])
def test_ecg_store_build_user_errors(files, args, needles):
    (files / "bad.json").write_text("{fs: 500")
    (files / "badkey.json").write_text('{"fz": 500}')
    args = [a if not a.endswith(".json") else files / a for a in args]
    result = _invoke(["ecg", "store", "build", files / "manifest.csv", "--out", files / "store", *args])
    _assert_user_error(result, *needles)
    assert len(result.output.strip().splitlines()) <= 2, result.output


def test_ecg_store_info_of_a_folder_that_is_no_store(files):
    result = _invoke(["ecg", "store", "info", files])
    _assert_user_error(result, "not an ECG store", "riskfm ecg store build")
