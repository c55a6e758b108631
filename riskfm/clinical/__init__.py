"""Clinical variables: text serialisation behind a prompt, language-model, LM-token and tabular encoders."""

from riskfm.clinical.lm_tokens import LMTokenEncoder
from riskfm.clinical.spec import CORA_PROMPT, TabularInputSpec, TextInputSpec
from riskfm.clinical.tabular import TabularEncoder, TabularPreprocessor
from riskfm.clinical.text import serialise_clinical
from riskfm.clinical.text_encoder import TextEncoder

__all__ = [
    "CORA_PROMPT",
    "LMTokenEncoder",
    "TabularEncoder",
    "TabularInputSpec",
    "TabularPreprocessor",
    "TextEncoder",
    "TextInputSpec",
    "serialise_clinical",
]
