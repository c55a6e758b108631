"""``explain(model, batch, modality=..., method=..., target=...)``: one entry point for every attribution.

Examples
--------
>>> from riskfm.explain import explain                                     # doctest: +SKIP
>>> a = explain(model, batch, modality="ecg", method="integrated_gradients",
...             target=("stenosis", "LAD"))                                # doctest: +SKIP
>>> a.values.shape            # [patients, leads, samples], aligned with batch["ecg"]  # doctest: +SKIP
>>> fig = a.plot(0)           # 12-lead paper layout with the map overlaid  # doctest: +SKIP
>>> explain(model, batch, modality="modalities").cohort_mean()            # doctest: +SKIP
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch
from torch import nn

from riskfm.explain.attribution import (
    Attribution,
    ClinicalAttribution,
    CTAttribution,
    ECGAttribution,
    ModalityAttribution,
)
from riskfm.explain.clinical import PROMPT_ROW, SPECIAL_ROW, attribute_tabular, attribute_text
from riskfm.explain.ct import CT_METHODS, attribute_ct
from riskfm.explain.ecg import ECG_METHODS, attribute_ecg
from riskfm.explain.forward import ModalityForward, PatientContext
from riskfm.explain.modalities import MODALITY_METHODS, attribute_modalities
from riskfm.explain.targets import OUTPUTS, resolve_target

__all__ = ["METHODS", "canonical_method", "explain", "input_kind"]

_ALIASES = {
    "ig": "integrated_gradients", "integratedgradients": "integrated_gradients",
    "gradientshap": "gradient_shap", "gshap": "gradient_shap", "expected_gradients": "gradient_shap",
    "grad_cam": "gradcam", "layergradcam": "gradcam",
    "lig": "layer_integrated_gradients", "layerintegratedgradients": "layer_integrated_gradients",
    "ablation": "feature_ablation", "featureablation": "feature_ablation",
    "shapley_value_sampling": "shapley_sampling", "shapleyvaluesampling": "shapley_sampling",
    "shapley_values": "shapley", "shapleyvalues": "shapley",
}

#: Methods per input kind; the first is the default.
METHODS: dict[str, tuple[str, ...]] = {
    "ecg": ECG_METHODS,
    "ct": CT_METHODS,
    "clinical_text": ("layer_integrated_gradients",),
    "clinical_tabular": ("feature_ablation",),
    "modalities": MODALITY_METHODS,
}


def input_kind(model: nn.Module, modality: str) -> str:
    """Return the kind of input explained.

    One of ``ecg``, ``ct``, ``clinical_text``, ``clinical_tabular`` or ``modalities``.
    """
    if modality in ("modalities", "modality"):
        return "modalities"
    if modality not in model.encoders:
        raise ValueError(f"the model has no {modality!r} encoder; explain one of {list(model.encoders)} "
                         "or 'modalities'")
    key = model.input_keys[modality]
    return key if key.startswith("clinical") else modality


def canonical_method(kind: str, method: str | None) -> str:
    """Return the canonical name of ``method`` for an input kind (aliases like ``ig``, ``grad-cam`` work)."""
    allowed = METHODS[kind]
    if method is None:
        return allowed[0]
    key = str(method).strip().lower().replace("-", "_").replace(" ", "_")
    key = _ALIASES.get(key.replace("_", ""), _ALIASES.get(key, key))
    if kind == "clinical_text" and key == "integrated_gradients":
        key = "layer_integrated_gradients"  # IG on text means IG on the token embeddings
    if key not in allowed:
        raise ValueError(f"method {method!r} is not available for {kind}; choose from {allowed}")
    return key


def explain(model: nn.Module, batch: Mapping[str, Any], modality: str = "ecg", method: str | None = None,
            target: Any = None, *, output: str = "logit", records: Sequence[Mapping[str, Any]] | None = None,
            feature_names: Sequence[str] | None = None, **kwargs: Any) -> Attribution:
    """Attribute a RiskModel's prediction for ``target`` to one modality's input (or to the modalities).

    Parameters
    ----------
    model : RiskModel. It is put in eval mode for the call (dropout off) and restored afterwards.
    batch : a collated batch (:func:`riskfm.data.sample.collate_samples`).
    modality : ``"ecg"``, ``"ct"``, ``"clinical"``, or ``"modalities"`` (Shapley values of the modalities).
    method : per modality (default first):
        ecg ``integrated_gradients``, ``gradient_shap``, ``occlusion``, ``saliency``, ``gradcam``;
        ct ``gradcam``, ``occlusion``, ``integrated_gradients``, ``saliency``;
        clinical text ``layer_integrated_gradients``; clinical tabular ``feature_ablation``;
        modalities ``shapley_sampling``, ``shapley`` (exact).
    target : ``"mace_30d"``, ``"stenosis_lad"``, ``("stenosis", "LAD")``, ``"risk_score"``; default
        ``mace_30d`` when predicted, else the model's first target.
    output : ``"logit"`` (default; the head's raw output) or ``"probability"``.
    records : clinical records behind ``batch["clinical_text"]`` (exact variable spans for text).
    feature_names : tabular column names (``TabularPreprocessor.feature_names``) for per-variable groups.
    **kwargs : method settings, e.g. ``n_steps``, ``internal_batch_size``, ``baselines``, ``window_s``
        (ECG occlusion), ``window`` / ``stride`` (CT occlusion, voxels), ``n_samples``, ``seed``.

    Returns
    -------
    Attribution
        :class:`ECGAttribution`, :class:`CTAttribution`, :class:`ClinicalAttribution` or
        :class:`ModalityAttribution`; patients without the modality get NaN rows.
    """
    if output not in OUTPUTS:
        raise ValueError(f"output must be one of {OUTPUTS}, got {output!r}")
    kind = input_kind(model, modality)
    method = canonical_method(kind, method)
    tgt = resolve_target(model, target)
    was_training = model.training
    model.eval()
    try:
        with torch.enable_grad():
            if kind == "modalities":
                values, meta = attribute_modalities(model, dict(batch), tgt, output=output, method=method, **kwargs)
                return ModalityAttribution("modalities", method, tgt.name, output, values,
                                           [str(p) for p in batch["patient_id"]], inputs=meta["available"],
                                           feature_names=meta["modalities"], meta=meta)
            return _explain_inputs(model, dict(batch), modality, kind, method, tgt, output, records, feature_names,
                                   kwargs)
    finally:
        model.train(was_training)


def _explain_inputs(model, batch, modality, kind, method, tgt, output, records, feature_names, kwargs) -> Attribution:
    n = len(batch["patient_id"])
    ids = [str(p) for p in batch["patient_id"]]
    encoder = model.encoders[modality]
    rows: list[Any] = [None] * n
    per_patient: list[dict[str, Any]] = [{} for _ in range(n)]
    skipped: list[str] = []
    for i in range(n):
        context = PatientContext(model, batch, i)
        if not context.has(modality):
            skipped.append(ids[i])
            continue
        if kind == "clinical_text":
            text = context.modality_input(modality)[0]
            record = None if records is None else records[i]
            rows[i], per_patient[i] = attribute_text(
                lambda encode, c=context: ModalityForward(c, modality, tgt, output, encode=encode), encoder, text,
                record=record, **kwargs)
            continue
        f = ModalityForward(context, modality, tgt, output)
        x = context.modality_input(modality).to(next(encoder.parameters()).device).float()
        if kind == "ecg":
            spec = encoder.input_spec
            rows[i], per_patient[i] = attribute_ecg(f, x, method, fs=float(spec.fs),
                                                    median_beat=spec.representation == "median_beat", **kwargs)
        elif kind == "ct":
            rows[i], per_patient[i] = attribute_ct(f, x, method, spacing=tuple(encoder.input_spec.spacing), **kwargs)
        else:
            names = feature_names or encoder.input_spec.extra.get("feature_names")
            rows[i], per_patient[i] = attribute_tabular(f, x, names, **kwargs)
    if len(skipped) == n:
        raise ValueError(f"no patient of the batch has a {modality} input to explain (patients {ids[:10]})")
    if skipped:
        warnings.warn(f"{len(skipped)} patient(s) have no {modality} input and get NaN attributions: {skipped[:10]}",
                      stacklevel=3)
    common = {k: v for k, v in per_patient[next(i for i in range(n) if rows[i] is not None)].items()
              if k in ("shared_over_leads", "shared_over_channels", "window_samples", "stride_samples",
                       "window_voxels", "stride_voxels")}
    meta = {"patients": per_patient, "skipped": skipped, **common}

    if kind in ("ecg", "ct"):
        shape = next(r for r in rows if r is not None).shape
        values = np.stack([r if r is not None else np.full(shape, np.nan, np.float32) for r in rows])
        inputs = batch[model.input_keys[modality]].detach().cpu().numpy()
        if kind == "ecg":
            spec = encoder.input_spec
            units = "mV" if spec.normalisation == "none" else "z-score"
            return ECGAttribution(modality, method, tgt.name, output, values, ids, inputs=inputs,
                                  feature_names=list(spec.leads), meta=meta, fs=float(spec.fs),
                                  representation=spec.representation, beat_window_s=tuple(spec.beat_window_s),
                                  units=units)
        spec = encoder.input_spec
        return CTAttribution(modality, method, tgt.name, output, values, ids, inputs=inputs, feature_names=None,
                             meta=meta, spacing=tuple(spec.spacing), windows=tuple(tuple(w) for w in spec.windows))

    # clinical: union of variable names in order of first appearance, text-only rows last
    names: list[str] = []
    for r in rows:
        for name in r or {}:
            if name not in names and name not in (PROMPT_ROW, SPECIAL_ROW):
                names.append(name)
    if kind == "clinical_text":
        names += [PROMPT_ROW, SPECIAL_ROW]
    values = np.array([[np.nan if r is None else r.get(name, np.nan) for name in names] for r in rows], dtype=float)
    if kind == "clinical_text":
        inputs = batch.get("clinical_text")
    else:
        inputs = batch["clinical_tabular"].detach().cpu().numpy()
    return ClinicalAttribution(modality, method, tgt.name, output, values, ids, inputs=inputs, feature_names=names,
                               meta=meta)
