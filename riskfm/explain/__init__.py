"""Interpretability with Captum: waveform, voxel, clinical-variable and modality attributions, sanity checks.

* :func:`explain` attributes a RiskModel's prediction for any target (``"mace_30d"``,
  ``("stenosis", "LAD")``) to one modality's input: ECG (Integrated Gradients, GradientShap, Occlusion,
  Saliency, 1D Grad-CAM), CT (3D Grad-CAM, Occlusion, Integrated Gradients), clinical variables
  (LayerIntegratedGradients on a language model's token embeddings rolled up to variables; feature
  ablation for a tabular encoder), or to the modalities themselves (Shapley values, a removed
  modality treated as missing). It returns an :class:`Attribution` aligned with the input, with
  ``.plot()`` and ``.to_numpy()``.
* :mod:`riskfm.explain.beat_space` moves ECG maps into median-beat space (R peaks by neurokit2 on lead II);
  :mod:`riskfm.explain.waveforms` compares the median beats of high- and low-risk patients.
* :mod:`riskfm.explain.sanity`: cascading parameter randomisation (Adebayo et al., 2018) and
  deletion / insertion curves.
* :func:`explain_run` writes the figures of chosen patients of a trained run (``riskfm explain``).

See docs/explain.md.
"""

from riskfm.explain.api import METHODS, explain
from riskfm.explain.attribution import (
    Attribution,
    ClinicalAttribution,
    CTAttribution,
    ECGAttribution,
    ModalityAttribution,
)
from riskfm.explain.beat_space import BeatSpaceAttribution, paste_beats, to_median_beat
from riskfm.explain.sanity import cascading_randomisation, deletion_insertion
from riskfm.explain.targets import resolve_target
from riskfm.explain.waveforms import MedianBeatComparison, cohort_median_beats, compare_median_beats

__all__ = [
    "METHODS",
    "Attribution",
    "BeatSpaceAttribution",
    "CTAttribution",
    "ClinicalAttribution",
    "ECGAttribution",
    "MedianBeatComparison",
    "ModalityAttribution",
    "cascading_randomisation",
    "cohort_median_beats",
    "compare_median_beats",
    "deletion_insertion",
    "explain",
    "explain_run",
    "paste_beats",
    "resolve_target",
    "to_median_beat",
]


def explain_run(*args, **kwargs):
    """Write the explanation figures of chosen patients of a run (see :func:`riskfm.explain.run.explain_run`)."""
    from riskfm.explain.run import explain_run as _explain_run

    return _explain_run(*args, **kwargs)
