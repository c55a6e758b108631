import pytest
import yaml

from riskfm.train.config import ConfigError, load_config, parse_config


def test_minimal_config_fills_defaults(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump({
        "manifest": "cohort/manifest.csv", "modalities": ["ecg", "clinical"], "targets": ["stenosis", "mace_30d"],
        "split": {"external_sites": ["x"], "test_fraction": 0.3, "seed": 2}, "train": {"epochs": 4}, "out": "run"}))
    cfg = load_config(path)
    assert cfg.manifest == str((tmp_path / "cohort" / "manifest.csv").resolve())  # relative to the config file
    assert cfg.train.epochs == 4 and cfg.split.test_fraction == 0.3
    assert set(cfg.encoders) == {"ecg", "clinical"} and cfg.encoders["clinical"].freeze


def test_overrides(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump({"manifest": "m.csv"}))
    cfg = load_config(path, {"train.epochs": 7, "split.external_sites": ["s2"], "out": "/tmp/o"})
    assert cfg.train.epochs == 7 and cfg.split.external_sites == ["s2"] and cfg.out == "/tmp/o"


def test_unknown_key_is_named_with_suggestion():
    with pytest.raises(ConfigError, match=r"train\.epocs: unknown key \(did you mean 'epochs'\?\)"):
        parse_config({"manifest": "m.csv", "train": {"epocs": 3}}, "c.yaml")


def test_wrong_value_and_missing_key():
    with pytest.raises(ConfigError, match=r"split\.test_fraction"):
        parse_config({"manifest": "m.csv", "split": {"test_fraction": 1.5}})
    with pytest.raises(ConfigError, match=r"manifest: required key is missing"):
        parse_config({})
    with pytest.raises(ConfigError, match=r"modalities\.0"):
        parse_config({"manifest": "m.csv", "modalities": ["eeg"]})
    with pytest.raises(ConfigError, match=r"unknown target"):
        parse_config({"manifest": "m.csv", "targets": ["stroke"]})


def test_bad_yaml(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("manifest: [unclosed")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(path)
