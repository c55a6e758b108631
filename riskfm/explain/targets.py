"""Which scalar of a ``RiskModel`` an explanation is about: a head, one of its columns, logit or probability.

A target is named the way users name outcomes: ``"mace_30d"``, ``"stenosis_lad"``,
``("stenosis", "LAD")``, ``"risk_score"`` (or ``"survival"``) for the Cox head. Attributions are
computed for the head's raw output (the logit, or the log hazard) by default: it is linear in the
fused features, so Integrated Gradients' completeness (attributions sum to f(x) - f(baseline)) holds
on the scale the model was trained on. ``output="probability"`` explains the sigmoid instead.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

__all__ = ["OUTPUTS", "Target", "resolve_target", "select_output"]

#: Output scales an explanation can be computed on.
OUTPUTS: tuple[str, ...] = ("logit", "probability")


@dataclass(frozen=True)
class Target:
    """A resolved target.

    Attributes
    ----------
    name : str
        Canonical target name, e.g. ``"stenosis_lad"`` or ``"mace_30d"`` (the ``predictions.csv`` name).
    head : str
        Name of the head producing it (``model.forward(batch)[head]``).
    index : int or None
        Column of a multi-output head (stenosis: 0 RCA, 1 LM, 2 LAD, 3 LCX); None for 1-output heads.
    """

    name: str
    head: str
    index: int | None


def _available(model: nn.Module) -> list[str]:
    return [t for h in model.heads for t in h.targets]


def resolve_target(model: nn.Module, target: Any = None) -> Target:
    """Turn a user's target into a :class:`Target` of ``model``.

    Parameters
    ----------
    model : RiskModel
    target : str, (head, artery) tuple, or None
        ``"mace_30d"``, ``"stenosis_lad"``, ``("stenosis", "LAD")``, ``"risk_score"`` / ``"survival"``.
        None picks ``mace_30d`` when the model has it, else the model's first target.

    Raises
    ------
    ValueError
        The target is not produced by any head of the model; the message lists the ones that are.
    """
    names = _available(model)
    if target is None:
        target = "mace_30d" if "mace_30d" in names else names[0]
    if isinstance(target, (tuple, list)):
        if len(target) != 2:
            raise ValueError(f"target tuple must be (head, column) such as ('stenosis', 'LAD'); got {target!r}")
        head_name, column = (str(t) for t in target)
        target = f"{head_name}_{column}".lower() if head_name.lower() != column.lower() else head_name
    key = str(target).strip()
    if key.lower() == "survival":
        key = "risk_score"
    for head in model.heads:
        targets = [str(t) for t in head.targets]
        lowered = [t.lower() for t in targets]
        if key.lower() in lowered:
            i = lowered.index(key.lower())
            return Target(name=targets[i], head=head.name, index=i if len(targets) > 1 else None)
        if key == head.name and len(targets) == 1:
            return Target(name=targets[0], head=head.name, index=None)
    raise ValueError(f"target {target!r} is not predicted by this model; available targets: {names}")


def select_output(out: torch.Tensor, target: Target, output: str = "logit") -> torch.Tensor:
    """Return the explained scalar per row, ``[k]``, from a head's raw output (``[k]`` or ``[k, n_targets]``).

    ``output="logit"`` returns the raw value, ``"probability"`` its sigmoid.
    """
    if output not in OUTPUTS:
        raise ValueError(f"output must be one of {OUTPUTS}, got {output!r}")
    if target.index is not None:
        out = out[:, target.index]
    elif out.ndim == 2:
        out = out[:, 0]
    return torch.sigmoid(out) if output == "probability" else out
