"""Fusion modules, prediction heads and ``RiskModel``."""

from riskfm.models.fusion import ConcatFusion
from riskfm.models.heads import (
           BinaryHead,
           StenosisHead,
           SurvivalHead,
           build_head,
           cox_partial_likelihood,
           masked_bce,
)
from riskfm.models.risk_model import RiskModel

__all__ = ["RiskModel", "ConcatFusion", "StenosisHead", "BinaryHead", "SurvivalHead", "build_head",
           "masked_bce", "cox_partial_likelihood"]
