"""Which clinical encoder should the demo use? The demo trained with the clinical encoder swapped.

For each encoder in ``--encoders`` and each seed in ``--seeds`` this trains the demo configuration
(:func:`riskfm.recipes.demo.demo_config`, unchanged except ``encoders.clinical``) on
``riskfm.synthetic.make_cohort(n=1000, seed=s)``, exactly as ``riskfm demo --seed s`` does (the
seed picks the cohort; the config's split and training seeds stay the demo's), and compares the
model's AUROC with the oracle's (each label's true probability, as in
:func:`riskfm.recipes.demo.run_demo`) on the test split and the external site.

Encoders (``--encoders``, labels of :data:`ENCODERS`):

* ``tabular-mlp``: standardised numbers + missing flags + one-hot categoricals -> MLP (the demo's);
* ``text-lm``: the frozen all-MiniLM-L6-v2 embedding (384 values) of the CORA prompt + record;
* ``clinical-lm-tokens``: one token per variable built from frozen MiniLM embeddings of the
  variable's label and of its categorical values, numbers through a learned value embedding.

Each run writes ``benchmarks/results/clinical_encoders_runs/<label>_seed<s>.json`` (so runs can be
split over processes); at the end every run file present is summarised into
``benchmarks/results/clinical_encoders.json``: per encoder and seed each target's external and test
AUROC, oracle AUROC and gap (oracle - model), the external gap per artery (mean over the arteries
with >= 10 events on that split) and on MACE, wall time; per encoder the mean and SD over seeds.

Run (about 2-5 min per run on one core)::

    python benchmarks/bench_clinical_encoders.py --encoders tabular-mlp text-lm clinical-lm-tokens \
        --seeds 0 1 2 --threads 1
    python benchmarks/bench_clinical_encoders.py --summarise-only
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")

ROOT = Path(__file__).resolve().parent
RESULTS = ROOT / "results"
RUNS = RESULTS / "clinical_encoders_runs"
SUMMARY = RESULTS / "clinical_encoders.json"

#: label -> ``encoders.clinical`` section of the run config.
ENCODERS: dict[str, dict] = {
    "tabular-mlp": {"name": "tabular-mlp"},
    "text-lm": {"name": "text-lm", "freeze": True},
    "clinical-lm-tokens": {"name": "clinical-lm-tokens"},
    # The first default (token_dropout 0.1), before design selection on development cohorts.
    "clinical-lm-tokens-drop01": {"name": "clinical-lm-tokens", "kwargs": {"token_dropout": 0.1}},
}
ARTERIES = ("stenosis_lm", "stenosis_lad", "stenosis_lcx", "stenosis_rca")
MIN_EVENTS = 10


def _int_or_none(value) -> int | None:
    import pandas as pd

    return None if value is None or pd.isna(value) else int(value)


def run_one(label: str, clinical: dict, seed: int, work: Path, threads: int, n: int = 1000,
            epochs: int | None = None) -> dict:
    """Train the demo with ``clinical`` as its clinical encoder on the cohort of ``seed``; return the record."""
    import torch

    from riskfm.evaluate.run_metrics import auroc_table, metrics_from_predictions
    from riskfm.recipes.demo import DEMO_TARGETS, demo_config, oracle_predictions
    from riskfm.synthetic import make_cohort
    from riskfm.train.run import run_training

    torch.set_num_threads(threads)
    t0 = time.perf_counter()
    cohort = make_cohort(n=n, seed=seed, out_dir=work / "cohort")
    t_cohort = time.perf_counter() - t0
    cfg = demo_config(cohort.manifest_path, work / "report", epochs=epochs)
    cfg["encoders"]["clinical"] = clinical
    cfg["train"]["progress"] = False
    t1 = time.perf_counter()
    result = run_training(cfg)
    t_train = time.perf_counter() - t1
    preds = result.predictions[result.predictions["target"].isin(DEMO_TARGETS)]
    oracle = metrics_from_predictions(oracle_predictions(preds, cohort.oracle()), ci=None)
    table = auroc_table(result.metrics, oracle=oracle).reset_index()
    targets: dict[str, dict] = {}
    for row in table.itertuples(index=False):
        if row.split not in ("test", "external") or row.target not in DEMO_TARGETS:
            continue
        auroc = None if row.auroc != row.auroc else float(row.auroc)
        orc = None if row.oracle_auroc != row.oracle_auroc else float(row.oracle_auroc)
        targets.setdefault(row.target, {})[row.split] = {
            "auroc": auroc, "oracle_auroc": orc,
            "gap": None if auroc is None or orc is None else orc - auroc,
            "n": _int_or_none(row.n), "n_pos": _int_or_none(row.n_pos), "note": str(row.note or ""),
        }
    summary = {}
    for split in ("external", "test"):
        used = [a for a in ARTERIES if (targets[a][split]["n_pos"] or 0) >= MIN_EVENTS
                and targets[a][split]["gap"] is not None]
        summary[split] = {
            "artery_gap": statistics.fmean(targets[a][split]["gap"] for a in used) if used else None,
            "arteries_used": used,
            "mace_gap": targets["mace_30d"][split]["gap"],
        }
    return {"encoder": label, "clinical_config": clinical, "seed": seed, "targets": targets, "summary": summary,
            "best_epoch": result.fit.best_epoch, "epochs_run": result.fit.epochs_run,
            "cohort_seconds": t_cohort, "train_seconds": t_train, "threads": threads, "n": n,
            "epochs": cfg["train"]["epochs"]}


def _mean_sd(values: list[float]) -> dict:
    values = [v for v in values if v is not None]
    return {"mean": statistics.fmean(values) if values else None,
            "sd": statistics.stdev(values) if len(values) > 1 else None, "n_seeds": len(values)}


def summarise(runs_dir: Path = RUNS, out_path: Path = SUMMARY) -> dict:
    """Collect every run file of ``runs_dir`` into ``out_path`` and return the summary."""
    runs = [json.loads(p.read_text()) for p in sorted(runs_dir.glob("*.json"))]
    by_encoder: dict[str, dict] = {}
    for r in runs:
        by_encoder.setdefault(r["encoder"], {})[str(r["seed"])] = r
    summary = {}
    for label, seeds in by_encoder.items():
        rs = list(seeds.values())
        summary[label] = {
            "seeds": sorted(int(s) for s in seeds),
            "external_artery_gap": _mean_sd([r["summary"]["external"]["artery_gap"] for r in rs]),
            "external_mace_gap": _mean_sd([r["summary"]["external"]["mace_gap"] for r in rs]),
            "test_artery_gap": _mean_sd([r["summary"]["test"]["artery_gap"] for r in rs]),
            "test_mace_gap": _mean_sd([r["summary"]["test"]["mace_gap"] for r in rs]),
            "train_seconds": _mean_sd([r["train_seconds"] for r in rs]),
            "threads": sorted({r["threads"] for r in rs}),
        }
    out = {
        "description": "riskfm demo (demo_config, make_cohort(n=1000, seed=s)) with encoders.clinical swapped; "
                       "gap = oracle AUROC - model AUROC; artery_gap = mean over arteries with >= 10 events "
                       "on that split; mean and SD (n-1) over cohort seeds",
        "summary": summary,
        "runs": by_encoder,
    }
    out_path.write_text(json.dumps(out, indent=2) + "\n")
    return out


def markdown_table(out: dict) -> str:
    """Return the summary as the markdown table of docs/clinical-encoders.md (mean +- SD over seeds)."""
    lines = ["| encoder | seeds | external gap, arteries | external gap, MACE | test gap, arteries | test gap, MACE "
             "| train + evaluate, s |", "|---|---|---|---|---|---|---|"]
    for label, s in out["summary"].items():
        cells = [f"{_num(s[k]['mean'])} ± {_num(s[k]['sd'])}" for k in
                 ("external_artery_gap", "external_mace_gap", "test_artery_gap", "test_mace_gap")]
        t = s["train_seconds"]
        lines.append(f"| `{label}` | {', '.join(map(str, s['seeds']))} | {' | '.join(cells)} | {t['mean']:.0f} |")
    return "\n".join(lines)


def _num(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3f}"


def main(argv: list[str] | None = None) -> None:
    """Run the requested encoder x seed runs, then summarise every run file present."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--encoders", nargs="+", default=list(ENCODERS), help=f"labels of {list(ENCODERS)}")
    ap.add_argument("--variant", action="append", default=[], metavar="LABEL=JSON",
                    help="an extra encoder: a label and its encoders.clinical section as JSON")
    ap.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    ap.add_argument("--threads", type=int, default=1, help="torch threads per run")
    ap.add_argument("--work", type=Path, default=None, help="folder for cohorts and run folders (default: temp)")
    ap.add_argument("--n", type=int, default=1000, help="patients per cohort (1000: the demo's)")
    ap.add_argument("--epochs", type=int, default=None, help="training epochs (default: the demo's 24)")
    ap.add_argument("--runs-dir", type=Path, default=RUNS, help="where run files go (smoke tests: elsewhere)")
    ap.add_argument("--summarise-only", action="store_true")
    args = ap.parse_args(argv)
    encoders = dict(ENCODERS)
    for item in args.variant:
        label, _, spec = item.partition("=")
        encoders[label] = json.loads(spec)
        args.encoders.append(label)
    unknown = [e for e in args.encoders if e not in encoders]
    if unknown:
        ap.error(f"unknown encoders {unknown}; known: {list(encoders)}")
    runs_dir = args.runs_dir
    runs_dir.mkdir(parents=True, exist_ok=True)
    if not args.summarise_only:
        work_root = args.work or Path(tempfile.mkdtemp(prefix="bench_clin_"))
        for label in dict.fromkeys(args.encoders):
            for seed in args.seeds:
                record = run_one(label, encoders[label], seed, work_root / f"{label}_seed{seed}", args.threads,
                                 n=args.n, epochs=args.epochs)
                record["machine"] = {"python": sys.version.split()[0], "platform": platform.platform(),
                                     "cpus": os.cpu_count()}
                (runs_dir / f"{label}_seed{seed}.json").write_text(json.dumps(record, indent=2) + "\n")
                s = record["summary"]["external"]
                print(f"{label} seed {seed}: external gap arteries {_num(s['artery_gap'])}, MACE "
                      f"{_num(s['mace_gap'])}, {record['train_seconds']:.0f} s", flush=True)
    out = summarise(runs_dir, SUMMARY if runs_dir == RUNS else runs_dir.with_name(runs_dir.name + "_summary.json"))
    print(markdown_table(out))
    for label, s in out["summary"].items():
        a, m = s["external_artery_gap"], s["external_mace_gap"]
        print(f"{label:24s} seeds {s['seeds']}: external gap arteries {_num(a['mean'])} +- {_num(a['sd'])}, "
              f"MACE {_num(m['mean'])} +- {_num(m['sd'])}")


if __name__ == "__main__":
    main()
