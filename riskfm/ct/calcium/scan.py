"""Score one scan: read, find the heart, check the scan, segment, score -- the library behind ``riskfm cac score``.

:func:`riskfm.ct.calcium.score_calcium` is a pure function of arrays and scores whatever it is
given. :func:`score_scan` is the entry point for a *scan*: it checks first
(:func:`riskfm.ct.calcium.scan_checks.check_calcium_scan`) and refuses, with
:class:`UnsuitableScanError`, a scan on which an Agatston score would be a wrong number with a
clinical category attached (contrast-enhanced, heart not in the field of view, non-axial, slices
outside 1.5-5 mm). ``force=True`` scores it anyway; every finding then travels with the score
(:attr:`CalciumReport.findings`, the ``warnings`` column of the per-artery table,
``scan_checks.csv``). The result, a :class:`CalciumReport`, writes its tables
(:meth:`CalciumReport.write`), draws its overlay (:meth:`CalciumReport.plot`) and turns into a
JSON-able dict (:meth:`CalciumReport.to_dict`).

Examples
--------
>>> from riskfm.ct.calcium import score_scan                              # doctest: +SKIP
>>> report = score_scan("patient_001/cac_series/", model="cac_model.pt")  # doctest: +SKIP
>>> report.agatston, report.category, [str(f) for f in report.findings]   # doctest: +SKIP
>>> report.write("results/p001"); report.plot("results/p001/overlay.png") # doctest: +SKIP
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from riskfm.ct.calcium.categories import BUCKET_NAMES, CAC_DRS_NAMES
from riskfm.ct.calcium.scan_checks import Finding, ScanCheckLimits, check_calcium_scan, summarize
from riskfm.ct.calcium.scoring import CalciumScore, score_calcium
from riskfm.ct.volume import CTVolume
from riskfm.errors import RiskfmError

__all__ = ["FINDING_COLUMNS", "CalciumReport", "ScanScore", "UnsuitableScanError", "load_calcium_model",
           "score_scan"]

#: Columns of ``scan_checks.csv`` (:meth:`CalciumReport.findings_table`).
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


def _from_score(name: str, doc: str) -> property:
    """Return a read-only property answering ``self.score.<name>`` (the :class:`CalciumScore`'s value)."""
    return property(lambda self: getattr(self.score, name), doc=doc)


@dataclass
class CalciumReport:
    """The calcium score of one scan with everything it rests on: the result of :func:`score_scan`.

    Attributes
    ----------
    score : CalciumScore
        The calcium score (per artery with a model, else the total inside the heart region).
    heart_mask : np.ndarray
        bool ``[Z, Y, X]``: the region scored (given mask or estimate), on the scan's grid.
    labels : np.ndarray
        uint8 ``[Z, Y, X]``: artery labels of the scored calcium (1 LM, 2 LAD, 3 LCX, 4 RCA) with a
        model, else 1 on every voxel >= threshold inside the heart region (drawn as one colour).
    findings : list of Finding
        Every scan-check finding, refusals first (forced past when any is a refusal).
    volume : CTVolume
        The scan (HU ``[Z, Y, X]``, spacing in mm).
    roi_source : {"given", "estimated"}
        Whether the heart mask was given or estimated from the CT.
    method : {"model", "threshold"}
        Model segmentation, or a threshold inside the heart region (no artery split).
    settings : dict
        ``source`` (the scan's path), ``roi``, ``method``, ``force``.
    """

    score: CalciumScore
    heart_mask: np.ndarray
    labels: np.ndarray
    findings: list[Finding]
    volume: CTVolume
    roi_source: str = "estimated"
    method: str = "threshold"
    settings: dict[str, Any] = field(default_factory=dict)

    agatston = _from_score("agatston", "float: total Agatston score of the scan (unitless).")
    volume_mm3 = _from_score("volume_mm3", "float: total calcium volume score in mm^3.")
    mass_mg = _from_score("mass_mg", "float: total calcium mass in mg hydroxyapatite (NaN without calibration).")
    per_artery = _from_score("per_artery", "dict of str -> ArteryScore: ``LM``, ``LAD``, ``LCX``, ``RCA`` -> "
                                           "Agatston / volume (mm^3) / mass (mg); empty without a model.")
    bucket = _from_score("bucket", "int: Agatston risk bucket 0-4 (0, 1-10, 11-100, 101-400, >400).")
    cac_drs = _from_score("cac_drs", "int: CAC-DRS Agatston category 0-3 (0, 1-99, 100-299, >=300).")

    @property
    def category(self) -> str:
        """The Agatston bucket as displayed: ``"0"``, ``"1-10"``, ``"11-100"``, ``"101-400"`` or ``">400"``."""
        return BUCKET_NAMES[self.bucket]

    @property
    def cac_drs_category(self) -> str:
        """The CAC-DRS category as displayed: ``"0"``, ``"1-99"``, ``"100-299"`` or ``">=300"``."""
        return CAC_DRS_NAMES[self.cac_drs]

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

    def to_dict(self) -> dict[str, Any]:
        """JSON-able summary: totals, per-artery scores, categories, findings and settings.

        Returns
        -------
        dict
            ``agatston``, ``volume_mm3``, ``mass_mg`` (NaN without calibration), ``n_lesions``,
            ``bucket`` / ``category`` (Agatston bucket index and name), ``cac_drs`` /
            ``cac_drs_category``, ``per_artery`` (artery -> ``agatston``, ``volume_mm3``,
            ``mass_mg``, ``n_lesions``), ``method``, ``roi_source``, ``forced``, ``findings`` (one
            dict per finding, as in ``scan_checks.csv``) and ``settings`` (scoring conventions and
            how the scan was scored).
        """
        out = self.score.to_dict()
        out.update(category=self.category, cac_drs_category=self.cac_drs_category, method=self.method,
                   roi_source=self.roi_source, forced=self.forced,
                   findings=[{**f.to_dict(), "forced": f.refuses} for f in self.findings],
                   settings={**self.score.settings, **self.settings})
        return out

    def write(self, out: str | os.PathLike) -> dict[str, Path]:
        """Write ``per_artery.csv`` (with ``warnings``), ``lesions.csv`` and ``scan_checks.csv`` under ``out``.

        Returns
        -------
        dict of str -> Path
            ``per_artery``, ``lesions``, ``scan_checks``.
        """
        out = Path(out)
        out.mkdir(parents=True, exist_ok=True)
        paths = {"per_artery": out / "per_artery.csv", "lesions": out / "lesions.csv",
                 "scan_checks": out / "scan_checks.csv"}
        self.table().to_csv(paths["per_artery"])
        self.score.lesions.to_csv(paths["lesions"], index=False)
        self.findings_table().to_csv(paths["scan_checks"], index=False)
        return paths

    def plot(self, path: str | os.PathLike) -> Path:
        """Save the overlay PNG: the slice with the most calcium, arteries coloured.

        Drawn by :func:`riskfm.plots.calcium.calcium_overlay`; its title turns red with a warning
        when the scan has scan-check findings.

        Returns
        -------
        Path
            The PNG written.
        """
        from riskfm.plots.calcium import calcium_overlay

        return calcium_overlay(self.volume.array, self.labels, path, flagged=bool(self.findings))


#: The earlier name of :class:`CalciumReport` (kept for code that imports it).
ScanScore = CalciumReport


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


def load_calcium_model(path: str | os.PathLike) -> Any:
    """Load a calcium segmentation model (``riskfm cac train``) with short, file-naming errors.

    :func:`riskfm.ct.calcium.segmentation.load_segmenter` reads the file; a file it cannot make
    a model of (torch's several-paragraph ``UnpicklingError`` / ``RuntimeError``, a config of
    another version) is read again with :func:`riskfm.train.checkpoint.load_checkpoint`, whose
    message is one line, or else reported as not a calcium model of this version.

    Parameters
    ----------
    path : str or PathLike
        The ``.pt`` file (local).

    Returns
    -------
    CalciumSegmenter

    Raises
    ------
    FileNotFoundError
        No such file.
    CheckpointError
        Unreadable, refused by ``weights_only`` loading, or not a model this version can build.
    """
    from riskfm.ct.calcium.segmentation import load_segmenter
    from riskfm.errors import CheckpointError
    from riskfm.train.checkpoint import load_checkpoint

    try:
        return load_segmenter(path)
    except (RiskfmError, ValueError, PermissionError, FileNotFoundError, IsADirectoryError):
        raise  # already name the file (torch's OSError(22) on a truncated file does not: handled below)
    except Exception as exc:  # noqa: BLE001 - re-raised below with the file named
        load_checkpoint(path)  # raises a CheckpointError when the file itself is unreadable or refused
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise CheckpointError(f"{path}: not a calcium model this riskfm version can load ({first}); "
                              "train one with `riskfm cac train`") from exc


def _segmenter(model: Any):
    if model is None or hasattr(model, "predict"):
        return model
    return load_calcium_model(model)


def score_scan(
    path: str | os.PathLike | CTVolume,
    model: Any | None = None,
    heart_mask: Any | None = None,
    *,
    threshold: float = 130.0,
    min_area_mm2: float = 1.0,
    slice_increment: float | None = None,
    slice_thickness: float | None = None,
    calibration_factor: float | None = None,
    force: bool = False,
    limits: ScanCheckLimits | None = None,
    roi: Any | None = None,
) -> CalciumReport:
    """Check one scan and score its coronary calcium.

    Parameters
    ----------
    path : path or CTVolume
        DICOM series folder or NIfTI file of a non-contrast cardiac CT (read with
        :func:`riskfm.ct.read_ct`), or a volume (``CTVolume(hu, spacing)`` for arrays: HU
        ``[Z, Y, X]``, spacing in mm).
    model : CalciumSegmenter or path, optional
        Trained segmentation model (``riskfm cac train``; a path is loaded with
        :func:`load_calcium_model` before the CT is read): per-artery scores. Without one the
        score is the total of everything >= ``threshold`` inside the heart region (aortic and
        valve calcium included).
    heart_mask : path, CTVolume or array of bool, optional
        Heart mask ``[Z, Y, X]`` on the scan's grid (NIfTI file, volume or array; > 0.5 is
        inside); default estimated from the CT (:func:`riskfm.ct.calcium.roi.heart_region`).
    threshold : float, default 130.0
        Calcium threshold in HU.
    min_area_mm2 : float, default 1.0
        Smallest lesion counted, in mm^2 per slice.
    slice_increment : float, optional
        Distance between slice centres in mm (default: the z spacing); scales Agatston and volume.
    slice_thickness : float, optional
        Reconstructed slice thickness (mm) for the checks; default the DICOM SliceThickness, else
        the slice spacing.
    calibration_factor : float, optional
        mg HA/cm^3 per HU, for the mass score (NaN without).
    force : bool, default False
        Score a scan that fails a refusal-level check; every finding is kept with the result.
    limits : ScanCheckLimits, optional
        Thresholds of the checks.
    roi : optional
        The earlier name of ``heart_mask`` (give one of them).

    Returns
    -------
    CalciumReport
        Totals and per-artery Agatston / volume (mm^3) / mass (mg), the categories, the scan-check
        findings, the heart mask and labels scored.

    Raises
    ------
    UnsuitableScanError
        A refusal-level finding and ``force`` is False (the message lists every finding, its
        measured value and the fix).
    FileNotFoundError, CheckpointError
        A model path that is missing or not a loadable calcium model.
    ValueError
        Unreadable scan, heart mask on another grid, bad scoring parameters.
    TypeError
        ``path`` is an array (wrap it: ``CTVolume(hu, spacing)``).
    """
    from riskfm.progress import status

    if roi is not None and heart_mask is not None:
        raise ValueError("give the heart mask once: heart_mask= (roi= is its earlier name)")
    heart_mask = heart_mask if heart_mask is not None else roi
    segmenter = _segmenter(model)  # a bad model fails before the CT is read
    if not isinstance(path, CTVolume):
        status(f"reading {path}")
    volume = _read_volume(path)
    hu = volume.array
    source = str(volume.meta.get("source") or (path if not isinstance(path, CTVolume) else "<array>"))
    region = None
    if heart_mask is not None:
        mask = _read_mask(heart_mask, volume)
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
    return CalciumReport(result, mask, labels, findings, volume, roi_source, method, settings)
