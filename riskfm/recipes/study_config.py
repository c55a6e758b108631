"""A study's configuration: a run configuration (``riskfm train`` format) plus an optional ``study:`` section.

A user's training config runs as a study unchanged; the ``study:`` section holds only the
study's own options (analysis settings, published reference values, arms) and is validated by the
study against its own options model, with errors that name ``study.<key>``.

The ``study:`` section is taken out before the run configuration is validated, so it is not part of
the training run's identity: changing a report option re-uses a finished training run instead of
refusing the run folder or retraining.
"""

from __future__ import annotations

import copy
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, ValidationError

from riskfm.train.config import (
    ConfigError,
    RunConfig,
    _format_errors,
    apply_overrides,
    parse_config,
    read_config_file,
)

__all__ = ["StudyConfig", "StudyOptions", "load_study_config"]

T = TypeVar("T", bound="StudyOptions")


class StudyOptions(BaseModel):
    """Base of a study's ``study:`` options: unknown keys are errors, like the rest of the config."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)


@dataclass(frozen=True)
class StudyConfig:
    """A validated run configuration and the raw ``study:`` mapping of a study config.

    Attributes
    ----------
    run : RunConfig
        The training run's configuration (``manifest``, ``out``, ``encoders``, ``train`` ...).
    study : dict
        The ``study:`` section as written (empty when absent); see :meth:`options`.
    source : str
        The config file, or ``<config>`` for a mapping given in Python (for messages).
    base_dir : Path
        Folder that relative paths in ``study:`` are resolved against (the config file's folder,
        else the current directory).
    """

    run: RunConfig
    study: dict[str, Any] = field(default_factory=dict)
    source: str = "<config>"
    base_dir: Path = field(default_factory=Path.cwd)

    def options(self, model: type[T]) -> T:
        """Validate the ``study:`` section against a study's options model.

        Raises
        ------
        ConfigError
            Naming the config file and each wrong ``study.<key>`` (unknown keys get a suggestion).
        """
        try:
            return model.model_validate(self.study)
        except ValidationError as exc:
            text = _format_errors(exc, self.source, model)
            # The study's keys live under `study:` in the file: say so in every location.
            lines = text.splitlines()
            lines[1:] = [f"  study.{line.strip()}" for line in lines[1:]]
            raise ConfigError("\n".join(lines)) from None

    def resolve(self, path: str | os.PathLike | None) -> Path | None:
        """Resolve a path given in ``study:`` against :attr:`base_dir` (absolute paths unchanged)."""
        if path is None:
            return None
        p = Path(path).expanduser()
        return p if p.is_absolute() else (self.base_dir / p).resolve()


def load_study_config(config: str | os.PathLike | dict[str, Any] | RunConfig,
                      overrides: dict[str, Any] | None = None) -> StudyConfig:
    """Read a study configuration: a YAML file, a mapping, or a :class:`RunConfig` (no ``study:``).

    Parameters
    ----------
    config : path, dict or RunConfig
        A ``riskfm train`` configuration with an optional ``study:`` section. Relative ``manifest``
        and ``out`` in a file are resolved against the file's folder, as ``riskfm train`` does.
    overrides : dict, optional
        Dotted keys set before validation (``{"train.epochs": 3, "study.n_boot": 200}``); None
        values are skipped.

    Returns
    -------
    StudyConfig

    Raises
    ------
    FileNotFoundError
        The config file does not exist.
    ConfigError
        Not valid YAML, not a mapping, or a wrong key / value in the run configuration (the
        ``study:`` section is checked later by the study, see :meth:`StudyConfig.options`).
    """
    if isinstance(config, RunConfig):
        # A validated run configuration has absolute paths already; it has no study section.
        data, source, base = config.model_dump(mode="json"), config.source, Path.cwd()
    elif isinstance(config, dict):
        data, source, base = copy.deepcopy(config), "<config>", Path.cwd()
    else:
        data, source, base = read_config_file(config), str(config), Path(config).parent.resolve()
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: a config must be a mapping of keys to values, got {type(data).__name__}")
    data = apply_overrides(data, overrides)
    study = data.pop("study", None)
    if study is None:
        study = {}
    if not isinstance(study, dict):
        raise ConfigError(f"{source}: `study` must be a mapping of the study's options, got {type(study).__name__}")
    return StudyConfig(parse_config(data, source), study, source, base)
