"""``riskfm prepare``: fill a run's prepared cache before training, on one machine or N.

``riskfm train`` fills what the cache lacks by itself; preparing first is for large cohorts: the
filling can run on machines without GPUs, split with ``--shard i/N`` across machines that share
the cache folder, and be resumed after an interruption (whole shards are kept).
"""

from __future__ import annotations

import pandas as pd

from riskfm.train.config import RunConfig

__all__ = ["parse_shard", "prepare_run"]


def parse_shard(text: str | None) -> tuple[int, int] | None:
    """Parse ``"i/N"`` (0-based part ``i`` of ``N``) into ``(i, N)``; None for None.

    Raises
    ------
    ValueError
        Not two integers with ``0 <= i < N``.
    """
    if text is None:
        return None
    try:
        i, n = (int(v) for v in str(text).split("/"))
    except ValueError:
        raise ValueError(f"--shard must look like i/N (e.g. 0/4), got {text!r}") from None
    if not 0 <= i < n:
        raise ValueError(f"--shard {text}: need 0 <= i < N")
    return i, n


def prepare_run(cfg: RunConfig, *, part: tuple[int, int] | None = None, workers: int | None = None,
                progress: bool = True) -> pd.DataFrame:
    """Prepare the ECG and CT files of a run's cohort into its prepared cache (what is missing only).

    Parameters
    ----------
    cfg : RunConfig
        The run (its manifest, modalities, encoders, ``data.checks``, ``data.cache_dir``).
    part : (i, N), optional
        Prepare only part ``i`` of ``N`` of the missing files (stable: the same file always falls in
        the same part, whichever machine asks).
    workers : int, optional
        Threads preparing files (default ``data.n_workers``, else ``min(8, CPUs)``).
    progress : bool
        Show progress bars.

    Returns
    -------
    pandas.DataFrame
        One row per modality: ``modality``, ``cache`` (folder), ``files``, ``prepared``, ``failed``,
        ``reused``, ``left_to_other_parts``, ``seconds``, ``size_mb`` (the folder on disk).

    Raises
    ------
    ValueError
        ``data.cache`` is false, or the run has neither ECG nor CT.
    """
    from riskfm.data.dataset import prepare_cohort
    from riskfm.encoders import encoder_input_spec
    from riskfm.train.run import cache_root, load_cohort, plausibility_limits

    root = cache_root(cfg)
    if root is None:
        raise ValueError(f"{cfg.source}: data.cache is false; there is no cache to prepare")
    imaging = [m for m in cfg.modalities if m in ("ecg", "ct") and not (m == "ecg" and cfg.data.ecg_store)]
    if not imaging:
        raise ValueError(f"{cfg.source}: modalities {cfg.modalities} hold no ECG or CT to prepare (an ECG "
                         "store named in data.ecg_store is already prepared)")
    cohort = load_cohort(cfg)
    # The specs are read without building the networks' weights (weights never change a spec).
    specs = {m: encoder_input_spec(cfg.encoders[m].name, **cfg.encoders[m].kwargs) for m in imaging}
    ecg_checks, ct_checks = plausibility_limits(cfg)
    # The same preparation `riskfm train` runs (prepare_cohort), stopped before any array is read.
    prepared = prepare_cohort(cohort, ecg_spec=specs.get("ecg"), ct_spec=specs.get("ct"),
                              n_workers=workers or cfg.data.n_workers, progress=progress,
                              ecg_quality=cfg.data.ecg_quality_filter, ecg_checks=ecg_checks, ct_checks=ct_checks,
                              cache_dir=root, part=part)
    rows = []
    for m in imaging:
        cache, report = prepared.caches[m], prepared.fills[m]
        rows.append({"modality": m, "cache": str(cache.folder),
                     "files": len({p for p in cohort.df[f"{m}_path"] if p}),
                     "prepared": report.prepared, "failed": report.failed, "reused": report.reused,
                     "left_to_other_parts": report.skipped, "seconds": round(report.seconds, 2),
                     "size_mb": round(cache.size_bytes() / 2**20, 1)})
    return pd.DataFrame(rows)

