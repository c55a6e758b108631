"""riskfm: multimodal cardiovascular risk models from ECG, coronary CT and clinical variables.

Quick start::

    from riskfm.synthetic import make_cohort
    from riskfm.train import run_training

    cohort = make_cohort(n=300, seed=0, out_dir="cohort")
    result = run_training({"manifest": str(cohort.manifest_path), "out": "run",
                           "split": {"external_sites": ["site_ext"]}, "train": {"epochs": 3}})
    print(result.metrics["external"]["mace_30d"])
"""

__version__ = "0.1.0"
