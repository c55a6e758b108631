"""What a CT encoder expects of its input (the CT half of the encoder contract)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

#: CORA's four windows as (level, width) in HU: fat, soft tissue, angiographic, calcification.
CORA_WINDOWS: tuple[tuple[float, float], ...] = ((-100.0, 140.0), (50.0, 400.0), (350.0, 700.0), (500.0, 2000.0))


@dataclass(frozen=True)
class CTInputSpec:
    """Preprocessing a CT encoder was trained with.

    Attributes
    ----------
    spacing : (float, float, float)
        Target voxel spacing (z, y, x) in mm; volumes are resampled to it.
    shape : (int, int, int)
        Target array shape (Z, Y, X) in voxels after resampling (centre crop / pad with air).
    windows : tuple of (float, float)
        (level, width) HU windows; each becomes one input channel clipped to
        [level - width/2, level + width/2] and scaled to [0, 1].
    licence, source : str
        Provenance of the weights.
    extra : dict
        Any further settings recorded with the spec.
    """

    #: The batch key that feeds an encoder of this spec (``collate_samples`` output).
    batch_key: ClassVar[str] = "ct"

    spacing: tuple[float, float, float] = (2.0, 1.5, 1.5)
    shape: tuple[int, int, int] = (40, 64, 64)
    windows: tuple[tuple[float, float], ...] = CORA_WINDOWS
    licence: str = "MIT"
    source: str = "riskfm"
    extra: dict = field(default_factory=dict)

    @property
    def in_channels(self) -> int:
        """Number of input channels ``C``: one per window."""
        return len(self.windows)
