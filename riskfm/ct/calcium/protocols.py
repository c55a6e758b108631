"""Building blocks of the two seed-000 protocols: low-data folds and subgroup fairness gaps.

* :func:`low_data_folds` -- K-fold cross-validation whose training folds are subsampled to given
  fractions (nested: the 25% subset lies inside the 50% one, so curves differ only by data
  quantity) while the test folds stay intact.
* :func:`add_subgroups` and :func:`fairness_table` -- MAE, RMSE and bias of predicted vs reference
  Agatston per subgroup, and the gaps: for a binary attribute ``Gap_g = M_g - M_~g``; for a
  multi-level one ``Gap_Sj = M_Sj - median(M_S1..M_Sk)``.
* :func:`synthetic_exams` -- the protocols' synthetic exams, rendered with a progress bar.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from riskfm.ct.calcium.categories import CAC_DRS_NAMES, cac_drs_category

__all__ = ["AGE_GROUPS", "FoldSplit", "add_subgroups", "arm_name", "fairness_table", "low_data_folds",
           "synthetic_exams"]

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


def arm_name(model: str, encoder_checkpoint: object | None) -> str:
    """Name of a protocol arm: ``unet2d``, or a 3D model tagged by how its encoder started.

    ``cora3d-foundation`` when a pretrained encoder checkpoint initialised it, ``cora3d-random``
    otherwise: the tables must never call a randomly initialised network a foundation model.
    """
    if model == "unet2d":
        return model
    return f"{model}-foundation" if encoder_checkpoint else f"{model}-random"


@dataclass(frozen=True)
class FoldSplit:
    """One (fold, fraction) cell: indices into the exam list."""

    fold: int
    fraction: float
    train: np.ndarray
    test: np.ndarray


def low_data_folds(n: int, *, n_folds: int = 5, fractions: Sequence[float] = (1.0, 0.75, 0.5, 0.25),
                   seed: int = 0) -> list[FoldSplit]:
    """K-fold splits with training folds subsampled to each fraction, test folds intact.

    Parameters
    ----------
    n : int
        Number of exams.
    n_folds : int, default 5
    fractions : sequence of float in (0, 1]
        Training fractions; subsets are nested (a random order of each training fold, truncated).
    seed : int

    Returns
    -------
    list of FoldSplit
        ``n_folds * len(fractions)`` cells, fold-major.
    """
    if n_folds < 2 or n < n_folds:
        raise ValueError(f"need n_folds >= 2 and at least n_folds exams; got n_folds={n_folds}, n={n}")
    fr = [float(f) for f in fractions]
    if not fr or any(not 0 < f <= 1 for f in fr):
        raise ValueError(f"fractions must lie in (0, 1], got {fractions}")
    rng = np.random.default_rng(seed)
    order = rng.permutation(n)
    folds = np.array_split(order, n_folds)
    out = []
    for k in range(n_folds):
        test = np.sort(folds[k])
        train_all = rng.permutation(np.concatenate([folds[j] for j in range(n_folds) if j != k]))
        for f in fr:
            m = max(1, int(round(f * train_all.size)))
            out.append(FoldSplit(k, f, np.sort(train_all[:m]), test))
    return out


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
                   groups: Sequence[str] = ("group_sex", "group_age", "group_cac_drs", "group_eat")) -> pd.DataFrame:
    """MAE, RMSE and bias per subgroup, with the seed-000 gaps.

    Parameters
    ----------
    df : DataFrame
        Per-exam rows with reference and predicted Agatston and the group columns
        (see :func:`add_subgroups`); absent group columns are skipped.
    reference, predicted : str
    groups : sequence of str

    Returns
    -------
    DataFrame
        Columns ``attribute, group, n, mae, rmse, bias, gap_mae, gap_rmse, gap_bias``; bias is
        mean(predicted - reference). Binary attributes: gap = metric of the group minus metric of
        the other group; more levels: metric minus the median over the levels. Empty levels are
        listed with n = 0 and NaN metrics (and left out of the median).
    """
    for col in (reference, predicted):
        if col not in df.columns:
            raise ValueError(f"fairness table: column {col!r} is missing")
    rows = []
    for attr in groups:
        if attr not in df.columns:
            continue
        col = df[attr]
        levels = list(col.cat.categories) if isinstance(col.dtype, pd.CategoricalDtype) else sorted(col.dropna().unique())
        recs = []
        for level in levels:
            sub = df[col == level]
            err = sub[predicted].to_numpy(float) - sub[reference].to_numpy(float)
            n = err.size
            recs.append({"attribute": attr.removeprefix("group_"), "group": str(level), "n": n,
                         "mae": float(np.abs(err).mean()) if n else np.nan,
                         "rmse": float(np.sqrt((err ** 2).mean())) if n else np.nan,
                         "bias": float(err.mean()) if n else np.nan})
        t = pd.DataFrame(recs)
        for m in ("mae", "rmse", "bias"):
            vals = t[m].to_numpy(float)
            if len(levels) == 2:
                t[f"gap_{m}"] = vals - vals[::-1]
            else:
                t[f"gap_{m}"] = vals - np.nanmedian(vals) if np.isfinite(vals).any() else np.nan
        rows.append(t)
    if not rows:
        raise ValueError(f"fairness table: none of the group columns {list(groups)} is present")
    return pd.concat(rows, ignore_index=True)


