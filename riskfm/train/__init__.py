"""Training on Lightning Fabric: config, loop, checkpoints, and whole runs.

``riskfm.train`` is both this package and the function of the five-line use
(``run = riskfm.train("run.yaml")``, :func:`riskfm.api.train`): the package is made callable,
because ``import riskfm.train.<module>`` would otherwise replace a function of that name on
``riskfm`` with the package the first time a submodule is imported.
"""

import sys
import types

from riskfm.train.config import ConfigError, RunConfig, load_config, parse_config

__all__ = ["RunConfig", "ConfigError", "load_config", "parse_config", "run_training", "predict_manifest",
           "load_run_model"]


def __getattr__(name):  # heavy imports (readers, encoders) only when a run is started
    if name in ("run_training", "predict_manifest", "load_run_model"):
        from riskfm.train import run

        return getattr(run, name)
    raise AttributeError(name)


class _CallableTrainPackage(types.ModuleType):
    def __call__(self, config, /, **overrides):
        """Train and evaluate a run: see :func:`riskfm.api.train`."""
        from riskfm.api import train

        return train(config, **overrides)


sys.modules[__name__].__class__ = _CallableTrainPackage
