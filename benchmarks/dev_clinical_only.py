"""Design selection for the clinical encoders: clinical variables ONLY, on development cohorts.

The demo benchmark (``bench_clinical_encoders.py``) is slow (ECG and CT encoders train too) and its
cohort seeds 0, 1, 2 are the ones reported, so designs were chosen here instead: the demo's run
configuration with ``modalities: [clinical]`` (no ECG, no CT), on synthetic cohorts of OTHER seeds
(default 10 and 11; small CT grids, which the clinical-only runs never read), for each encoder
variant in ``--variants``. It prints and writes the external-site AUROC per target and the mean
over the arteries with >= 10 external events, and the mean over seeds.

Run::

    python benchmarks/dev_clinical_only.py --seeds 10 11 --out benchmarks/results/clinical_only_dev.json
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")

ARTERIES = ("stenosis_lm", "stenosis_lad", "stenosis_lcx", "stenosis_rca")

#: label -> ``encoders.clinical`` section.
VARIANTS: dict[str, dict] = {
    "tabular-mlp": {"name": "tabular-mlp"},
    "text-lm": {"name": "text-lm", "freeze": True},
    "lm-tokens": {"name": "clinical-lm-tokens"},
    "lm-tokens-d16": {"name": "clinical-lm-tokens", "kwargs": {"token_dim": 16}},
    "lm-tokens-attn1": {"name": "clinical-lm-tokens", "kwargs": {"n_layers": 1}},
    "lm-tokens-nodrop": {"name": "clinical-lm-tokens", "kwargs": {"token_dropout": 0.0}},
    "lm-tokens-drop03": {"name": "clinical-lm-tokens", "kwargs": {"token_dropout": 0.3}},
}


def run(label: str, clinical: dict, cohort, seed: int, work: Path) -> dict:
    """Train the demo config on clinical variables only; return external AUROCs (model and oracle)."""
    import numpy as np
    from sklearn.metrics import roc_auc_score

    from riskfm.recipes.demo import DEMO_TARGETS, demo_config
    from riskfm.train.run import run_training

    cfg = demo_config(cohort.manifest_path, work / f"{label}_seed{seed}")
    cfg["modalities"] = ["clinical"]
    cfg["encoders"] = {"clinical": clinical}
    cfg["train"]["progress"] = False
    cfg["train"]["resume"] = False
    cfg["evaluate"] = {"n_boot": 20, "figures": False}
    t0 = time.perf_counter()
    result = run_training(cfg)
    seconds = time.perf_counter() - t0
    oracle = cohort.oracle().set_index("patient_id")
    preds = result.predictions[result.predictions["split"] == "external"]
    out = {}
    for target in DEMO_TARGETS:
        p = preds[(preds["target"] == target) & preds["y_true"].notna()]
        y = p["y_true"].to_numpy()
        if y.sum() < 10 or (1 - y).sum() < 10:
            continue
        out[target] = {"auroc": float(roc_auc_score(y, p["y_prob"])),
                       "oracle": float(roc_auc_score(y, oracle.loc[p["patient_id"], f"p_{target}"])),
                       "n_pos": int(y.sum())}
    arteries = [out[a]["auroc"] for a in ARTERIES if a in out]
    return {"targets": out, "artery_auroc": float(np.mean(arteries)), "mace_auroc": out.get("mace_30d", {}).get("auroc"),
            "best_epoch": result.fit.best_epoch, "seconds": seconds}


def main() -> None:
    """Run every variant on every development seed; print and write the results."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--variants", nargs="+", default=list(VARIANTS))
    ap.add_argument("--seeds", nargs="+", type=int, default=[10, 11])
    ap.add_argument("--work", type=Path, default=Path("runs/dev_clinical_only"))
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args()
    import shutil

    import torch

    from riskfm.synthetic import make_cohort

    torch.set_num_threads(1)
    results: dict = json.loads(args.out.read_text()) if args.out and args.out.is_file() else {}
    for seed in args.seeds:
        cohort = make_cohort(n=1000, seed=seed, out_dir=args.work / f"cohort{seed}", ct_shape=(8, 16, 16),
                             n_workers=1, progress=False)
        for label in args.variants:
            shutil.rmtree(args.work / f"{label}_seed{seed}", ignore_errors=True)
            r = run(label, VARIANTS[label], cohort, seed, args.work)
            results.setdefault(label, {})[str(seed)] = r
            print(f"seed {seed} {label:18s} external AUROC arteries {r['artery_auroc']:.3f} MACE "
                  f"{r['mace_auroc']:.3f} best epoch {r['best_epoch']} ({r['seconds']:.0f} s)", flush=True)
            if args.out:
                args.out.write_text(json.dumps(results, indent=2) + "\n")
    for label, by_seed in results.items():
        a = [r["artery_auroc"] for r in by_seed.values()]
        m = [r["mace_auroc"] for r in by_seed.values()]
        print(f"{label:18s} mean over seeds {sorted(by_seed)}: arteries {statistics.fmean(a):.3f}, "
              f"MACE {statistics.fmean(m):.3f}")


if __name__ == "__main__":
    main()
