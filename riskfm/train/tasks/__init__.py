"""The tasks riskfm trains with :func:`riskfm.train.engine.fit`, one module each.

* :class:`~riskfm.train.tasks.risk_model.RiskModelTask`: the multimodal risk model (stenosis per
  artery, MACE, time-to-event), validated by mean AUROC.
"""

__all__: list[str] = []
