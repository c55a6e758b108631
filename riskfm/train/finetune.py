"""Fine-tuning modes for pretrained encoders: linear probe, partial unfreezing, layer-wise learning rates.

An encoder declares its layer groups with ``layer_groups()`` (a list of module lists ordered from
input to output: ECGFounder's ``[stem, stage 0, ..., stage 6]``, ``resnet1d``'s stem, stages and
projection, ``cnn3d``'s conv blocks and projection, CORA's encoder stages) and then supports all
three modes; any encoder supports ``linear_probe`` and ``full``.

* ``linear_probe``: every encoder weight frozen, only riskfm's fusion and heads train (what
  ECGFounder's paper calls linear probing);
* ``partial``: only the last ``unfreeze_last_k`` layer groups train;
* ``full``: everything trains; with ``layerwise_lr_decay = d`` group ``i`` of ``n`` gets
  ``lr * d ** (n - 1 - i)``, so early, generic layers move less than late ones.

:func:`with_finetune_recipes` returns a copy of a run config with each encoder's published
fine-tuning recipe (its registry entry's ``finetune_recipe``; ECGFounder: Adam, lr 1e-4, weight
decay 1e-5, ReduceLROnPlateau on validation AUROC) wherever the config does not say otherwise.
The config it is given is never changed.
"""

from __future__ import annotations

from typing import Any

from torch import nn

__all__ = ["FINETUNE_MODES", "apply_partial_unfreeze", "layerwise_param_groups", "with_finetune_recipes"]

FINETUNE_MODES: tuple[str, ...] = ("full", "linear_probe", "partial")


def _groups(encoder: nn.Module) -> list[list[nn.Module]]:
    if not hasattr(encoder, "layer_groups"):
        raise TypeError(f"{type(encoder).__name__} has no layer_groups(); partial unfreezing and layer-wise "
                        "learning rates need one (a list of module lists from input to output)")
    return [list(g) for g in encoder.layer_groups()]


def apply_partial_unfreeze(encoder: nn.Module, k: int) -> list[str]:
    """Freeze the encoder except its last ``k`` layer groups; returns the names of trainable parameters.

    Raises
    ------
    ValueError
        If ``k`` is not between 1 and the number of groups.
    """
    groups = _groups(encoder)
    if not 1 <= k <= len(groups):
        raise ValueError(f"unfreeze_last_k must be between 1 and {len(groups)} for {type(encoder).__name__}; got {k}")
    for p in encoder.parameters():
        p.requires_grad_(False)
    for group in groups[-k:]:
        for module in group:
            for p in module.parameters():
                p.requires_grad_(True)
    return [n for n, p in encoder.named_parameters() if p.requires_grad]


def layerwise_param_groups(encoder: nn.Module, lr: float, decay: float, *, weight_decay: float | None = None,
                           name: str = "encoder") -> list[dict]:
    """Return optimizer parameter groups with ``lr * decay ** (n - 1 - i)`` for layer group ``i`` of ``n``.

    Only parameters with ``requires_grad`` are included; parameters outside every layer group
    (e.g. a kept pretrained head) get ``lr``. ``weight_decay``, when given, is set on every group.
    """
    if not 0 < decay <= 1:
        raise ValueError(f"layerwise_lr_decay must be in (0, 1]; got {decay}")
    groups = _groups(encoder)
    n = len(groups)
    seen: set[int] = set()
    out = []
    for i, group in enumerate(groups):
        params = [p for m in group for p in m.parameters() if p.requires_grad and id(p) not in seen]
        seen.update(id(p) for m in group for p in m.parameters())
        if params:
            out.append({"params": params, "lr": lr * decay ** (n - 1 - i), "name": f"{name}.layer{i}"})
    rest = [p for p in encoder.parameters() if p.requires_grad and id(p) not in seen]
    if rest:
        out.append({"params": rest, "lr": lr, "name": f"{name}.rest"})
    if weight_decay is not None:
        for g in out:
            g["weight_decay"] = weight_decay
    return out


def with_finetune_recipes(cfg: Any) -> tuple[Any, list[str]]:
    """Return a copy of ``cfg`` (a ``RunConfig``) with each encoder's recipe where the config leaves it open.

    Encoder ``lr`` / ``weight_decay`` are filled when None; ``train.optimizer`` and
    ``train.scheduler`` when the config did not set them. ``cfg`` itself is not changed.

    Returns
    -------
    (RunConfig, list of str)
        The filled copy and one line per filled value (logged by ``riskfm train``).
    """
    from riskfm.encoders import encoder_info

    notes: list[str] = []
    encoders = dict(cfg.encoders)
    train_updates: dict[str, Any] = {}
    for modality, ec in cfg.encoders.items():
        try:
            info = encoder_info(ec.name)
        except KeyError:
            continue
        name, recipe = info.name, info.finetune_recipe
        if recipe is None:
            continue
        updates = {key: recipe[key] for key in ("lr", "weight_decay") if key in recipe and getattr(ec, key) is None}
        if updates:
            encoders[modality] = ec.model_copy(update=updates)
            notes += [f"encoders.{modality}.{key} = {value} ({name} recipe)" for key, value in updates.items()]
        for key in ("optimizer", "scheduler"):
            if key in recipe and key not in cfg.train.model_fields_set and key not in train_updates:
                train_updates[key] = recipe[key]
                notes.append(f"train.{key} = {recipe[key]} ({name} recipe)")
    if not notes:
        return cfg, notes
    train = cfg.train.model_copy(update=train_updates)
    return cfg.model_copy(update={"encoders": encoders, "train": train}), notes
