"""What a clinical-variable encoder expects (text prompt for language models, columns for tabular)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

#: CORA's prompt, written in front of the patient's variables (methods.md).
CORA_PROMPT = (
    "The following is a summary of the patient's demographic and clinical information. "
    "Please focus on key risk factors for major adverse cardiovascular events."
)


@dataclass(frozen=True)
class TextInputSpec:
    """A language-model encoder of the clinical record written as text.

    Attributes
    ----------
    model_path : str
        Local folder of a transformers model (config + weights + tokenizer).
    prompt : str
        Text written before the serialised variables.
    max_length : int
        Tokenizer truncation length in tokens.
    pooling : str
        ``"mean"`` (encoder models) or ``"last"`` (decoder-only models).
    licence, source : str
        Licence and provenance of the model weights.
    extra : dict
        Any further settings recorded with the spec.
    """

    #: The batch key that feeds an encoder of this spec (``collate_samples`` output).
    batch_key: ClassVar[str] = "clinical_text"

    model_path: str = ""
    prompt: str = CORA_PROMPT
    max_length: int = 256
    pooling: str = "mean"
    licence: str = "see model card"
    source: str = ""
    extra: dict = field(default_factory=dict)


@dataclass(frozen=True)
class TabularInputSpec:
    """A tabular encoder: numeric columns standardised, categoricals one-hot, NaN -> 0 plus a missing flag."""

    #: The batch key that feeds an encoder of this spec (``collate_samples`` output).
    batch_key: ClassVar[str] = "clinical_tabular"

    n_features: int = 0
    licence: str = "MIT"
    source: str = "riskfm"
    extra: dict = field(default_factory=dict)
