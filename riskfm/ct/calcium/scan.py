"""Score one scan: read, find the heart, check the scan, segment, score -- the library behind ``riskfm cac score``.

:func:`riskfm.ct.calcium.score_calcium` is a pure function of arrays and scores whatever it is
given. :func:`score_scan` is the entry point for a *scan*: it checks first
(:func:`riskfm.ct.calcium.scan_checks.check_calcium_scan`) and refuses, with
:class:`UnsuitableScanError`, a scan on which an Agatston score would be a wrong number with a
clinical category attached (contrast-enhanced, heart not in the field of view, non-axial, slices
outside 1.5-5 mm). ``force=True`` scores it anyway; every finding then travels with the score
(:attr:`ScanScore.findings`, the ``warnings`` column of the per-artery table, ``scan_checks.csv``).

Examples
--------
>>> from riskfm.ct.calcium.scan import score_scan                       # doctest: +SKIP
>>> res = score_scan("patient_001/cac_series/", model="cac_model.pt")   # doctest: +SKIP
>>> res.score.agatston, [str(f) for f in res.findings]                  # doctest: +SKIP
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from riskfm.ct.calcium.scan_checks import Finding, ScanCheckLimits, check_calcium_scan, summarize
from riskfm.ct.calcium.scoring import CalciumScore, score_calcium
from riskfm.ct.volume import CTVolume
from riskfm.errors import RiskfmError

__all__ = ["FINDING_COLUMNS", "ScanScore", "UnsuitableScanError", "score_scan"]

#: Columns of ``scan_checks.csv`` (:meth:`ScanScore.findings_table`).
FINDING_COLUMNS: tuple[str, ...] = ("code", "level", "value", "unit", "limit", "message", "fix", "forced")


class UnsuitableScanError(RiskfmError, ValueError):
    """The scan is not one an Agatston score is defined on; the message lists every finding and ``--force``.

    Attributes
    ----------
    findings : list of Finding
        Every finding of the scan (refusals first).
    source : str
        The scan's path (or ``"<array>"``).
    """

    def __init__(self, source: str, findings: list[Finding]) -> None:
        self.source = source
        self.findings = list(findings)
        refusals = [f for f in self.findings if f.refuses]
        lines = [f"{source}: not suitable for calcium scoring -- the Agatston score is defined on non-contrast, "
                 f"ECG-gated, axial 3 mm cardiac CT, and {len(refusals)} check(s) failed:"]
        lines += [f"  - {f}" for f in refusals]
        others = [f for f in self.findings if not f.refuses]
        if others:
            lines.append("  also flagged:")
            lines += [f"  - {f}" for f in others]
        lines.append("To score it anyway, pass --force (score_scan(..., force=True)): every finding is then printed "
                     "as a WARNING and written next to the score (scan_checks.csv, the 'warnings' column).")
        super().__init__("\n".join(lines))

    def __reduce__(self):  # picklable across worker processes
        return (type(self), (self.source, self.findings))


@dataclass
class ScanScore:
    """Result of :func:`score_scan`.

    Attributes
    ----------
    score : CalciumScore
        The calcium score (per artery with a model, else the total inside the heart region).
    heart_mask : np.ndarray
        bool ``[Z, Y, X]``: the region scored (given mask or estimate).
    labels : np.ndarray
        uint8 ``[Z, Y, X]``: artery labels of the scored calcium (with a model), else 1 on every
        voxel >= threshold inside the heart region (drawn as one colour).
    findings : list of Finding
        Every scan-check finding, refusals first (forced past when any is a refusal).
    volume : CTVolume
        The scan.
    roi_source : {"given", "estimated"}
    method : {"model", "threshold"}
        Model segmentation, or a threshold inside the heart region (no artery split).
    """

    score: CalciumScore
    heart_mask: np.ndarray
    labels: np.ndarray
    findings: list[Finding]
    volume: CTVolume
    roi_source: str = "estimated"
    method: str = "threshold"
    settings: dict[str, Any] = field(default_factory=dict)

    @property
    def refusals(self) -> list[Finding]:
        """The refusal-level findings (non-empty only for a forced score)."""
        return [f for f in self.findings if f.refuses]

    @property
    def forced(self) -> bool:
        """True when the scan was scored despite a refusal-level finding."""
        return bool(self.refusals)

    def warning_lines(self) -> list[str]:
        """One ``WARNING ...`` line per finding, for the terminal and logs."""
        out = []
        for f in self.findings:
            tag = "WARNING (forced past a refusal)" if f.refuses else "WARNING"
            out.append(f"{tag}: {f}")
        return out

    def table(self) -> pd.DataFrame:
        """Per-artery table of :meth:`CalciumScore.table` plus ``warnings`` (every finding, or empty)."""
        table = self.score.table()
        table["warnings"] = summarize(self.findings)
        return table

    def findings_table(self) -> pd.DataFrame:
        """One row per finding, columns :data:`FINDING_COLUMNS` (no rows for a clean scan)."""
        rows = [{**f.to_dict(), "forced": f.refuses} for f in self.findings]
        return pd.DataFrame(rows, columns=list(FINDING_COLUMNS))

    def write(self, out: str | os.PathLike) -> dict[str, Path]:
        """Write ``per_artery.csv`` (with ``warnings``), ``lesions.csv`` and ``scan_checks.csv`` under ``out``."""
        out = Path(out)
        out.mkdir(parents=True, exist_ok=True)
        paths = {"per_artery": out / "per_artery.csv", "lesions": out / "lesions.csv",
                 "scan_checks": out / "scan_checks.csv"}
        self.table().to_csv(paths["per_artery"])
        self.score.lesions.to_csv(paths["lesions"], index=False)
        self.findings_table().to_csv(paths["scan_checks"], index=False)
        return paths


def _read_volume(scan: Any) -> CTVolume:
    if isinstance(scan, CTVolume):
        return scan
    if isinstance(scan, str | os.PathLike):
        from riskfm.ct import read_ct

        return read_ct(scan)
    raise TypeError(f"scan must be a path (DICOM folder / NIfTI file) or a CTVolume, got {type(scan).__name__}; "
                    "for arrays use CTVolume(hu, spacing)")


def _read_mask(roi: Any, volume: CTVolume) -> np.ndarray:
    if isinstance(roi, str | os.PathLike):
        from riskfm.ct import read_ct

        mask = read_ct(roi).array > 0.5
        where = f"{roi}: ROI grid"
    else:
        mask = np.asarray(roi.array if isinstance(roi, CTVolume) else roi) > 0.5
        where = "ROI grid"
    if mask.shape != volume.shape:
        raise ValueError(f"{where} {mask.shape} differs from the CT grid {volume.shape}")
    return mask


def _segmenter(model: Any):
    if model is None or hasattr(model, "predict"):
        return model
    from riskfm.ct.calcium.segmentation import load_segmenter

    return load_segmenter(model)


def score_scan(
    scan: str | os.PathLike | CTVolume,
    *,
    model: Any | None = None,
    roi: Any | None = None,
    threshold: float = 130.0,
    min_area_mm2: float = 1.0,
    slice_increment: float | None = None,
    slice_thickness: float | None = None,
    calibration_factor: float | None = None,
    force: bool = False,
    limits: ScanCheckLimits | None = None,
) -> ScanScore:
    """Check one scan and score its coronary calcium.

    Parameters
    ----------
    scan : path or CTVolume
        DICOM series folder or NIfTI file (read with :func:`riskfm.ct.read_ct`), or a volume
        (``CTVolume(hu, spacing)`` for arrays).
    model : CalciumSegmenter or path, optional
        Trained segmentation model (``riskfm cac train``): per-artery scores. Without one the
        score is the total of everything >= ``threshold`` inside the heart region (aortic and
        valve calcium included).
    roi : path, CTVolume or array of bool, optional
        Heart mask on the scan's grid; default estimated from the CT
        (:func:`riskfm.ct.calcium.roi.estimate_heart_roi`).
    threshold, min_area_mm2, slice_increment, calibration_factor
        As in :func:`riskfm.ct.calcium.score_calcium`.
    slice_thickness : float, optional
        Reconstructed slice thickness (mm) for the checks; default the DICOM SliceThickness, else
        the slice spacing.
    force : bool, default False
        Score a scan that fails a refusal-level check; every finding is kept with the result.
    limits : ScanCheckLimits, optional
        Thresholds of the checks.

    Returns
    -------
    ScanScore

    Raises
    ------
    UnsuitableScanError
        A refusal-level finding and ``force`` is False (the message lists every finding, its
        measured value and the fix).
    ValueError
        Unreadable scan, ROI on another grid, bad scoring parameters.
    """
    from riskfm.progress import status

    segmenter = _segmenter(model)  # a bad model fails before the CT is read
    if not isinstance(scan, CTVolume):
        status(f"reading {scan}")
    volume = _read_volume(scan)
    hu = volume.array
    source = str(volume.meta.get("source") or (scan if not isinstance(scan, CTVolume) else "<array>"))
    region = None
    if roi is not None:
        mask = _read_mask(roi, volume)
        roi_source = "given"
    else:
        from riskfm.ct.calcium.roi import heart_region

        status("estimating the heart region")
        region = heart_region(hu, volume.spacing)
        mask = region.roi
        roi_source = "estimated"
    status("checking the scan (contrast, heart in view, slices, orientation)")
    findings = check_calcium_scan(volume, mask if roi_source == "given" else None, region=region,
                                  slice_thickness=slice_thickness, slice_increment=slice_increment, limits=limits)
    if any(f.refuses for f in findings) and not force:
        raise UnsuitableScanError(source, findings)
    kwargs = dict(threshold=threshold, min_area_mm2=min_area_mm2, slice_increment=slice_increment,
                  calibration_factor=calibration_factor)
    if segmenter is not None:
        status("segmenting coronary calcium")
        from riskfm.ct.calcium.segmentation import CalciumSegmenter

        extra = {"progress": "segmenting calcium"} if isinstance(segmenter, CalciumSegmenter) else {}
        labels = np.asarray(segmenter.predict(hu, volume.spacing, roi=mask, **extra), dtype=np.uint8)
        result = score_calcium(hu, volume.spacing, labels=labels, **kwargs)
        method = "model"
    else:
        result = score_calcium(hu, volume.spacing, roi=mask, **kwargs)
        labels = np.zeros(hu.shape, np.uint8)
        labels[(hu >= threshold) & mask] = 1
        method = "threshold"
    settings = {"source": source, "roi": roi_source, "method": method, "force": bool(force)}
    return ScanScore(result, mask, labels, findings, volume, roi_source, method, settings)
