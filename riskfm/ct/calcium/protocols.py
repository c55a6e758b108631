"""Building blocks of the two seed-000 protocols: subgroup fairness gaps and the synthetic exams.

The low-data protocol's folds (K-fold cross-validation with nested, subsampled training folds)
are :func:`riskfm.data.splits.low_data_folds`, with every other split riskfm makes.

* :func:`add_subgroups` and :func:`fairness_table` -- MAE, RMSE and bias of predicted vs reference
  Agatston per subgroup, and the gaps: for a binary attribute ``Gap_g = M_g - M_~g``; for a
  multi-level one ``Gap_Sj = M_Sj - median(M_S1..M_Sk)``, each with a bootstrap interval
  (computed by :func:`riskfm.evaluate.fairness_gaps`).
* :func:`synthetic_exams` -- synthetic exams rendered with a progress bar; :func:`protocol_exams`
  -- the ones every ``cac`` protocol and command draws for a seed.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
import pandas as pd

from riskfm.ct.calcium.categories import CAC_DRS_NAMES, cac_drs_category

__all__ = ["AGE_GROUPS", "FAIRNESS_METRICS", "add_subgroups", "arm_name", "fairness_table", "protocol_exams",
           "synthetic_exams"]

#: The error metrics of the fairness table (Agatston units): mean |error|, root mean square, mean error.
FAIRNESS_METRICS: tuple[str, ...] = ("mae", "rmse", "bias")
#: Age groups of seed 000 (years): <=50, 51-65, >65.
AGE_GROUPS: tuple[str, ...] = ("<=50", "51-65", ">65")


def synthetic_exams(seeds: Iterable[int], *, desc: str = "rendering synthetic exams", **kwargs: Any) -> list:
    """``[make_calcium_exam(seed, **kwargs) for seed in seeds]`` with a progress bar on stderr.

    Rendering takes about 0.1-0.2 s per default exam, so a protocol's few dozen exams take seconds:
    the bar (:mod:`riskfm.progress`, silent under ``riskfm --quiet``) shows that something happens.
    """
    from riskfm.progress import progress
    from riskfm.synthetic.calcium import make_calcium_exam

    seeds = [int(s) for s in seeds]
    return [make_calcium_exam(s, **kwargs) for s in progress(seeds, desc=desc, unit="exam")]


def protocol_exams(n: int, seed: int, *, offset: int = 0, desc: str = "rendering synthetic exams",
                   **kwargs: Any) -> list:
    """Render the ``n`` synthetic exams a protocol draws for ``seed``.

    Every ``cac`` protocol and command draws its exams from the same seeds, exam ``i`` of set
    ``offset`` being ``make_calcium_exam(offset + seed * 7919 + i)``: the gated training exams
    use offset 0, and other sets (fairness test exams, non-gated exams) their own offsets, so
    the sets do not overlap.

    Parameters
    ----------
    n : int
        Number of exams.
    seed : int
        The protocol's seed.
    offset : int, default 0
        First exam seed of this set (0 for the gated training exams).
    desc : str
        The progress bar's label (:func:`synthetic_exams`).
    **kwargs
        Passed to :func:`riskfm.synthetic.calcium.make_calcium_exam` (e.g. ``gated=False``).

    Returns
    -------
    list of CalciumExam
    """
    return synthetic_exams((offset + seed * 7919 + i for i in range(n)), desc=desc, **kwargs)


def arm_name(model: str, encoder_checkpoint: object | None) -> str:
    """Name of a protocol arm: ``unet2d``, or a 3D model tagged by how its encoder started.

    ``cora3d-foundation`` when a pretrained encoder checkpoint initialised it, ``cora3d-random``
    otherwise: the tables must never call a randomly initialised network a foundation model.
    """
    if model == "unet2d":
        return model
    return f"{model}-foundation" if encoder_checkpoint else f"{model}-random"


def add_subgroups(df: pd.DataFrame, *, reference: str = "reference", sex: str = "sex", age: str = "age",
                  eat: str | None = "eat_ml") -> pd.DataFrame:
    """Add the seed-000 subgroup columns to a per-exam table.

    Parameters
    ----------
    df : DataFrame
        One row per exam with the reference Agatston score and the attributes.
    reference, sex, age, eat : str
        Column names; ``eat`` (epicardial fat volume, mL) may be None or absent to skip quartiles.

    Returns
    -------
    DataFrame
        A copy with ``group_sex`` (as given), ``group_age`` (:data:`AGE_GROUPS`), ``group_cac_drs``
        (:data:`~riskfm.ct.calcium.categories.CAC_DRS_NAMES` of the reference) and ``group_eat``
        (Q1-Q4 of ``eat``).
    """
    for col in (reference, sex, age):
        if col not in df.columns:
            raise ValueError(f"fairness table: column {col!r} is missing (have {list(df.columns)})")
    out = df.copy()
    out["group_sex"] = out[sex].astype(str)
    ages = pd.to_numeric(out[age], errors="raise")
    out["group_age"] = pd.Categorical(np.select([ages <= 50, ages <= 65], AGE_GROUPS[:2], AGE_GROUPS[2]),
                                      categories=list(AGE_GROUPS), ordered=True)
    out["group_cac_drs"] = pd.Categorical([CAC_DRS_NAMES[c] for c in cac_drs_category(out[reference].to_numpy())],
                                          categories=list(CAC_DRS_NAMES), ordered=True)
    if eat is not None and eat in out.columns:
        out["group_eat"] = pd.qcut(out[eat].astype(float), 4, labels=["Q1", "Q2", "Q3", "Q4"])
    return out


def fairness_table(df: pd.DataFrame, *, reference: str = "reference", predicted: str = "predicted",
                   groups: Sequence[str] = ("group_sex", "group_age", "group_cac_drs", "group_eat"),
                   n_resamples: int = 500, seed: int = 0, confidence: float = 0.95) -> pd.DataFrame:
    """MAE, RMSE and bias per subgroup, with the seed-000 gaps and their bootstrap intervals.

    Every number comes from :func:`riskfm.evaluate.fairness_gaps` (one call per attribute and
    metric): the level's metric, its gap, and the gap's percentile bootstrap interval over exams
    (resampled within each level; the same ``seed`` gives the same intervals).

    Parameters
    ----------
    df : DataFrame
        Per-exam rows with reference and predicted Agatston and the group columns
        (see :func:`add_subgroups`); absent group columns are skipped.
    reference, predicted : str
        Columns of the reference and predicted Agatston scores (finite).
    groups : sequence of str
        Group columns; categories of a categorical column are its levels in order, otherwise the
        sorted distinct values.
    n_resamples : int, default 500
        Bootstrap resamples of each gap's interval.
    seed : int, default 0
        Seed of the resampling.
    confidence : float, default 0.95
        Coverage of the intervals.

    Returns
    -------
    DataFrame
        One row per level: ``attribute, group, n, mae, rmse, bias`` (Agatston units; bias is
        mean(predicted - reference)), ``gap_<m>`` and its interval ``gap_<m>_low``,
        ``gap_<m>_high`` for ``m`` in mae, rmse, bias. Binary attributes: gap = metric of the
        group minus metric of the other group; more levels: metric minus the median over the
        levels. Empty levels are listed with n = 0 and NaN metrics (and left out of the median);
        an attribute with fewer than two non-empty levels has NaN gaps.
    """
    from riskfm.evaluate import fairness_gaps

    for col in (reference, predicted):
        if col not in df.columns:
            raise ValueError(f"fairness table: column {col!r} is missing")
    tables = []
    for attr in groups:
        if attr not in df.columns:
            continue
        col = df[attr]
        levels = list(col.cat.categories) if isinstance(col.dtype, pd.CategoricalDtype) else sorted(col.dropna().unique())
        t = pd.DataFrame({"attribute": attr.removeprefix("group_"), "group": [str(lv) for lv in levels]})
        for m in FAIRNESS_METRICS:
            gaps = fairness_gaps(df, attr, m, columns=(reference, predicted), levels=levels, n_resamples=n_resamples,
                                 seed=seed, confidence=confidence, min_n=1)
            per_level = gaps.table.iloc[:-1]  # the last row is the attribute's range (max - min)
            t["n"] = per_level["n"].to_numpy(int)
            t[m] = per_level["metric_value"].to_numpy(float)
            t[f"gap_{m}"] = per_level["gap"].to_numpy(float)
            t[f"gap_{m}_low"] = per_level["ci_low"].to_numpy(float)
            t[f"gap_{m}_high"] = per_level["ci_high"].to_numpy(float)
        tables.append(t)
    if not tables:
        raise ValueError(f"fairness table: none of the group columns {list(groups)} is present")
    out = pd.concat(tables, ignore_index=True)
    gaps_cols = [c for m in FAIRNESS_METRICS for c in (f"gap_{m}", f"gap_{m}_low", f"gap_{m}_high")]
    return out[["attribute", "group", "n", *FAIRNESS_METRICS, *gaps_cols]]
