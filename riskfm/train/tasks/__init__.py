"""The tasks riskfm trains with :func:`riskfm.train.engine.fit`, one module each.

* :class:`~riskfm.train.tasks.risk_model.RiskModelTask`: the multimodal risk model (stenosis per
  artery, MACE, time-to-event), validated by mean AUROC.
* :class:`~riskfm.train.tasks.calcium_segmentation.CalciumSegmentationTask`: calcium segmentation
  networks on slices or exam crops drawn from a seeded generator (``train_segmenter``).
"""

__all__: list[str] = []
