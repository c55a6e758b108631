"""Segmentation metrics of CORA's dense tasks: a re-export of :mod:`riskfm.evaluate.segmentation`.

Dice, clDice, the mean surface distance and lesion-level detection live in
``riskfm.evaluate.segmentation`` (one home, one empty-mask rule: NaN when both masks are empty,
0 when only one is); this module keeps the old import path working.
"""

from riskfm.evaluate import segmentation as _segmentation
from riskfm.evaluate.segmentation import *  # noqa: F403  (the same objects, under the old name)

__all__ = list(_segmentation.__all__)
