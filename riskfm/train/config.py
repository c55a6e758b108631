"""Run configuration (YAML) validated with pydantic; errors name the wrong key or value.

Minimal config::

    manifest: cohort/manifest.csv
    modalities: [ecg, ct, clinical]
    targets: [stenosis, mace_30d]
    split: {external_sites: [site_ext], test_fraction: 0.2, seed: 0}
    train: {epochs: 20}
    out: runs/my_run

Relative ``manifest`` and ``out`` paths are resolved against the config file's folder.
"""

from __future__ import annotations

import dataclasses
import difflib
import os
import re
import typing
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    SerializerFunctionWrapHandler,
    ValidationError,
    create_model,
    field_validator,
    model_serializer,
    model_validator,
)

from riskfm.arteries import STENOSIS_COLUMNS
from riskfm.ct.plausibility import CTPlausibility
from riskfm.ecg.plausibility import ECGPlausibility


class ConfigError(ValueError):
    """An invalid run configuration; the message names the file, the key and the problem."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class SplitConfig(_Strict):
    """The ``split`` section: external sites, internal test / validation shares and the split seed."""

    external_sites: list[str] = Field(default_factory=list, description="sites held out as external validation")
    test_fraction: float = Field(0.2, gt=0, lt=1, description="internal test share of development patients")
    val_fraction: float = Field(0.15, gt=0, lt=1, description="validation share (early stopping) of the rest")
    train_fraction: float = Field(1.0, gt=0, le=1, description="subsample the training part (low-data runs)")
    seed: int = 0


class EncoderConfig(_Strict):
    """One ``encoders.<modality>`` entry: which registered encoder, its weights and how it trains.

    Attributes
    ----------
    name : str
        Registered encoder name (:func:`riskfm.encoders.list_encoders`), e.g. ``"resnet1d"``.
    checkpoint : str or None
        Weights file to load into the encoder.
    freeze : bool
        Keep the encoder's weights fixed (a linear probe).
    weights_only : bool
        Load ``checkpoint`` with ``torch.load(weights_only=True)`` (tensors and plain containers only).
    kwargs : dict
        Extra constructor arguments of the encoder.
    """

    name: str
    checkpoint: str | None = None
    freeze: bool = False
    weights_only: bool = True
    lr: float | None = Field(None, gt=0, description="learning rate of this encoder (default: train.lr)")
    weight_decay: float | None = Field(None, ge=0, description="weight decay of this encoder (default: train)")
    finetune: Literal["full", "linear_probe", "partial"] | None = Field(
        None, description="linear_probe: encoder frozen; partial: only its last unfreeze_last_k layer groups "
                          "train; full: everything trains (default: full, or linear_probe when freeze is true)")
    unfreeze_last_k: int = Field(1, ge=1, description="layer groups (ECGFounder: stages) trained in partial mode")
    layerwise_lr_decay: float | None = Field(
        None, gt=0, le=1, description="layer group i of n gets lr * decay**(n-1-i) (encoders with layer_groups)")
    kwargs: dict[str, Any] = Field(default_factory=dict)


DEFAULT_ENCODERS: dict[str, dict[str, Any]] = {
    "ecg": {"name": "resnet1d"},
    "ct": {"name": "cnn3d-small"},
    "clinical": {"name": "text-lm", "freeze": True},
}


class FusionConfig(_Strict):
    """The ``fusion`` section: :class:`~riskfm.models.fusion.ConcatFusion` settings."""

    proj_dim: int = Field(128, gt=0)
    modality_dropout: float = Field(0.1, ge=0, lt=1)
    dropout: float = Field(0.1, ge=0, lt=1)
    norm: Literal["batch", "layer", "none"] = Field(
        "batch", description="per-modality feature normalisation before projection (see ConcatFusion)")
    passthrough: list[Literal["ecg", "ct", "clinical"]] = Field(
        default_factory=list, description="modalities whose features are concatenated without projection "
                                          "(CORA's MACE model: the pooled CT features)")

    @model_serializer(mode="wrap")
    def _omit_empty_passthrough(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        # Left out when empty, so that configs and fingerprints of runs written before the key
        # existed stay identical (a run folder refuses a resume whose fingerprint differs).
        data = handler(self)
        if not data.get("passthrough"):
            data.pop("passthrough", None)
        return data


class TrainConfig(_Strict):
    """The ``train`` section: optimisation, schedule, early stopping and the Fabric launch settings."""

    epochs: int = Field(20, ge=1)
    batch_size: int = Field(32, ge=1)
    lr: float = Field(1e-3, gt=0)
    weight_decay: float = Field(1e-4, ge=0)
    optimizer: Literal["adamw", "adam"] = Field(
        "adamw", description="adamw: decoupled weight decay; adam: L2 weight decay (ECGFounder's recipe)")
    precision: Literal["32-true", "bf16-mixed", "16-mixed", "bf16-true"] = "32-true"
    accumulate_grad_batches: int = Field(1, ge=1)
    grad_clip: float | None = Field(1.0, gt=0)
    scheduler: Literal["none", "cosine", "plateau"] = Field(
        "none", description="cosine: warm-up then cosine decay per step; plateau: ReduceLROnPlateau on val AUROC")
    warmup_epochs: float = Field(1.0, ge=0, description="linear warm-up length for the cosine schedule")
    plateau_factor: float = Field(0.1, gt=0, lt=1)
    plateau_patience: int = Field(10, ge=0)
    patience: int = Field(5, ge=1, description="epochs without validation AUROC gain before stopping")
    min_epochs: int = Field(1, ge=1)
    seed: int = 0
    num_workers: int | Literal["auto"] = Field(
        "auto", description="DataLoader worker processes per training process; auto: with a GPU, CPUs per "
                            "process - 1 (at most 4), on the CPU 0 (the model's threads use every core)")
    accelerator: str = "auto"
    devices: int | str = Field(1, description="processes per node: a count, -1 or 'auto' (all), or GPU ids '0,1'")
    strategy: str = "auto"
    num_nodes: int = Field(1, ge=1)
    loss_weights: dict[str, float] = Field(default_factory=dict)
    ema_decay: float | None = Field(None, gt=0, lt=1, description="evaluate/keep an EMA of the weights (e.g. 0.98)")
    augment: bool = Field(False, description="ECG gain/noise and CT noise/contrast augmentation of the training split")
    balance_positives: bool = Field(True, description="weight positives by sqrt(neg/pos) in BCE")
    resume: bool = Field(True, description="continue from out/checkpoints/last.ckpt when present")
    progress: bool = True


    @field_validator("num_workers")
    @classmethod
    def _num_workers(cls, v: int | str) -> int | str:
        if isinstance(v, int) and v < 0:
            raise ValueError("must be >= 0 or 'auto'")
        return v

    @field_validator("devices")
    @classmethod
    def _devices(cls, v: int | str) -> int | str:
        if isinstance(v, int):
            if v == 0 or v < -1:
                raise ValueError("devices must be a positive count, -1 (all) or 'auto'")
            return v
        text = v.strip()
        if text == "auto" or re.fullmatch(r"-1|\d+|\d+(\s*,\s*\d+)+,?|\d+,", text):
            if text.isdigit() and int(text) == 0:
                raise ValueError("devices must be a positive count, -1 (all) or 'auto'")
            return int(text) if text.lstrip("-").isdigit() else text
        raise ValueError("devices must be a count (2), -1 or 'auto' (all), or a list of GPU ids ('0,1')")


class EvaluateConfig(_Strict):
    """The ``evaluate`` section: confidence intervals, figures and the minimum events for a metric."""

    ci: Literal["bootstrap", "delong"] = "bootstrap"
    n_boot: int = Field(500, ge=10)
    figures: bool = True
    min_events: int = Field(10, ge=1, description="fewer events: AUROC/AUPRC/C-index not estimable (null)")
    min_nonevents: int = Field(10, ge=1, description="fewer non-events: not estimable either")


def _checks_model(name: str, limits: type) -> type[BaseModel]:
    """Build a strict config section with the fields and defaults of a plausibility-limits dataclass."""
    hints = typing.get_type_hints(limits)
    fields = {f.name: (hints[f.name], f.default) for f in dataclasses.fields(limits)}
    return create_model(name, __base__=_Strict, __doc__=limits.__doc__, **fields)


ECGChecks = _checks_model("ECGChecks", ECGPlausibility)
CTChecks = _checks_model("CTChecks", CTPlausibility)


class ChecksConfig(_Strict):
    """Plausibility checks of each file before training (see docs/data-quality.md); on by default."""

    ecg: ECGChecks = Field(default_factory=ECGChecks)
    ct: CTChecks = Field(default_factory=CTChecks)


class DataConfig(_Strict):
    """The ``data`` section: missing files, clinical columns, plausibility checks and ECG sources.

    ``on_missing_file``: ``"exclude"`` the patient, treat the modality as ``"missing"``, or
    ``"raise"``; ``n_workers``: threads reading files (default ``min(8, CPUs)``); ``cache`` /
    ``cache_dir``: the prepared cache (:mod:`riskfm.data.cache`; docs/training.md "Large cohorts").
    """

    on_missing_file: Literal["exclude", "missing", "raise"] = "exclude"
    clinical_columns: list[str | dict[str, Literal["numeric", "categorical"] | None]] | \
        dict[str, Literal["numeric", "categorical"] | None] | None = Field(
        None, description="the clinical variables, optionally typed: [age, {smoker: categorical}] or "
                          "{age: numeric, smoker: categorical}; default every non-reserved column, type inferred")
    na_values: list[str] = Field(default_factory=list, description="extra cell texts meaning 'not recorded'")
    checks: ChecksConfig = Field(default_factory=ChecksConfig)
    n_workers: int | None = None
    ecg_store: str | None = Field(None, description="ECG store folder (riskfm ecg store build) to read "
                                                    "ECGs from instead of parsing files")
    ecg_quality_filter: bool = Field(False, description="exclude ECGs with flat/saturated/NaN/noisy leads")
    cache: bool = Field(True, description="prepare each ECG/CT once into the prepared cache and stream from it "
                                          "(false: prepare every file into memory at each run)")
    cache_dir: str | None = Field(None, description="prepared cache root (default $RISKFM_CACHE_DIR, else "
                                                    "~/.cache/riskfm/prepared); shared by runs and machines")


class RunConfig(_Strict):
    """A whole run: manifest, modalities, targets and one section per stage (see the module docstring)."""

    manifest: str
    out: str = "runs/riskfm"
    modalities: list[Literal["ecg", "ct", "clinical"]] = Field(default_factory=lambda: ["ecg", "ct", "clinical"])
    targets: list[str] = Field(default_factory=lambda: ["stenosis", "mace_30d"])
    split: SplitConfig = Field(default_factory=SplitConfig)
    encoders: dict[str, EncoderConfig] = Field(default_factory=dict)
    fusion: FusionConfig = Field(default_factory=FusionConfig)
    train: TrainConfig = Field(default_factory=TrainConfig)
    evaluate: EvaluateConfig = Field(default_factory=EvaluateConfig)
    data: DataConfig = Field(default_factory=DataConfig)
    _source: str = PrivateAttr("<config>")  # the file it came from, for messages

    @property
    def source(self) -> str:
        """The config file (or ``<config>`` for a mapping given in Python), for error messages."""
        return self._source

    @field_validator("modalities")
    @classmethod
    def _unique_modalities(cls, v: list[str]) -> list[str]:
        if not v:
            raise ValueError("at least one modality is needed")
        if len(set(v)) != len(v):
            raise ValueError(f"modalities repeat: {v}")
        return v

    @field_validator("targets")
    @classmethod
    def _known_targets(cls, v: list[str]) -> list[str]:
        known = {"stenosis", "mace_30d", "survival", *STENOSIS_COLUMNS}
        bad = [t for t in v if t not in known]
        if bad:
            raise ValueError(f"unknown target(s) {bad}; choose from {sorted(known)}")
        if not v:
            raise ValueError("at least one target is needed")
        return v

    @model_validator(mode="after")
    def _fill_encoders(self) -> RunConfig:
        extra = set(self.encoders) - set(self.modalities)
        if extra:
            raise ValueError(f"encoders given for modalities not in `modalities`: {sorted(extra)}")
        for m in self.modalities:
            if m not in self.encoders:
                self.encoders[m] = EncoderConfig(**DEFAULT_ENCODERS[m])
        stray = [m for m in self.fusion.passthrough if m not in self.modalities]
        if stray:
            raise ValueError(f"fusion.passthrough lists modalities not in `modalities`: {stray}")
        return self


def _format_errors(exc: ValidationError, source: str, model: type[BaseModel]) -> str:
    lines = [f"{source}: invalid configuration"]
    for err in exc.errors():
        loc = ".".join(str(p) for p in err["loc"]) or "(top level)"
        if err["type"] == "extra_forbidden":
            parent: Any = model
            for p in err["loc"][:-1]:
                field = getattr(parent, "model_fields", {}).get(str(p))
                parent = getattr(field, "annotation", None) if field else None
            options = list(getattr(parent, "model_fields", {})) if parent is not None else []
            hint = difflib.get_close_matches(str(err["loc"][-1]), options, n=1)
            msg = "unknown key" + (f" (did you mean {hint[0]!r}?)" if hint else "")
            if options:
                msg += f"; allowed keys: {', '.join(options)}"
        elif err["type"] == "missing":
            msg = "required key is missing"
        else:
            msg = f"{err['msg']} (got {err.get('input')!r})"
        lines.append(f"  {loc}: {msg}")
    return "\n".join(lines)


def parse_config(data: dict[str, Any], source: str = "<config>") -> RunConfig:
    """Validate a config mapping; raise ``ConfigError`` listing every wrong key or value."""
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: a config must be a mapping of keys to values, got {type(data).__name__}")
    try:
        cfg = RunConfig.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(_format_errors(exc, source, RunConfig)) from None
    cfg._source = source
    return cfg


def _yaml_error(path: Path, exc: yaml.YAMLError) -> ConfigError:
    """Return a :class:`ConfigError` for a YAML syntax error: file, line, column, what was expected."""
    mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
    where = f"{path}:{mark.line + 1}:{mark.column + 1}" if mark is not None else str(path)
    problem = getattr(exc, "problem", None) or ""
    context, context_mark = getattr(exc, "context", None), getattr(exc, "context_mark", None)
    if context and context_mark is not None:
        problem = f"{context} (opened at line {context_mark.line + 1}): {problem}"
    return ConfigError(f"{where}: not valid YAML: {problem or exc}; check the indentation, colons and brackets there")


def read_config_file(path: str | os.PathLike) -> dict[str, Any]:
    """Read a YAML config file into a mapping, with relative paths resolved against its folder.

    ``manifest``, ``out`` and ``data.ecg_store`` given as relative paths are made absolute from the
    file's folder, so a config means the same files whatever the current directory. Nothing is
    validated beyond "a YAML mapping" (see :func:`parse_config`).

    Raises
    ------
    FileNotFoundError
        The file does not exist (or is a folder).
    ConfigError
        Not valid YAML (file, line and column in the message) or not a mapping.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: config file not found" + (" (it is a folder)" if path.is_dir() else ""))
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise _yaml_error(path, exc) from exc
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: a config must be a mapping of keys to values")
    for key in ("manifest", "out"):
        if isinstance(data.get(key), str) and not Path(data[key]).expanduser().is_absolute():
            data[key] = str((path.parent / data[key]).resolve())
    section = data.get("data") if isinstance(data.get("data"), dict) else {}
    for key in ("ecg_store", "cache_dir"):
        value = section.get(key)
        if isinstance(value, str) and not Path(value).expanduser().is_absolute():
            section[key] = str((path.parent / value).resolve())
    return data


def load_config(path: str | os.PathLike, overrides: dict[str, Any] | None = None) -> RunConfig:
    """Read a YAML config, apply dotted-key ``overrides`` (e.g. ``{"train.epochs": 3}``), validate.

    Relative ``manifest``/``out`` paths in the file are resolved against the file's folder; paths
    given as overrides are taken relative to the current directory.
    """
    return parse_config(apply_overrides(read_config_file(path), overrides), str(path))


def apply_overrides(data: dict[str, Any], overrides: dict[str, Any] | None) -> dict[str, Any]:
    """Set dotted-key ``overrides`` (``{"train.epochs": 3}``) in a config mapping, in place, and return it.

    None values are skipped (an option not given); missing parent mappings are created.
    """
    for dotted, value in (overrides or {}).items():
        if value is None:
            continue
        node = data
        *parents, leaf = dotted.split(".")
        for key in parents:
            node = node.setdefault(key, {})
        node[leaf] = value
    return data


def dump_config(cfg: RunConfig, path: str | os.PathLike) -> None:
    """Write the resolved config next to a run's outputs (so a run can be reproduced)."""
    Path(path).write_text(yaml.safe_dump(cfg.model_dump(mode="json"), sort_keys=False))
