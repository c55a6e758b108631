"""How much each modality (ECG, CT, clinical data) contributes to a patient's prediction: Shapley values.

The players are the modalities; a coalition's value is the model's output when only those modalities
are present, the others treated as missing exactly as the model treats a missing modality (the
fusion's learned "missing" embedding replaces their features). The Shapley value of a modality is its
marginal contribution averaged over orders of arrival. By construction the values of a patient add
up to ``f(all modalities) - f(none)`` (efficiency), whatever the number of sampled orders.

``method="shapley_sampling"`` (default) uses Captum's ``ShapleyValueSampling`` (``n_samples`` random
orders); ``method="shapley"`` Captum's exact ``ShapleyValues`` (all M! orders: 6 for three
modalities). A modality a patient does not have contributes exactly 0.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from captum.attr import ShapleyValues, ShapleyValueSampling

from riskfm.explain.forward import PresenceForward
from riskfm.explain.targets import Target

__all__ = ["MODALITY_METHODS", "attribute_modalities", "exact_shapley"]

MODALITY_METHODS: tuple[str, ...] = ("shapley_sampling", "shapley")


def attribute_modalities(model: Any, batch: dict[str, Any], target: Target, *, output: str = "logit",
                         method: str = "shapley_sampling", n_samples: int = 25, seed: int = 0
                         ) -> tuple[np.ndarray, dict[str, Any]]:
    """Compute Shapley values ``[B, M]`` of the model's modalities for every patient of ``batch``.

    Returns
    -------
    values : float ``[B, M]`` in the output's units (logit by default), columns in ``model.encoders`` order.
    meta : ``modalities``, ``f_all`` ``[B]`` (every available modality), ``f_none`` ``[B]`` (all missing),
        ``available`` ``[B, M]``.
    """
    if method not in MODALITY_METHODS:
        raise ValueError(f"unknown modality method {method!r}; choose from {MODALITY_METHODS}")
    f = PresenceForward(model, batch, target, output)
    inputs = f.available()
    n, m = inputs.shape
    mask = torch.arange(m).unsqueeze(0).repeat(n, 1)
    with torch.random.fork_rng(devices=[]):
        # ShapleyValueSampling draws its orders from torch's global RNG: seed it for reproducible values.
        torch.manual_seed(seed)
        if method == "shapley":
            attr = ShapleyValues(f).attribute(inputs, baselines=0.0, feature_mask=mask)
        else:
            attr = ShapleyValueSampling(f).attribute(inputs, baselines=0.0, feature_mask=mask,
                                                     n_samples=int(n_samples))
    meta = {
        "modalities": list(f.modalities),
        "f_all": f(inputs).cpu().numpy(),
        "f_none": f(torch.zeros_like(inputs)).cpu().numpy(),
        "available": inputs.cpu().numpy().astype(bool),
    }
    return attr.detach().cpu().numpy(), meta


def exact_shapley(value: Any, n_players: int) -> np.ndarray:
    """Compute Shapley values by enumerating coalitions: ``phi_j = sum_S |S|!(n-|S|-1)!/n! (v(S+j) - v(S))``.

    ``value(mask)`` maps a 0/1 float vector ``[n_players]`` to a number; the result is ``[n_players]``.
    A reference for tests and for users who want to check a sampled estimate on a few patients.
    """
    from itertools import combinations
    from math import factorial

    phi = np.zeros(n_players)
    for j in range(n_players):
        others = [k for k in range(n_players) if k != j]
        for size in range(n_players):
            weight = factorial(size) * factorial(n_players - size - 1) / factorial(n_players)
            for subset in combinations(others, size):
                mask = np.zeros(n_players)
                mask[list(subset)] = 1.0
                without = float(value(mask))
                mask[j] = 1.0
                phi[j] += weight * (float(value(mask)) - without)
    return phi
