"""A study config is a `riskfm train` config plus an optional `study:` section."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from riskfm.recipes.study_config import StudyOptions, load_study_config
from riskfm.train.config import ConfigError, load_config


class _Options(StudyOptions):
    n_boot: int = 500
    reference: str | None = None


def _write(tmp_path: Path, data: dict) -> Path:
    path = tmp_path / "cfg" / "study.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(data))
    return path


BASE = {"manifest": "data/manifest.csv", "out": "runs/x", "modalities": ["ecg"], "targets": ["stenosis"]}


def test_a_training_config_runs_as_a_study_unchanged(tmp_path):
    path = _write(tmp_path, BASE)
    study = load_study_config(path)
    assert study.study == {}
    assert study.run.model_dump() == load_config(path).model_dump()
    assert study.run.manifest == str((path.parent / "data/manifest.csv").resolve())
    assert study.options(_Options).n_boot == 500


def test_the_study_section_is_not_part_of_the_run_and_is_validated_by_the_study(tmp_path):
    path = _write(tmp_path, {**BASE, "study": {"n_boot": 200, "reference": "ref/paper.csv"}})
    study = load_study_config(path, {"train.epochs": 3, "study.n_boot": 100})
    assert "study" not in study.run.model_dump()
    assert study.run.train.epochs == 3
    opts = study.options(_Options)
    assert opts.n_boot == 100
    # Paths inside `study:` are relative to the config file, like `manifest`.
    assert study.resolve(opts.reference) == (path.parent / "ref/paper.csv").resolve()
    assert study.resolve("/abs/x.csv") == Path("/abs/x.csv")


def test_a_wrong_study_key_is_named_with_its_section_and_file(tmp_path):
    path = _write(tmp_path, {**BASE, "study": {"n_bot": 200}})
    with pytest.raises(ConfigError) as err:
        load_study_config(path).options(_Options)
    text = str(err.value)
    assert str(path) in text and "study.n_bot: unknown key (did you mean 'n_boot'?)" in text


def test_a_wrong_study_value_and_a_wrong_run_key_are_errors(tmp_path):
    with pytest.raises(ConfigError, match=r"study.n_boot: .*valid integer"):
        load_study_config({**BASE, "study": {"n_boot": "many"}}).options(_Options)
    with pytest.raises(ConfigError, match="trian: unknown key"):
        load_study_config({**BASE, "trian": {"epochs": 1}})
    with pytest.raises(ConfigError, match="`study` must be a mapping"):
        load_study_config({**BASE, "study": [1, 2]})
    with pytest.raises(FileNotFoundError, match="config file not found"):
        load_study_config(tmp_path / "missing.yaml")


def test_a_mapping_given_in_python_is_not_modified(tmp_path):
    data = {**BASE, "manifest": str(tmp_path / "m.csv"), "study": {"n_boot": 50}}
    before = yaml.safe_dump(data)
    study = load_study_config(data, {"train.epochs": 2})
    assert yaml.safe_dump(data) == before
    assert study.run.train.epochs == 2 and study.options(_Options).n_boot == 50


def test_a_run_config_object_is_accepted(tmp_path):
    run = load_config(_write(tmp_path, BASE))
    study = load_study_config(run, {"study.n_boot": 20})
    assert study.run.model_dump() == run.model_dump() and study.options(_Options).n_boot == 20
