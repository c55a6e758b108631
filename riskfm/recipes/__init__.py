"""End-to-end protocols built only from riskfm's pieces (the demo, and the papers' recipes).

Every recipe writes its outputs under a folder and returns one :class:`RecipeResult`: ``metrics``
(dict), ``tables`` (DataFrames), ``figures`` and ``files`` (paths), ``extras`` (trained models,
fits) and ``to_dict()`` for JSON.

* ``run_demo``: synthetic cohort -> ECG + CT + clinical model -> AUROC vs the oracle's.
* ``run_low_data``: calcium segmentation trained on 100/75/50/25% of the training folds.
* ``run_fairness``: calcium score errors and their gaps per subgroup, two models.
* ``run_nongated``: non-gated chest CT, segmentation -> slice summaries -> bucket trees;
  ``run_nongated_synthetic`` runs it on synthetic exams (``riskfm cac nongated``).
* ``run_plaque_characterisation``: CORA, calcified / non-calcified plaque present (AUROC).
* ``run_stenosis_detection``: CORA, stenotic lesions (lesion-level precision / recall / F1).
* ``run_artery_segmentation``: CORA, coronary lumen (Dice, clDice, surface distance in mm).
* ``run_data_efficiency``: CORA segmentation at growing training sizes, pretrained vs scratch.
* ``ecg_stenosis``: seed 002's study on a run configuration (``riskfm study ecg-stenosis``): an ECG
  encoder fine-tuned for severe stenosis per artery, then per-artery AUROC beside the paper's,
  the normal-ECG subset, subgroups, risk groups and waveform differences in one HTML report.
* ``cora_mace``: CORA's 30-day MACE study (``riskfm study cora-mace``): CT, clinical text through a
  frozen language model, and both, one training run per arm, AUROCs and paired bootstrap tests.

The recipe functions are imported on first use (``riskfm.recipes.run_demo``), so importing the
package stays cheap.
"""

from riskfm.recipes.result import RecipeResult

__all__ = [
    "CoraMaceOptions",
    "DenseTaskOptions",
    "RecipeResult",
    "cora_mace",
    "ecg_stenosis",
    "run_artery_segmentation",
    "run_data_efficiency",
    "run_demo",
    "run_fairness",
    "run_low_data",
    "run_nongated",
    "run_nongated_synthetic",
    "run_plaque_characterisation",
    "run_stenosis_detection",
]

_WHERE = {
    "CoraMaceOptions": "cora_mace_study",
    "DenseTaskOptions": "cora_common",
    "cora_mace": "cora_mace_study",
    "ecg_stenosis": "ecg_stenosis_study",
    "run_artery_segmentation": "cora_segmentation",
    "run_data_efficiency": "cora_segmentation",
    "run_demo": "demo",
    "run_fairness": "cac_fairness",
    "run_low_data": "cac_low_data",
    "run_nongated": "cac_nongated",
    "run_nongated_synthetic": "cac_nongated",
    "run_plaque_characterisation": "cora_plaque",
    "run_stenosis_detection": "cora_stenosis",
}


def __getattr__(name: str):
    # Lazy: the recipes pull in torch and the CT / ECG stacks only when one is used.
    if name in _WHERE:
        import importlib

        return getattr(importlib.import_module(f"riskfm.recipes.{_WHERE[name]}"), name)
    raise AttributeError(f"module 'riskfm.recipes' has no attribute {name!r}")
