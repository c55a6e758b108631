"""Training on Lightning Fabric: config, loop, checkpoints, and whole runs."""

from riskfm.train.config import ConfigError, RunConfig, load_config, parse_config

__all__ = ["RunConfig", "ConfigError", "load_config", "parse_config", "run_training", "predict_manifest"]


def __getattr__(name):  # heavy imports (readers, encoders) only when a run is started
    if name in ("run_training", "predict_manifest", "load_run_model"):
        from riskfm.train import run

        return getattr(run, name)
    raise AttributeError(name)
