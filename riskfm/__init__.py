"""riskfm: multimodal cardiovascular risk models from ECG, coronary CT and clinical variables.

Quick start::

    import riskfm

    run = riskfm.train("run.yaml")              # or a dict of the same keys; trains and evaluates
    run = riskfm.load_run("runs/quickstart")    # the same run, later, from its folder
    scores = run.predict("new_patients.csv")    # patient_id, target, y_prob
    metrics = run.evaluate()                    # AUROC with 95% CIs, calibration, ... -> metrics.json
    explained = run.explain(patients=["p001"])  # attribution figures
    riskfm.list_encoders()                      # the encoders a config can name

Everything else lives in the subpackages, each with its own ``__all__``: ``riskfm.evaluate``
(statistics), ``riskfm.plots`` (figures), ``riskfm.ecg``, ``riskfm.ct`` (incl. ``riskfm.ct.calcium``),
``riskfm.clinical``, ``riskfm.data``, ``riskfm.models``, ``riskfm.explain``, ``riskfm.recipes``
(the papers' studies) and ``riskfm.synthetic``. See docs/api.md.
"""

from riskfm._version import __version__

__all__ = ["Run", "__version__", "encoder_info", "list_encoders", "load_run", "register_encoder", "train"]


def __getattr__(name):
    # Lazy: `import riskfm` stays cheap (no torch) until a run is trained or loaded.
    if name in ("Run", "load_run"):
        from riskfm import api

        return getattr(api, name)
    if name == "train":
        import riskfm.train as train_package  # callable: riskfm.train("run.yaml") -> Run

        return train_package
    if name in ("list_encoders", "encoder_info", "register_encoder"):
        from riskfm import encoders

        return getattr(encoders, name)
    raise AttributeError(f"module 'riskfm' has no attribute {name!r}")
