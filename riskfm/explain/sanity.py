"""Sanity checks that an attribution map reflects the model, not the input alone.

* :func:`cascading_randomisation` (Adebayo et al., 2018, "Sanity checks for saliency maps"):
  re-initialise the model's layers one after another from the output down (heads, fusion, then the
  explained encoder's blocks, top to bottom) and recompute the map after each step. A method that
  explains the model gives maps that decorrelate from the original as more layers are randomised;
  one that behaves like an edge detector of the input does not. Similarity is Spearman's rank
  correlation over all input elements, of the magnitudes and of the signed values.
* :func:`deletion_insertion` (Petsiuk et al., 2018, RISE): remove the most attributed ECG segments
  first (set to the baseline) and follow the predicted probability (deletion: should fall fast);
  or start from the baseline and insert them first (insertion: should rise fast). The same curves
  for a random order are the reference. Areas under the curves summarise them.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import torch
from scipy import stats
from torch import nn

from riskfm.explain.forward import ModalityForward, PatientContext, select_patient
from riskfm.explain.targets import resolve_target

__all__ = ["DeletionInsertionResult", "RandomisationResult", "cascading_randomisation", "deletion_insertion",
           "randomisation_layers"]


# --------------------------------------------------------------------------- cascading randomisation
def _grouped_modules(root: nn.Module, prefix: str, min_groups: int = 4,
                     max_depth: int = 4) -> list[tuple[str, nn.Module]]:
    """Return the blocks of ``root`` holding parameters, at the shallowest depth giving ``min_groups`` blocks.

    Blocks come in registration order (input to output for sequential networks).
    """
    names = [n.split(".") for n, p in root.named_parameters()]
    best: list[str] = []
    for depth in range(1, max_depth + 1):
        # A group is a module path: a parameter owned by a shallower module stays with that module, and
        # one registered on the root itself is its own group (its bare name).
        groups = list(dict.fromkeys(".".join(n[:max(1, min(depth, len(n) - 1))]) for n in names))
        best = groups
        if len(groups) >= min_groups:
            break
    modules = dict(root.named_modules())
    out = []
    for g in best:
        if g in modules:
            out.append((f"{prefix}{g}", modules[g]))
        else:  # a bare parameter (e.g. an nn.Parameter attribute): randomise it alone
            out.append((f"{prefix}{g}", _ParameterRef(root, g)))
    return out


class _ParameterRef(nn.Module):
    """Stands for one named parameter of ``owner`` so it can be randomised like a module."""

    def __init__(self, owner: nn.Module, name: str) -> None:
        super().__init__()
        self._owner, self._name = [owner], name

    def randomise(self, gen: torch.Generator) -> None:
        p = self._owner[0].get_parameter(self._name)
        with torch.no_grad():
            p.copy_(torch.randn(p.shape, generator=gen) * (float(p.std()) if p.numel() > 1 else 1.0))


def randomisation_layers(model: nn.Module, modality: str, head: str | None = None) -> list[tuple[str, nn.Module]]:
    """Return the ``(name, module)`` layers randomised in cascade, from the output down.

    The explained ``head`` (every head when None), the fusion, then ``modality``'s encoder blocks
    from its last to its first.
    """
    layers: list[tuple[str, nn.Module]] = [(f"heads.{h.name}", h) for h in model.heads if head in (None, h.name)]
    layers.append(("fusion", model.fusion))
    if modality in model.encoders:
        layers += list(reversed(_grouped_modules(model.encoders[modality], f"encoders.{modality}.")))
    return layers


def _randomise(module: nn.Module, gen: torch.Generator) -> None:
    """Re-draw every parameter of ``module`` from its layer's initial distribution (as Adebayo et al. do).

    Parameters of modules without ``reset_parameters`` are drawn from N(0, their std).
    """
    if isinstance(module, _ParameterRef):
        module.randomise(gen)
        return
    for sub in module.modules():
        own = list(sub.parameters(recurse=False))
        if not own:
            continue
        if hasattr(sub, "reset_parameters"):
            # torch's initialisers draw from the global RNG: seed it from our generator (the caller
            # forks the RNG, so the user's random state is left as it was).
            torch.manual_seed(int(torch.randint(0, 2**31 - 1, (1,), generator=gen)))
            sub.reset_parameters()
            continue
        with torch.no_grad():
            for p in own:
                scale = float(p.detach().std()) if p.numel() > 1 else 1.0
                p.copy_(torch.randn(p.shape, generator=gen).to(p) * max(scale, 1e-2))
    for buf_name, buf in module.named_buffers():
        # Batch-norm statistics belong to the trained model too: reset them with the weights.
        if buf_name.endswith("running_mean"):
            buf.zero_()
        elif buf_name.endswith("running_var"):
            buf.fill_(1.0)


@dataclass
class RandomisationResult:
    """Similarity of the original map to the map after randomising each layer (cumulatively).

    Attributes
    ----------
    layers : names of the randomised layers, output first.
    spearman_abs, spearman_signed : ``[n_layers]`` rank correlation with the original map (of
        magnitudes / signed).
    original : the map of the trained model.
    randomised : the map after each step.
    method, modality, target : what was checked.
    """

    layers: list[str]
    spearman_abs: np.ndarray
    spearman_signed: np.ndarray
    original: np.ndarray
    randomised: list[np.ndarray] = field(repr=False)
    method: str = ""
    modality: str = ""
    target: str = ""

    def to_frame(self) -> pd.DataFrame:
        """Return one row per randomised layer: layer, spearman_abs, spearman_signed."""
        return pd.DataFrame({"layer": self.layers, "spearman_abs": self.spearman_abs,
                             "spearman_signed": self.spearman_signed})

    def plot(self, **kwargs: Any):
        """Draw the Spearman similarity to the original map after each randomisation step (a Figure)."""
        from riskfm.plots.sanity_checks import plot_randomisation

        return plot_randomisation(self, **kwargs)


def _spearman(a: np.ndarray, b: np.ndarray) -> float:
    a, b = np.ravel(a), np.ravel(b)
    if np.ptp(a) == 0 or np.ptp(b) == 0:
        return 0.0 if np.ptp(a) != np.ptp(b) else 1.0
    return float(stats.spearmanr(a, b).statistic)


def cascading_randomisation(model: nn.Module, batch: dict[str, Any], modality: str = "ecg",
                            method: str | None = None, target: Any = None, *, patient: int = 0,
                            layers: Sequence[str] | None = None, seed: int = 0, progress: bool = True,
                            **kwargs: Any) -> RandomisationResult:
    """Run Adebayo et al.'s cascading model-parameter randomisation test for one patient's map.

    The model is deep-copied (the caller's model is untouched). ``layers`` restricts the cascade to
    the named entries of :func:`randomisation_layers`; ``kwargs`` go to :func:`riskfm.explain.explain`.
    ``progress``: a bar over the randomised layers on stderr (silent under ``riskfm --quiet``).
    """
    from riskfm.explain.api import explain

    work = copy.deepcopy(model).eval()
    single = select_patient(batch, patient)
    original = explain(work, single, modality, method, target, **kwargs)
    ref = original.values[0]
    cascade = randomisation_layers(work, modality, resolve_target(work, original.target).head)
    if layers is not None:
        unknown = set(layers) - {n for n, _ in cascade}
        if unknown:
            raise ValueError(f"unknown layers {sorted(unknown)}; available: {[n for n, _ in cascade]}")
        cascade = [(n, m) for n, m in cascade if n in set(layers)]
    gen = torch.Generator().manual_seed(seed)
    names, s_abs, s_signed, maps = [], [], [], []
    steps = cascade
    if progress:
        from riskfm.progress import progress as bar_of

        steps = bar_of(cascade, total=len(cascade), desc="randomising layers", unit="layer")
    with torch.random.fork_rng(devices=[]):
        for name, module in steps:
            _randomise(module, gen)
            for enc in work.encoders.values():  # cached text embeddings belong to the old weights
                if hasattr(enc, "clear_cache"):
                    enc.clear_cache()
            v = explain(work, single, modality, original.method, target, **kwargs).values[0]
            names.append(name)
            s_abs.append(_spearman(np.abs(ref), np.abs(v)))
            s_signed.append(_spearman(ref, v))
            maps.append(v)
    return RandomisationResult(names, np.asarray(s_abs), np.asarray(s_signed), ref, maps, original.method,
                               modality, original.target)


# --------------------------------------------------------------------------- deletion / insertion
@dataclass
class DeletionInsertionResult:
    """Deletion and insertion curves of an ECG attribution (see the module docstring).

    Attributes
    ----------
    fractions : ``[S]`` share of segments removed / inserted.
    deletion, insertion : ``[S]`` model output along the attribution order.
    random_deletion, random_insertion : ``[S]`` the same for random orders (mean over ``n_random``).
    auc : dict of the four areas under the curves (trapezoid over fractions).
    segment_samples : segment length (samples per lead); output : the output scale.
    """

    fractions: np.ndarray
    deletion: np.ndarray
    insertion: np.ndarray
    random_deletion: np.ndarray
    random_insertion: np.ndarray
    auc: dict[str, float]
    segment_samples: int
    output: str = "probability"
    method: str = ""
    target: str = ""

    def plot(self, **kwargs: Any):
        """Draw the deletion and insertion curves against a random order, AUC in the legend (a Figure)."""
        from riskfm.plots.sanity_checks import plot_deletion_insertion

        return plot_deletion_insertion(self, **kwargs)


def deletion_insertion(model: nn.Module, batch: dict[str, Any], attribution: Any, *, patient: int = 0,
                       target: Any = None, output: str = "probability", segment_s: float = 0.05, n_steps: int = 20,
                       n_random: int = 3, seed: int = 0, batch_size: int = 32) -> DeletionInsertionResult:
    """Compute deletion / insertion curves for one patient's ECG attribution.

    The ECG is cut into ``leads x (T / segment)`` segments of ``segment_s`` seconds, ranked by their
    summed attribution (most positive first: evidence *for* the target). Removing sets a segment to 0
    (the isoelectric baseline of the attribution methods).

    Parameters
    ----------
    attribution : an :class:`riskfm.explain.ECGAttribution` of ``batch`` (its row ``patient`` is used).
    output : scale of the curves (probability by default: bounded, comparable between patients).
    n_steps : points of each curve besides 0. n_random : random orders averaged for the reference.
    """
    tgt = resolve_target(model, target if target is not None else attribution.target)
    i = attribution.index(patient)
    was = model.training
    model.eval()
    try:
        context = PatientContext(model, batch, i)
        f = ModalityForward(context, "ecg", tgt, output)
        x = context.modality_input("ecg").float()
        n_leads, n_t = x.shape[1:]
        seg = max(1, int(round(segment_s * attribution.fs)))
        n_seg = int(np.ceil(n_t / seg))
        pad = n_seg * seg - n_t
        a = np.pad(attribution.values[i], ((0, 0), (0, pad)))
        scores = a.reshape(n_leads, n_seg, seg).sum(-1).ravel()
        order = np.argsort(-scores, kind="stable")
        fractions = np.linspace(0, 1, n_steps + 1)
        rng = np.random.default_rng(seed)

        def curves(order: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
            unit_masks = []
            for fr in fractions:
                k = int(round(fr * len(order)))
                m = np.zeros(n_leads * n_seg, dtype=bool)
                m[order[:k]] = True
                unit_masks.append(m.reshape(n_leads, n_seg).repeat(seg, axis=1)[:, :n_t])
            masks = torch.as_tensor(np.stack(unit_masks), dtype=x.dtype)  # [S, L, T], True = selected
            deleted = x * (1 - masks)
            inserted = x * masks
            with torch.no_grad():
                out_del = torch.cat([f(deleted[j:j + batch_size]) for j in range(0, len(masks), batch_size)])
                out_ins = torch.cat([f(inserted[j:j + batch_size]) for j in range(0, len(masks), batch_size)])
            return out_del.cpu().numpy(), out_ins.cpu().numpy()

        deletion, insertion = curves(order)
        randoms = [curves(rng.permutation(len(order))) for _ in range(max(1, n_random))]
    finally:
        model.train(was)
    rand_del = np.mean([r[0] for r in randoms], axis=0)
    rand_ins = np.mean([r[1] for r in randoms], axis=0)
    auc = {name: float(np.trapezoid(curve, fractions)) for name, curve in
           (("deletion", deletion), ("insertion", insertion), ("random_deletion", rand_del),
            ("random_insertion", rand_ins))}
    return DeletionInsertionResult(fractions, deletion, insertion, rand_del, rand_ins, auc, seg, output,
                                   attribution.method, tgt.name)
