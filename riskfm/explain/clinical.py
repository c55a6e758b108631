"""Clinical-variable attributions for the text and the tabular clinical encoders.

Token attributions of the text encoder are rolled up to variables; the tabular encoder gets
feature ablation per variable.

Text (``text-lm``): Captum ``LayerIntegratedGradients`` on the language model's token-embedding layer,
from a baseline text in which every non-special token is the pad token (the tokens' positions and the
[CLS] / [SEP] frame stay, only the words are removed). Each token's attribution is the sum over its
embedding dimensions; tokens are then summed per clinical variable using the character spans of the
serialised record (``"Age: 63 years."`` is one span, see :func:`riskfm.clinical.serialise_clinical`).
The prompt and the special tokens get their own rows, so all rows together add up to
``f(text) - f(baseline text)``.

Tabular (``tabular-mlp``): Captum ``FeatureAblation`` with one group per variable (a numeric column and
its ``__missing`` flag; every one-hot level of a categorical). The ablated value is the preprocessor's
encoding of "not recorded" (standardised value 0 with the missing flag set; the ``unknown`` level), so
a variable's attribution is how much the output changes when the model does not get to see it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch
from captum.attr import FeatureAblation, LayerIntegratedGradients

from riskfm.clinical.text import KNOWN_VARIABLES, serialise_clinical
from riskfm.explain.forward import ModalityForward, text_token_forward, tokenize_text

__all__ = ["PROMPT_ROW", "SPECIAL_ROW", "attribute_tabular", "attribute_text", "tabular_variable",
           "variable_spans"]

#: Rows of a text attribution that are not clinical variables.
PROMPT_ROW = "[prompt]"
SPECIAL_ROW = "[special tokens]"

_LABEL_TO_NAME = {v.label.lower(): v.name for v in KNOWN_VARIABLES}
# A part starts at the text start or after ". ", and its label (no ":" or ".") ends at ": ".
_PART_START = re.compile(r"(?:^|(?<=\. ))([^:.]+?): ")


def _parse_spans(text: str) -> list[tuple[str, int, int]]:
    starts = [(m.group(1).strip(), m.start()) for m in _PART_START.finditer(text)]
    spans = []
    for j, (label, start) in enumerate(starts):
        end = starts[j + 1][1] - 1 if j + 1 < len(starts) else len(text)
        spans.append((_LABEL_TO_NAME.get(label.lower(), label), start, end))
    return spans


def variable_spans(text: str, record: Mapping[str, Any] | None = None) -> list[tuple[str, int, int]]:
    """Return character spans ``(variable, start, end)`` of each clinical variable in a serialised record.

    With ``record`` (column -> value, as serialised), each variable's own serialisation
    (``serialise_clinical({column: value}, prompt=None)``) is located in ``text`` and named by its
    column; this is exact for any record written with the default labels and units. Otherwise, or when
    a part cannot be found (custom labels or units), the text is parsed into ``"Label: value."`` parts
    and known labels are mapped back to riskfm's variable names (``"Systolic blood pressure"`` ->
    ``sbp``).
    """
    if record:
        spans = []
        for column, value in record.items():
            part = serialise_clinical({column: value}, prompt=None)
            pos = text.find(part)
            if not part or pos < 0:
                return _parse_spans(text)
            spans.append((str(column), pos, pos + len(part)))
        return sorted(spans, key=lambda s: s[1])
    return _parse_spans(text)


def _token_groups(offsets: torch.Tensor, spans: list[tuple[str, int, int]]) -> list[str]:
    first = min((s for _, s, _ in spans), default=None)
    groups = []
    for start, end in offsets.tolist():
        if start == end:
            groups.append(SPECIAL_ROW)
            continue
        name = next((n for n, s, e in spans if s <= start < e), None)
        if name is None:
            name = PROMPT_ROW if first is None or start < first else SPECIAL_ROW
        groups.append(name)
    return groups


def attribute_text(f_factory: Any, encoder: Any, text: str, *, record: Mapping[str, Any] | None = None,
                   n_steps: int = 50, internal_batch_size: int | None = None
                   ) -> tuple[dict[str, float], dict[str, Any]]:
    """Attribute one patient's clinical text with LayerIntegratedGradients over the token embeddings.

    Parameters
    ----------
    f_factory : callable ``encode -> ModalityForward`` binding the token forward to the patient context.
    encoder : the model's ``TextEncoder``.
    text : the serialised clinical record the model read.
    record : the record behind ``text`` (exact variable spans; parsed from ``text`` otherwise).

    Returns
    -------
    per_variable : variable -> summed attribution, plus ``[prompt]`` and ``[special tokens]`` rows.
    meta : ``tokens`` (strings), ``token_attributions`` ``[T]``, ``token_groups``, ``delta``, ``spans``,
        ``truncated`` (variables cut off by ``max_length``).
    """
    tokens = tokenize_text(encoder, text)
    ids, mask = tokens["input_ids"], tokens["attention_mask"]
    special = set(encoder.tokenizer.all_special_ids)
    pad = encoder.tokenizer.pad_token_id
    base = torch.where(torch.isin(ids, torch.tensor(sorted(special))), ids, torch.full_like(ids, pad))
    f: ModalityForward = f_factory(lambda token_ids: text_token_forward(encoder, token_ids, mask))
    lig = LayerIntegratedGradients(f, encoder.lm.get_input_embeddings())
    device = next(encoder.lm.parameters()).device
    attr, delta = lig.attribute(ids.to(device), baselines=base.to(device), n_steps=int(n_steps),
                                internal_batch_size=internal_batch_size, return_convergence_delta=True)
    token_attr = attr.detach().sum(-1)[0].float().cpu().numpy()
    spans = variable_spans(text, record)
    groups = _token_groups(tokens["offsets"], spans)
    per_variable: dict[str, float] = {name: 0.0 for name, _, _ in spans}
    per_variable[PROMPT_ROW] = 0.0
    per_variable[SPECIAL_ROW] = 0.0
    for g, a in zip(groups, token_attr):
        per_variable[g] = per_variable.get(g, 0.0) + float(a)
    seen = set(groups)
    meta = {
        "tokens": encoder.tokenizer.convert_ids_to_tokens(ids[0].tolist()),
        "token_attributions": token_attr,
        "token_groups": groups,
        "delta": float(delta.detach().abs().max()),
        "spans": spans,
        "truncated": [n for n, _, _ in spans if n not in seen],
        "text": text,
    }
    return per_variable, meta


def tabular_variable(feature_name: str) -> str:
    """Return the variable of a preprocessed column: ``age__missing`` -> ``age``, ``sex=male`` -> ``sex``."""
    if feature_name.endswith("__missing"):
        return feature_name[: -len("__missing")]
    return feature_name.split("=", 1)[0]


def _missing_encoding(names: Sequence[str]) -> np.ndarray:
    """Return the preprocessor's row ``[F]`` for "nothing recorded": z = 0, missing flags 1, level unknown."""
    base = np.zeros(len(names), dtype=np.float32)
    for j, name in enumerate(names):
        if name.endswith("__missing") or name.endswith("=unknown"):
            base[j] = 1.0
    return base


def attribute_tabular(f: ModalityForward, x: torch.Tensor, feature_names: Sequence[str] | None = None,
                      baseline: str | torch.Tensor = "missing") -> tuple[dict[str, float], dict[str, Any]]:
    """Attribute one patient's tabular row ``x`` ``[1, F]`` by FeatureAblation per clinical variable.

    Parameters
    ----------
    feature_names : the preprocessor's column names (``TabularPreprocessor.feature_names``); without
        them every column is its own variable (``x0``, ``x1``, ...) and the baseline is zeros.
    baseline : ``"missing"`` (the preprocessor's "not recorded" encoding), ``"zeros"`` or a tensor ``[F]``.

    Returns
    -------
    per_variable : variable -> ``f(x) - f(x with the variable set to the baseline)``.
    meta : ``feature_names``, ``column_attributions`` ``[F]`` (each column carries its group's effect),
        ``baseline`` ``[F]``.
    """
    n = x.shape[1]
    names = list(feature_names) if feature_names is not None else [f"x{j}" for j in range(n)]
    if len(names) != n:
        raise ValueError(f"feature_names has {len(names)} entries but the tabular input has {n} columns")
    owner = [tabular_variable(c) for c in names] if feature_names is not None else names
    variables = list(dict.fromkeys(owner))
    group_index = [variables.index(v) for v in owner]
    group = torch.tensor([group_index], device=x.device)
    if isinstance(baseline, str):
        if baseline not in ("missing", "zeros"):
            raise ValueError(f"tabular baseline must be 'missing', 'zeros' or a tensor, got {baseline!r}")
        b = _missing_encoding(names) if baseline == "missing" and feature_names is not None else np.zeros(n)
        base = torch.as_tensor(b, dtype=x.dtype, device=x.device).unsqueeze(0)
    else:
        base = torch.as_tensor(baseline, dtype=x.dtype, device=x.device).reshape(1, n)
    attr = FeatureAblation(f).attribute(x, baselines=base, feature_mask=group).detach()[0].cpu().numpy()
    # Every column of a group carries the group's ablation effect; read it from the group's first column.
    per_variable = {v: float(attr[group_index.index(k)]) for k, v in enumerate(variables)}
    return per_variable, {"feature_names": names, "column_attributions": attr, "baseline": base[0].cpu().numpy()}
