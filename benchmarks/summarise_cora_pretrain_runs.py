"""How much does the CORA pretraining benchmark depend on WHICH pretraining run the seeds share?

``bench_cora_pretrain.py`` pretrains once and fine-tunes that one checkpoint for every seed, so its
seed spread covers the split and the fine-tuning initialisation only. This script reads several of
its result files that differ only in ``--pretrain-seed`` (same cohorts, same fine-tuning seeds) and
reports, per label and for the mean of both labels:

* per pretraining run: the pretrained arm's AUROC (mean over the fine-tuning seeds), the frozen
  probe's and the zero-shot any-plaque AUROC, and the pretraining loss;
* across pretraining runs: mean, sample SD (ddof 1), min and max;
* the scratch arm (it never sees the pretrained checkpoint, so every file that ran it must hold the
  same numbers; this is checked) and the paired difference pretrained - scratch for every
  (pretraining run, fine-tuning seed) pair, with how many are positive.

Run::

    python benchmarks/summarise_cora_pretrain_runs.py --n-train 100 \
        benchmarks/results/cora_pretrain_engine.json benchmarks/results/cora_pretrain_pseed1.json \
        benchmarks/results/cora_pretrain_pseed2.json --out benchmarks/results/cora_pretrain_runs_n100.json
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

TARGETS = ("plaque_calcified", "plaque_noncalcified")
KEYS = (*TARGETS, "mean_auroc")


def _auroc(entry: dict, key: str) -> float:
    """An arm's AUROC for one label (stored with its CI) or the mean of both labels (a number)."""
    return float(entry[key]["auroc"] if key in TARGETS else entry[key])


def _spread(values: list[float]) -> dict:
    """Mean, sample SD, min and max of one quantity across pretraining runs."""
    v = np.asarray(values, dtype=float)
    return {"mean": float(v.mean()), "sd": float(v.std(ddof=1)) if len(v) > 1 else None,
            "min": float(v.min()), "max": float(v.max()), "n_runs": len(v)}


def _run_summary(path: Path, n_train: int, pool: str) -> tuple[dict, dict]:
    """One result file: its pretraining run's summary and its per-seed entries."""
    data = json.loads(path.read_text())
    pre = data["pretrain"]
    if "seed" not in pre and "loss_first_20pct" not in pre:
        raise ValueError(f"{path}: its pretraining was reused (--pretrained), so its pretraining seed is unknown")
    per_seed = data["plaque_characterisation"]["results"][pool][str(n_train)]["per_seed"]
    pretrained = {k: float(np.mean([_auroc(per_seed[s]["pretrained"], k) for s in per_seed])) for k in KEYS}
    run = {"file": path.name, "pretrain_seed": int(pre.get("seed", data["cohort_seed"])),
           "loss_first_20pct": pre["loss_first_20pct"], "loss_last_20pct": pre["loss_last_20pct"],
           "pretrained": pretrained, "fine_tune_seeds": sorted(int(s) for s in per_seed)}
    if "probe" in per_seed[next(iter(per_seed))]:
        run["probe_pretrained"] = float(np.mean([per_seed[s]["probe"]["pretrained"]["mean_auroc"] for s in per_seed]))
        run["probe_untrained"] = float(np.mean([per_seed[s]["probe"]["untrained"]["mean_auroc"] for s in per_seed]))
    zero = data.get("zero_shot_any_plaque")
    if zero:
        run["zero_shot_pretrained"] = zero["pretrained"]["auroc"]
    return run, per_seed


def summarise(paths: list[Path], n_train: int, pool: str = "max") -> dict:
    """Summaries per pretraining run and across runs (see the module docstring)."""
    runs, per_seeds = zip(*(_run_summary(p, n_train, pool) for p in paths))
    seeds = [r["pretrain_seed"] for r in runs]
    if len(set(seeds)) != len(seeds):
        raise ValueError(f"two files share a pretraining seed ({seeds}): they are the same pretraining run")
    if len({tuple(r["fine_tune_seeds"]) for r in runs}) != 1:
        raise ValueError("the files fine-tune on different seeds; compare like with like")
    scratch = None
    for path, per_seed in zip(paths, per_seeds):
        if "scratch_full" not in per_seed[next(iter(per_seed))]:
            continue
        this = {s: {k: _auroc(per_seed[s]["scratch_full"], k) for k in KEYS} for s in per_seed}
        if scratch is not None and this != scratch:
            raise ValueError(f"{path}: its scratch arm differs from another file's; were they run by the same code?")
        scratch = this
    out = {"n_train": n_train, "pool": pool, "runs": list(runs),
           "across_runs": {"pretrained": {k: _spread([r["pretrained"][k] for r in runs]) for k in KEYS}}}
    if all("probe_pretrained" in r for r in runs):
        out["across_runs"]["probe_pretrained"] = _spread([r["probe_pretrained"] for r in runs])
    if all("zero_shot_pretrained" in r for r in runs):
        out["across_runs"]["zero_shot_pretrained"] = _spread([r["zero_shot_pretrained"] for r in runs])
    if scratch is not None:
        out["scratch"] = {k: float(np.mean([scratch[s][k] for s in scratch])) for k in KEYS}
        diffs = {k: [_auroc(ps[s]["pretrained"], k) - scratch[s][k] for ps in per_seeds for s in ps] for k in KEYS}
        out["difference_pretrained_minus_scratch"] = {
            k: {"mean": float(np.mean(v)), "n_pairs": len(v), "n_positive": int(sum(d > 0 for d in v)),
                "per_run_mean": [float(np.mean(v[i * len(scratch):(i + 1) * len(scratch)])) for i in range(len(runs))]}
            for k, v in diffs.items()}
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("files", type=Path, nargs="+", help="bench_cora_pretrain.py results, one per --pretrain-seed")
    ap.add_argument("--n-train", type=int, required=True)
    ap.add_argument("--pool", default="max")
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args()
    out = summarise(args.files, args.n_train, args.pool)
    args.out.write_text(json.dumps(out, indent=2) + "\n")
    for k in KEYS:
        s = out["across_runs"]["pretrained"][k]
        line = f"{k:20s} pretrained {s['mean']:.3f} (SD {s['sd'] or 0:.3f}, {s['min']:.3f}-{s['max']:.3f})"
        if "scratch" in out:
            d = out["difference_pretrained_minus_scratch"][k]
            line += (f"  scratch {out['scratch'][k]:.3f}  difference {d['mean']:+.3f}"
                     f" ({d['n_positive']}/{d['n_pairs']} pairs positive)")
        print(line)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
