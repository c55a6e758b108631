"""The default run configuration: what ``riskfm train`` uses without a CONFIG, and ``riskfm config init`` writes.

It is the demo's configuration (:func:`riskfm.recipes.demo.demo_config`: the standardised ST map of
the ECG's median beats read linearly, a small 3D CNN on the CT, one language-model token per clinical
variable, cosine schedule, EMA, augmentation) with three changes for a cohort that is not the demo's: no external site is held out
(the demo holds out its synthetic ``site_ext``), a rerun resumes an interrupted run (the demo
always starts over), and the prepared cache is the default folder (the demo keeps its own beside
its cohort). :data:`DEFAULT_CONFIG_YAML` is that configuration as commented YAML; the
library defaults of every key it leaves out are in :mod:`riskfm.train.config` and docs/training.md.

Examples
--------
>>> from riskfm.config_default import default_config_dict
>>> cfg = default_config_dict()
>>> cfg["encoders"]["ecg"]["name"], cfg["train"]["epochs"], cfg["split"]["external_sites"]
('median-beat-cnn', 24, [])
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import yaml

__all__ = ["DEFAULT_CONFIG_YAML", "config_yaml", "default_config_dict", "default_run_config", "resolve_run_config",
           "write_default_config"]

#: The default run configuration as commented YAML (what ``riskfm config init`` writes).
DEFAULT_CONFIG_YAML = """\
# riskfm run configuration (written by `riskfm config init`; `riskfm train` uses these values
# when no CONFIG is given). Relative paths are taken from this file's folder. Every key is
# described in docs/training.md; keys left out take the defaults of riskfm/train/config.py.

manifest: manifest.csv        # the cohort: one row per patient (docs/data.md); or --manifest
out: runs/riskfm              # output folder of the run; or --out

modalities: [ecg, ct, clinical]
targets: [stenosis, mace_30d] # stenosis = RCA, LM, LAD, LCX; add `survival` for a Cox head

split:
  external_sites: []          # sites held out as external validation, e.g. [hospital_2]
  test_fraction: 0.2          # internal test share of the development patients
  val_fraction: 0.2           # validation share (early stopping) of the rest
  seed: 0

encoders:
  ecg:                        # R-aligned median beats, 0.67-40 Hz band-pass at 250 Hz
    name: median-beat-cnn
    kwargs:
      feature_dim: 128
      conv: false             # the standardised ST map read linearly; true adds the CNN branch
      st_norm: true
      input_spec: {fs: 250.0, n_samples: 2500, bandpass_hz: [0.67, 40.0], representation: median_beat}
  ct:                         # small 3D CNN on the four CORA HU windows
    name: cnn3d-small
    lr: 0.0002                # a fifth of train.lr: the CT network memorises a small cohort fast
    kwargs: {widths: [8, 16, 32, 64]}
  clinical:                   # one token per clinical variable from MiniLM embeddings of its name and
    name: clinical-lm-tokens  # values; {name: tabular-mlp} reads the table without a language model

fusion:
  proj_dim: 64                # width each modality is projected to before concatenation
  modality_dropout: 0.1       # share of training samples with one modality dropped
  dropout: 0.1

train:
  epochs: 24                  # or --epochs
  batch_size: 32
  lr: 0.001
  weight_decay: 0.01
  scheduler: cosine           # warm-up then cosine decay per step
  ema_decay: 0.98             # evaluate and keep an exponential moving average of the weights
  augment: true               # ECG gain / noise and CT noise / contrast on the training split
  patience: 8                 # epochs without validation AUROC gain before stopping
  seed: 0

evaluate:
  n_boot: 500                 # bootstrap resamples of the AUROC confidence intervals
"""


def default_config_dict() -> dict[str, Any]:
    """Return the default configuration as a plain mapping (manifest ``manifest.csv``, out ``runs/riskfm``).

    Returns
    -------
    dict
        A fresh copy, safe to modify.
    """
    return yaml.safe_load(DEFAULT_CONFIG_YAML)


def write_default_config(path: str | os.PathLike, *, force: bool = False) -> Path:
    """Write :data:`DEFAULT_CONFIG_YAML` to ``path``, to edit.

    Parameters
    ----------
    path : str or PathLike
        The YAML file to write (parent folders are created).
    force : bool, default False
        Overwrite an existing file.

    Returns
    -------
    Path
        The file written.

    Raises
    ------
    FileExistsError
        ``path`` exists and ``force`` is False (nothing is written).
    IsADirectoryError
        ``path`` is a folder.
    """
    path = Path(path)
    if path.is_dir():
        raise IsADirectoryError(f"{path}: is a folder; give a file name such as {path / 'riskfm.yaml'}")
    if path.exists() and not force:
        raise FileExistsError(f"{path}: already exists; edit it, choose another name or pass --force to overwrite")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(DEFAULT_CONFIG_YAML)
    return path


def default_run_config(manifest: str | os.PathLike | None, out: str | os.PathLike | None = None,
                       overrides: dict[str, Any] | None = None):
    """Return the default configuration for one cohort, validated.

    Parameters
    ----------
    manifest : str or PathLike
        The cohort's manifest (resolved against the current folder).
    out : str or PathLike, optional
        Output folder (default ``runs/riskfm`` in the current folder).
    overrides : dict, optional
        Dotted keys to set, e.g. ``{"train.epochs": 3, "split.external_sites": ["b"]}``.

    Returns
    -------
    riskfm.train.config.RunConfig

    Raises
    ------
    ConfigError
        No manifest, or an override that does not validate.
    """
    from riskfm.train.config import ConfigError, apply_overrides, parse_config

    if manifest is None:
        raise ConfigError("no CONFIG given and no --manifest: the default configuration needs the cohort's "
                          "manifest (riskfm train --manifest M.csv), or write one to edit with `riskfm config init`")
    data = apply_overrides(default_config_dict(), overrides)
    data["manifest"] = str(Path(manifest).expanduser().resolve())
    data["out"] = str(Path(out if out is not None else data["out"]).expanduser().resolve())
    return parse_config(data, "<default configuration>")


def resolve_run_config(config: str | os.PathLike | None = None, overrides: dict[str, Any] | None = None):
    """Return the configuration ``riskfm train`` runs: CONFIG with overrides, or the default one.

    Parameters
    ----------
    config : str or PathLike, optional
        A YAML run configuration (:func:`riskfm.train.config.load_config`); None: the default
        (:func:`default_run_config`, which needs ``overrides["manifest"]``).
    overrides : dict, optional
        Dotted keys to set (``manifest``, ``out``, ``train.epochs``, ...); None values are skipped.

    Returns
    -------
    riskfm.train.config.RunConfig

    Raises
    ------
    FileNotFoundError
        CONFIG does not exist.
    ConfigError
        Invalid YAML, an unknown key or a wrong value (the message names the file and key).
    """
    from riskfm.train.config import load_config

    if config is not None:
        return load_config(config, overrides)
    rest = {k: v for k, v in (overrides or {}).items() if k not in ("manifest", "out")}
    return default_run_config((overrides or {}).get("manifest"), (overrides or {}).get("out"), rest)


def config_yaml(cfg: Any) -> str:
    """Return a validated configuration as YAML, every key resolved (what ``riskfm config show`` prints).

    Parameters
    ----------
    cfg : riskfm.train.config.RunConfig

    Returns
    -------
    str
    """
    return yaml.safe_dump(cfg.model_dump(mode="json"), sort_keys=False)
