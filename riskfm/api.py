"""The public entry points: train a run, load it back, and use it.

The whole use in five lines (README, tested verbatim in ``tests/test_api.py``)::

    import riskfm

    run = riskfm.train("run.yaml")              # or a dict of the same keys; trains and evaluates
    run = riskfm.load_run("runs/quickstart")    # the same run, later, from its folder
    scores = run.predict("new_patients.csv")    # patient_id, target, y_prob (one row per patient and target)
    metrics = run.evaluate()                    # AUROC with 95% CIs, calibration, ... -> metrics.json
    explained = run.explain(patients=["p001"])  # attribution figures for one or more patients
    riskfm.list_encoders()                      # the encoders a config can name

:class:`Run` is a handle on a run *folder* (what ``riskfm train`` writes, see
:mod:`riskfm.train.run`): everything it returns is read from or written to that folder, so a run
trained yesterday on a GPU machine and copied to a laptop behaves the same as one trained a
minute ago. The model is loaded once, lazily, on the CPU, with ``weights_only=True``.
"""

from __future__ import annotations

import logging
import os
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # heavy modules (torch, readers) load only when a run is trained or used
    import pandas as pd

    from riskfm.explain.run import ExplainRunResult
    from riskfm.train.config import RunConfig
    from riskfm.train.engine import EngineResult
    from riskfm.train.run import LoadedRunModel

__all__ = ["Run", "load_run", "train"]

log = logging.getLogger(__name__)


class Run:
    """A trained run, by its output folder.

    Parameters
    ----------
    out_dir : str or path
        The ``out`` folder of a finished ``riskfm train`` (it holds ``model.pt``).
    fit : EngineResult, optional
        The training history, when the run was trained in this process (:func:`train`).

    Attributes
    ----------
    out_dir : Path
        Absolute path of the run folder.
    fit : EngineResult or None
        Best epoch, its validation AUROC and the per-epoch history (None for a loaded run; the
        history is in ``out_dir/history.csv``).

    Raises
    ------
    FileNotFoundError
        ``out_dir`` is not a finished run folder (no ``model.pt``).
    """

    def __init__(self, out_dir: str | os.PathLike, *, fit: EngineResult | None = None) -> None:
        self.out_dir = Path(out_dir).expanduser().absolute()  # the handle survives a change of directory
        if not (self.out_dir / "model.pt").is_file():
            what = "does not exist" if not self.out_dir.exists() else "has no model.pt"
            raise FileNotFoundError(f"{self.out_dir}: not a finished run folder ({what}); give the `out` folder "
                                    "of a completed `riskfm train`")
        self.fit = fit
        self._loaded: LoadedRunModel | None = None

    def __repr__(self) -> str:
        return f"Run({str(self.out_dir)!r})"

    # -- what the run holds ----------------------------------------------------------------------
    @property
    def loaded(self) -> LoadedRunModel:
        """The model with its configuration and clinical-variable preprocessing (loaded on first use)."""
        if self._loaded is None:
            from riskfm.train.run import load_run_model

            self._loaded = load_run_model(self.out_dir)
        return self._loaded

    @property
    def model(self) -> Any:
        """The trained :class:`~riskfm.models.risk_model.RiskModel`, in eval mode on the CPU."""
        return self.loaded.model

    @property
    def config(self) -> RunConfig:
        """The run's validated configuration (as stored in ``model.pt``)."""
        return self.loaded.config

    @property
    def targets(self) -> list[str]:
        """The targets the model predicts (``stenosis_rca``, ..., ``mace_30d``, ``risk_score``)."""
        return list(self.model.targets)

    @property
    def predictions(self) -> pd.DataFrame:
        """The run's own predictions (``predictions.csv``: one row per patient, split and target)."""
        from riskfm.evaluate.run_metrics import read_predictions

        return read_predictions(self.out_dir / "predictions.csv")

    @property
    def metrics(self) -> dict[str, Any]:
        """The run's ``metrics.json``: ``{split: {target: {...}}}``."""
        from riskfm.evaluate.run_metrics import read_metrics

        return read_metrics(self.out_dir / "metrics.json")

    # -- using it --------------------------------------------------------------------------------
    def predict(self, manifest: str | os.PathLike, *, batch_size: int = 32,
                on_missing_file: str = "exclude") -> pd.DataFrame:
        """Score the patients of another manifest with this run's model.

        Parameters
        ----------
        manifest : str or path
            A manifest in the training manifest's format (CSV, TSV or Parquet); label columns may
            be empty or absent.
        batch_size : int
            Patients per forward pass.
        on_missing_file : {"exclude", "error", "missing"}
            What a missing ECG / CT file does: exclude the patient (counted, with the reason),
            stop with an error, or score the patient without that modality.

        Returns
        -------
        pandas.DataFrame
            ``patient_id, split ("predict"), target, y_true, y_prob, site, time_to_event_days,
            event``: one row per scored patient and target; ``y_prob`` is a probability in [0, 1]
            (for ``risk_score``, a log-hazard). ``df.attrs["exclusions"]`` holds the excluded
            patients with their reasons, and a warning says how many there were.
        """
        from riskfm.train.run import predict_loaded

        preds, cohort = predict_loaded(self.loaded, manifest, batch_size=batch_size,
                                       on_missing_file=on_missing_file)
        excluded = cohort.exclusions
        if len(excluded):
            warnings.warn(f"{manifest}: {len(excluded)} patient(s) excluded and not scored "
                          f"({'; '.join(sorted(set(map(str, excluded['reason']))))}); see "
                          "the result's .attrs['exclusions']", stacklevel=2)
        preds.attrs["exclusions"] = excluded
        return preds

    def evaluate(self, predictions: pd.DataFrame | str | os.PathLike | None = None, *,
                 out: str | os.PathLike | None = None, spec: Any = None) -> dict[str, Any]:
        """Evaluate predictions with the run's evaluation settings: metrics.json, tables, figures, report.html.

        Parameters
        ----------
        predictions : DataFrame or path, optional
            Long-format predictions (default: the run's own ``predictions.csv``), e.g. the output
            of :meth:`predict` on an external cohort with its labels.
        out : str or path, optional
            Output folder (default ``out_dir/evaluation``; the run's own metrics.json is never
            overwritten).
        spec : EvaluationSpec, dict or YAML path, optional
            What to compute (default: the run config's ``evaluate`` section, as at training).

        Returns
        -------
        dict
            The metrics written to ``out/metrics.json`` (``{split: {target: {...}}}``).
        """
        from riskfm.evaluate import evaluate
        from riskfm.evaluate.run_metrics import read_predictions
        from riskfm.train.run import evaluation_covariates, evaluation_spec

        if predictions is None:
            preds = self.predictions
        elif isinstance(predictions, (str, os.PathLike)):
            preds = read_predictions(predictions)
        else:
            preds = predictions
        # risk_score is a log-hazard, not a probability: the run's evaluation leaves it out too
        preds = preds[preds["target"] != "risk_score"]
        return evaluate(preds, Path(out) if out is not None else self.out_dir / "evaluation",
                        spec=spec if spec is not None else evaluation_spec(self.config),
                        covariates=evaluation_covariates(self.config.manifest),
                        title=f"riskfm evaluation: {self.out_dir.name}")

    def explain(self, patients: list[str], *, out: str | os.PathLike | None = None, **kwargs: Any
                ) -> ExplainRunResult:
        """Attribution figures of ``patients`` (ECG, CT and clinical variables) and of the cohort.

        Parameters
        ----------
        patients : list of str
            Patient ids of the run's manifest (or of ``manifest=`` given in ``kwargs``).
        out : str or path, optional
            Output folder (default ``out_dir/explain``).
        **kwargs
            Passed to :func:`riskfm.explain.run.explain_run` (``target``, ``manifest``,
            ``ecg_method``, ``cohort_size``, ``sanity``, ...).

        Returns
        -------
        ExplainRunResult
            The files written and the numbers behind them.
        """
        from riskfm.explain.run import explain_run

        return explain_run(self.out_dir, list(patients), out, **kwargs)


def train(config: str | os.PathLike | dict | RunConfig, /, **overrides: Any) -> Run:
    """Train and evaluate a run from a configuration; return it as a :class:`Run`.

    Parameters
    ----------
    config : str, path, dict or RunConfig
        A YAML run configuration (``riskfm train`` format; docs/training.md), or the same keys as
        a dict. Relative paths in a file are taken from the file's folder.
    **overrides
        Dotted keys with ``__`` for the dots, applied on top (e.g. ``train__epochs=3``,
        ``out="runs/x"``).

    Returns
    -------
    Run
        The finished run; its folder holds ``model.pt``, ``predictions.csv``, ``metrics.json``,
        figures and the report.
    """
    import copy

    from riskfm.train.config import RunConfig, apply_overrides, load_config, parse_config
    from riskfm.train.run import run_training

    dotted = {k.replace("__", "."): v for k, v in overrides.items()}
    if isinstance(config, RunConfig):
        cfg = parse_config(apply_overrides(config.model_dump(mode="json"), dotted)) if dotted else config
    elif isinstance(config, dict):
        cfg = parse_config(apply_overrides(copy.deepcopy(config), dotted))  # the caller's dict stays as it was
    else:
        cfg = load_config(config, dotted)
    result = run_training(cfg)
    return Run(result.out_dir, fit=result.fit)


def load_run(out_dir: str | os.PathLike) -> Run:
    """Open a finished run folder (see :class:`Run`)."""
    return Run(out_dir)
