"""Any torch ECG model as a riskfm encoder: a module (or an import path) plus an :class:`ECGInputSpec`.

Examples
--------
>>> from torch import nn
>>> from riskfm.encoders import create_encoder
>>> from riskfm.ecg import ECGInputSpec
>>> net = nn.Sequential(nn.Conv1d(12, 32, 7), nn.ReLU(), nn.AdaptiveAvgPool1d(1), nn.Flatten())
>>> enc = create_encoder("generic-ecg", module=net, input_spec=ECGInputSpec(fs=250, n_samples=2500))
>>> enc.feature_dim
32

The same from a YAML config, with weights from a local checkpoint of that module::

    encoders:
      ecg:
        name: generic-ecg
        checkpoint: /models/my_ecg.pt        # keys prefixed "module." (the wrapped net)
        kwargs:
          module: mypackage.models:build_net # a callable returning an nn.Module
          module_kwargs: {width: 64}
          input_spec: {fs: 250, n_samples: 2500, normalisation: lead_zscore}
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from typing import Any

import torch
from torch import nn

from riskfm.ecg.spec import ECGInputSpec

__all__ = ["GenericECGEncoder"]


def _import_factory(path: str) -> Any:
    if ":" not in path:
        raise ValueError(f"generic-ecg: module must be an nn.Module or 'package.module:callable', got {path!r}")
    mod_name, attr = path.split(":", 1)
    try:
        obj = importlib.import_module(mod_name)
    except ImportError as exc:
        raise ImportError(f"generic-ecg: cannot import {mod_name!r} (from {path!r}): {exc}") from exc
    for part in attr.split("."):
        if not hasattr(obj, part):
            raise AttributeError(f"generic-ecg: {mod_name!r} has no attribute {attr!r}")
        obj = getattr(obj, part)
    return obj


class GenericECGEncoder(nn.Module):
    """Wrap a torch module mapping ``[B, leads, T]`` to features.

    Parameters
    ----------
    module : nn.Module or str
        The network, or ``"package.module:callable"`` returning it (called with ``module_kwargs``).
    input_spec : ECGInputSpec or Mapping
        The preprocessing the network was trained with (required: there is no safe default).
    feature_dim : int, optional
        Output width; found with one forward pass on zeros when omitted.
    module_kwargs : Mapping, optional
        Keyword arguments for the callable.
    output : str, optional
        Attribute / key of the network's output holding features (e.g. ``"last_hidden_state"``);
        by default a tensor output is used as is, a tuple's first element otherwise.
    pool : {"mean_last", "mean_middle"}
        How a 3-D output is reduced to ``[B, D]``: mean over the last axis (``[B, D, T]``, conv nets)
        or the middle axis (``[B, T, D]``, transformers).

    Notes
    -----
    The wrapped network lives under ``.module``, so a checkpoint of the bare network needs keys
    prefixed ``module.``; riskfm strips ``module.`` prefixes, so save the *wrapper's* state dict
    (``enc.state_dict()``) or load the bare network's weights before wrapping.
    """

    modality = "ecg"

    def __init__(self, module: nn.Module | str, input_spec: ECGInputSpec | Mapping | None = None,
                 feature_dim: int | None = None, module_kwargs: Mapping[str, Any] | None = None,
                 output: str | None = None, pool: str = "mean_last") -> None:
        super().__init__()
        if input_spec is None:
            raise ValueError("generic-ecg: input_spec is required (fs, n_samples, leads, filters, normalisation)")
        if isinstance(input_spec, Mapping):
            input_spec = ECGInputSpec(**{k: tuple(v) if isinstance(v, list) else v for k, v in input_spec.items()})
        if isinstance(module, str):
            module = _import_factory(module)(**dict(module_kwargs or {}))
        if not isinstance(module, nn.Module):
            raise TypeError(f"generic-ecg: module must be an nn.Module, got {type(module).__name__}")
        if pool not in ("mean_last", "mean_middle"):
            raise ValueError(f"generic-ecg: pool must be 'mean_last' or 'mean_middle', got {pool!r}")
        self.module = module
        self.input_spec = input_spec
        self.output, self.pool = output, pool
        if feature_dim is None:
            was = module.training
            module.eval()
            with torch.no_grad():
                probe = torch.zeros(1, len(input_spec.leads), int(input_spec.n_samples))
                feature_dim = int(self.forward(probe).shape[-1])
            module.train(was)
        self.feature_dim = int(feature_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Encode ECGs with the wrapped module.

        Parameters
        ----------
        x : Tensor [B, leads, T]
            ECG preprocessed per ``input_spec`` (mV unless the spec normalises).

        Returns
        -------
        Tensor [B, feature_dim]
            The module's output (``output`` selecting from a mapping / object, else the first item
            of a tuple); a 3-D output is averaged over its last axis (``pool="mean_last"``) or axis 1
            (``"mean_middle"``).

        Raises
        ------
        TypeError
            If the selected output is not a tensor.
        ValueError
            If the features are not 2-D after pooling.
        """
        out = self.module(x)
        if self.output is not None:
            out = out[self.output] if isinstance(out, Mapping) else getattr(out, self.output)
        elif isinstance(out, (tuple, list)):
            out = out[0]
        if not isinstance(out, torch.Tensor):
            raise TypeError(f"generic-ecg: the module returned {type(out).__name__}; pass output=<key> naming "
                            "the features")
        if out.ndim == 3:
            out = out.mean(-1) if self.pool == "mean_last" else out.mean(1)
        if out.ndim != 2:
            raise ValueError(f"generic-ecg: features must be [B, D] (or 3-D to pool); got {tuple(out.shape)}")
        return out
