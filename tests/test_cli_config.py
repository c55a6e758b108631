"""`riskfm config init|show` and `riskfm train` without CONFIG: the default configuration, written and used."""

from __future__ import annotations

from pathlib import Path

import yaml
from typer.testing import CliRunner

from riskfm.cli import app
from riskfm.config_default import DEFAULT_CONFIG_YAML, default_config_dict, default_run_config
from riskfm.train.config import load_config


def _invoke(*args):
    return CliRunner().invoke(app, [str(a) for a in args])


def test_config_init_output_loads_and_equals_the_default(tmp_path):
    path = tmp_path / "run.yaml"
    result = _invoke("config", "init", path)
    assert result.exit_code == 0, result.output
    assert path.read_text() == DEFAULT_CONFIG_YAML and "#" in path.read_text()  # commented, to edit
    loaded = load_config(path)  # relative manifest / out are taken from the file's folder
    expected = default_run_config(tmp_path / "manifest.csv", tmp_path / "runs" / "riskfm")
    assert loaded.model_dump() == expected.model_dump()


def test_config_init_refuses_to_overwrite_unless_forced(tmp_path):
    path = tmp_path / "run.yaml"
    path.write_text("manifest: mine.csv\n")
    result = _invoke("config", "init", path)
    assert result.exit_code == 2 and "already exists" in result.output and "--force" in result.output
    assert "Traceback" not in result.output and len(result.output.strip().splitlines()) <= 2
    assert path.read_text() == "manifest: mine.csv\n"
    assert _invoke("config", "init", path, "--force").exit_code == 0
    assert path.read_text() == DEFAULT_CONFIG_YAML


def test_default_config_is_the_demo_config_for_any_cohort():
    from riskfm.recipes.demo import demo_config

    demo = demo_config("m.csv", "out")
    default = default_config_dict()
    assert default["split"].pop("external_sites") == []  # the demo holds out its synthetic site_ext
    demo["split"].pop("external_sites")
    assert demo["train"].pop("resume") is False  # the demo always starts over; a user's run resumes
    # the demo's prepared arrays live beside its cohort; a user's go to the default cache folder
    assert demo.pop("data") == {"cache_dir": str(Path("out").parent / "cache")} and "data" not in default
    for key in ("manifest", "out"):
        demo.pop(key), default.pop(key)
    assert default == demo


def test_config_show_prints_the_resolved_config(tmp_path):
    path = tmp_path / "run.yaml"
    _invoke("config", "init", path)
    result = _invoke("config", "show", path)
    assert result.exit_code == 0, result.output
    shown = yaml.safe_load(result.stdout)
    assert shown == load_config(path).model_dump(mode="json")
    assert shown["train"]["patience"] == 8 and shown["train"]["optimizer"] == "adamw"  # defaults filled in
    bad = _invoke("config", "show", tmp_path / "nope.yaml")
    assert bad.exit_code == 2 and "nope.yaml" in bad.output and "Traceback" not in bad.output


def test_train_without_config_uses_the_default(tmp_path, monkeypatch):
    import riskfm.train.run
    from riskfm.errors import RiskfmError

    seen = {}

    def capture(cfg):
        seen["cfg"] = cfg
        raise RiskfmError("stopped by the test")

    monkeypatch.setattr(riskfm.train.run, "run_training", capture)
    manifest = tmp_path / "m.csv"
    manifest.write_text("patient_id\n")
    result = _invoke("train", "--manifest", manifest, "--out", tmp_path / "x", "--epochs", 3,
                     "--external-site", "b")
    assert result.exit_code == 2 and "stopped by the test" in result.output
    cfg = seen["cfg"]
    expected = default_run_config(manifest, tmp_path / "x", {"train.epochs": 3, "split.external_sites": ["b"]})
    assert cfg.model_dump() == expected.model_dump()
    assert cfg.encoders["ecg"].name == "median-beat-cnn" and cfg.train.epochs == 3


def test_train_without_config_or_manifest_is_a_user_error():
    result = _invoke("train")
    assert result.exit_code == 2 and "--manifest" in result.output and "riskfm config init" in result.output
    assert "Traceback" not in result.output and len(result.output.strip().splitlines()) <= 2
