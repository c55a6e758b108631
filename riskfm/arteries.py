"""The coronary artery vocabulary: the four arteries riskfm names, in one order, and their label ids.

:data:`ARTERIES` is the order of everything riskfm reports per artery: the manifest's
``stenosis_*`` columns (:data:`STENOSIS_COLUMNS`), the stenosis head's four logits, the synthetic
cohort's per-artery arrays and the papers' tables -- RCA, LM, LAD, LCX.

Calcium label maps (per-artery calcium masks, the outputs of the calcium segmenters, the COCA
masks) number the arteries differently, 1 LM, 2 LAD, 3 LCX, 4 RCA (0 background; the COCA /
CT-segmentation order). Those ids are baked into trained segmenters (output channel ``k`` of the
artery head is label ``k + 1``) and into saved masks, so they never change:
:data:`ARTERY_LABELS` maps each name of :data:`ARTERIES` to its id, in label order.

Examples
--------
>>> ARTERIES
('RCA', 'LM', 'LAD', 'LCX')
>>> ARTERY_LABELS
{'LM': 1, 'LAD': 2, 'LCX': 3, 'RCA': 4}
>>> [ARTERY_LABELS[a] for a in ARTERIES]
[4, 1, 2, 3]
>>> STENOSIS_COLUMNS
('stenosis_rca', 'stenosis_lm', 'stenosis_lad', 'stenosis_lcx')
"""

from __future__ import annotations

__all__ = ["ARTERIES", "ARTERY_LABELS", "ARTERY_NAMES", "STENOSIS_COLUMNS", "stenosis_column"]

#: The four coronary arteries in riskfm's order: right coronary, left main, left anterior
#: descending, left circumflex.
ARTERIES: tuple[str, ...] = ("RCA", "LM", "LAD", "LCX")

# Label id of each artery of ARTERIES in calcium label maps. Frozen: trained segmenters and saved
# masks depend on these numbers.
_CALCIUM_LABEL_IDS: tuple[int, ...] = (4, 1, 2, 3)

#: Artery name -> label id in calcium label maps (0 is background), ordered by label id.
ARTERY_LABELS: dict[str, int] = dict(sorted(zip(ARTERIES, _CALCIUM_LABEL_IDS), key=lambda item: item[1]))
#: Label id -> artery name (the inverse of :data:`ARTERY_LABELS`).
ARTERY_NAMES: dict[int, str] = {v: k for k, v in ARTERY_LABELS.items()}


def stenosis_column(artery: str) -> str:
    """Return the manifest column holding an artery's severe-stenosis label.

    Parameters
    ----------
    artery : str
        One of :data:`ARTERIES` (any case).

    Returns
    -------
    str
        ``"stenosis_<artery in lower case>"``, e.g. ``"stenosis_lad"``.

    Raises
    ------
    ValueError
        For a name that is not one of :data:`ARTERIES`.
    """
    name = str(artery).upper()
    if name not in ARTERIES:
        raise ValueError(f"unknown artery {artery!r}; riskfm's arteries are {ARTERIES}")
    return f"stenosis_{name.lower()}"


#: The manifest's severe-stenosis columns, in :data:`ARTERIES` order.
STENOSIS_COLUMNS: tuple[str, ...] = tuple(stenosis_column(a) for a in ARTERIES)
