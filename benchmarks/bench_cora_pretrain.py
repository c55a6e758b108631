"""Does synthesis-driven pretraining help? A CPU-sized check of CORA's claim, on ONE core.

1. Pretrain ``cora-resunet`` at width 8 on 24^3 patches of an unlabelled synthetic cohort (its own
   seed, its coronary masks for artery-centric sampling) and record the loss curve: the loss must
   go down. One pretraining run is shared by every seed below (pretraining never sees labels).
2. Plaque characterisation on a second, labelled synthetic cohort (default 200 CTs of 32 x 48 x 48
   voxels). For each seed in ``--seeds``: its own random half/half split (100 train, 100 test by
   default) and its own fine-tuning initialisation of the head (and, from scratch, of the network).
   Fine-tune the pretrained network (encoder + pooled linear head, ``--pool``) and train the SAME
   network from scratch on the same training cases with the same schedule; AUROC with 500-resample
   bootstrap CIs on the same test cases, per label (calcified, non-calcified) and their mean.
   Paired comparison on those test cases, per label: the AUROC difference (pretrained - scratch),
   its DeLong 95% CI (normal interval from the DeLong covariance of the two correlated AUROCs) and
   the DeLong test's p-value, plus a paired bootstrap CI of the difference in the mean-over-labels
   AUROC (the same patients resampled for both arms and both labels).
3. Zero-shot: with no labelled training at all, score each test CT of the first seed by the mean of
   the 20 highest voxels of the pretrained network's abnormality map (and of the same network
   untrained), AUROC against "any plaque present" - does pretraining alone make a plaque detector?

Writes benchmarks/results/cora_pretrain.json and prints a summary. Run:
``python benchmarks/bench_cora_pretrain.py`` (about 13 minutes on one core with the defaults: 755 s measured).
The default pooling and schedule were chosen on a development cohort of its own seed
(``--cohort-seed 99``, split seeds 99 / 98), never on the cohort and seeds reported (docs/ct.md).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402

TARGETS = ("plaque_calcified", "plaque_noncalcified")


def _zero_shot(cases, test_idx, checkpoint, width, spacing) -> dict:
    """AUROC of the top-20-voxel mean of the dense map for "any plaque", pretrained vs untrained."""
    import torch

    from riskfm.ct.finetune import plaque_targets, volume_input
    from riskfm.evaluate.discrimination import roc_auc
    from riskfm.recipes.cora_common import build_network

    y = np.array([plaque_targets(cases[i]).max() for i in test_idx])
    out = {}
    for name, ckpt in (("pretrained", checkpoint), ("untrained", None)):
        torch.manual_seed(0)
        net = build_network(ckpt, width=width, spacing=spacing, shape=cases[0].vol.shape).eval()
        scores = []
        with torch.no_grad():
            for i in test_idx:
                x = torch.from_numpy(volume_input(cases[i], cases[i].vol.shape, net.input_spec.windows))[None]
                scores.append(float(net.forward_dense(x).flatten().topk(20).values.mean()))
        est = roc_auc(y, np.array(scores), ci="bootstrap", n_boot=500, seed=0)
        out[name] = {"auroc": est.value, "ci": [est.low, est.high]}
    out.update(n=int(len(y)), n_pos=int(y.sum()))
    return out


def _test_scores(res: dict) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """{target: (y_true [n], y_prob [n])} on the test cases, ordered by patient id."""
    p = res["predictions"]
    p = p[p["split"] == "test"]
    out = {}
    for t in TARGETS:
        q = p[p["target"] == t].sort_values("patient_id")
        out[t] = (q["y_true"].to_numpy(), q["y_prob"].to_numpy())
    return out


def _auroc(y: np.ndarray, s: np.ndarray) -> float:
    """Mann-Whitney AUROC with midranks (NaN when a class is missing)."""
    from scipy.stats import rankdata

    n_pos = int(y.sum())
    n_neg = len(y) - n_pos
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    r = rankdata(s)
    return float((r[y > 0].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def _paired(pre: dict, scr: dict, n_boot: int = 500, seed: int = 0) -> dict:
    """Paired comparison pretrained - scratch on the same test cases, per label and for the mean."""
    from scipy.stats import norm

    from riskfm.evaluate.discrimination import delong_covariance, delong_test

    out: dict = {}
    for t in TARGETS:
        y, p1 = pre[t]
        y2, p2 = scr[t]
        if not np.array_equal(y, y2):
            raise RuntimeError(f"{t}: the two arms were scored on different test cases")
        test = delong_test(y, p1, p2)
        aurocs, cov = delong_covariance(y, np.vstack([p1, p2]))
        diff = float(aurocs[0] - aurocs[1])
        se = math.sqrt(max(float(cov[0, 0] + cov[1, 1] - 2 * cov[0, 1]), 0.0))
        z = float(norm.ppf(0.975))
        out[t] = {"pretrained": float(aurocs[0]), "scratch": float(aurocs[1]), "difference": diff,
                  "delong_ci": [diff - z * se, diff + z * se], "delong_p": test["p_value"],
                  "n": int(len(y)), "n_pos": int(y.sum())}
    # Mean-over-labels AUROC difference: resample patients (the same for both labels and arms).
    rng = np.random.default_rng(seed)
    n = len(pre[TARGETS[0]][0])
    diffs = []
    for _ in range(n_boot):
        idx = rng.integers(0, n, n)
        d = [_auroc(pre[t][0][idx], pre[t][1][idx]) - _auroc(scr[t][0][idx], scr[t][1][idx]) for t in TARGETS]
        if not any(math.isnan(v) for v in d):
            diffs.append(float(np.mean(d)))
    mean_diff = float(np.mean([out[t]["difference"] for t in TARGETS]))
    out["mean"] = {"difference": mean_diff, "bootstrap_ci": [float(v) for v in np.quantile(diffs, [0.025, 0.975])],
                   "n_boot": len(diffs)}
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n-pretrain", type=int, default=40, help="unlabelled CTs for pretraining")
    ap.add_argument("--n-labelled", type=int, default=200, help="labelled CTs for plaque characterisation")
    ap.add_argument("--test-fraction", type=float, default=0.5)
    ap.add_argument("--width", type=int, default=8)
    ap.add_argument("--patch", type=int, default=24)
    ap.add_argument("--pretrain-steps", type=int, default=200)
    ap.add_argument("--pretrain-batch", type=int, default=4)
    ap.add_argument("--pretrain-lr", type=float, default=2e-3)
    ap.add_argument("--pool", default="avg", choices=("avg", "max", "avgmax"),
                    help="pooling of the bottleneck before the linear head (both arms)")
    ap.add_argument("--finetune-steps", type=int, default=60)
    ap.add_argument("--finetune-batch", type=int, default=4)
    ap.add_argument("--lr", type=float, default=1e-3, help="fine-tuning learning rate of the head")
    ap.add_argument("--encoder-lr", type=float, default=None,
                    help="fine-tuning learning rate of the encoder, both arms (default: --lr)")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2],
                    help="one labelled split and fine-tuning initialisation per seed")
    ap.add_argument("--cohort-seed", type=int, default=0,
                    help="seed of the two synthetic cohorts (unlabelled 1000 + s, labelled 2000 + s) and of "
                         "pretraining; development runs use another one than the reported run")
    ap.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "cora_pretrain.json")
    args = ap.parse_args()

    import torch

    torch.set_num_threads(1)
    from riskfm.ct.cases import cases_from_manifest
    from riskfm.ct.pretrain import PretrainConfig, pretrain_cora
    from riskfm.ct.synthesis import SynthesisConfig
    from riskfm.recipes.cora_common import load_cases, split_indices
    from riskfm.recipes.cora_plaque import run_plaque_characterisation
    from riskfm.synthetic import make_cohort

    t_start = time.perf_counter()
    cpu_start = time.process_time()
    # A coarser grid than the demo cohort's (2.0, 1.5, 1.5) mm over the same 80 x 96 x 96 mm field of
    # view: 2.2x fewer voxels keeps the fine-tuning runs within a few CPU minutes.
    spacing = (2.5, 2.0, 2.0)
    grid = dict(ct_shape=(32, 48, 48), ct_spacing=spacing, missing_ct=0.0, missing_ecg=1.0, n_workers=1)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        unlabelled = make_cohort(n=args.n_pretrain, seed=1000 + args.cohort_seed, out_dir=tmp / "unlabelled", **grid)
        labelled = make_cohort(n=args.n_labelled, seed=2000 + args.cohort_seed, out_dir=tmp / "labelled", **grid)
        t_cohorts = time.perf_counter() - t_start

        patch = (args.patch,) * 3
        cfg = PretrainConfig(width=args.width, patch_size=patch, spacing=spacing, steps=args.pretrain_steps,
                             batch_size=args.pretrain_batch, lr=args.pretrain_lr, checkpoint_every=args.pretrain_steps,
                             seed=args.cohort_seed, synthesis=SynthesisConfig(patch_size=patch))
        pre = pretrain_cora(cases_from_manifest(unlabelled.manifest_path), tmp / "pretrain", cfg)
        first, last = pre.loss_drop(0.2)

        cases = load_cases(labelled.manifest_path, spacing, kinds=("plaque",))
        per_seed = {}
        zero_shot = None
        for seed in args.seeds:
            train_idx, test_idx = split_indices(len(cases), args.test_fraction, seed)
            runs, scores = {}, {}
            for name, ckpt in (("pretrained", pre.checkpoint), ("scratch", None)):
                res = run_plaque_characterisation(cases, tmp / f"{name}_{seed}", checkpoint=ckpt, width=args.width,
                                                  steps=args.finetune_steps, batch_size=args.finetune_batch,
                                                  lr=args.lr, encoder_lr=args.encoder_lr, pool=args.pool, seed=seed,
                                                  train_indices=train_idx, test_indices=test_idx)
                m = res["metrics"]
                runs[name] = {
                    **{t: {"auroc": v["auroc"], "ci": v["auroc_ci"], "n": v["n"], "n_pos": v["n_pos"]}
                       for t, v in m.items()},
                    "mean_auroc": float(np.nanmean([v["auroc"] for v in m.values()])),
                    "train_seconds": res["fit"].seconds,
                    "train_loss_first_last_10": [float(np.mean(res["fit"].losses()[:10])),
                                                 float(np.mean(res["fit"].losses()[-10:]))],
                }
                scores[name] = _test_scores(res)
            paired = _paired(scores["pretrained"], scores["scratch"], seed=seed)
            per_seed[str(seed)] = {"n_train": int(len(train_idx)), "n_test": int(len(test_idx)), **runs,
                                   "paired_difference": paired,
                                   "pretrained_beats_scratch": runs["pretrained"]["mean_auroc"]
                                   > runs["scratch"]["mean_auroc"]}
            print(f"seed {seed}: pretrained {runs['pretrained']['mean_auroc']:.3f}, scratch "
                  f"{runs['scratch']['mean_auroc']:.3f}, difference {paired['mean']['difference']:+.3f} "
                  f"({paired['mean']['bootstrap_ci'][0]:+.3f} to {paired['mean']['bootstrap_ci'][1]:+.3f})",
                  flush=True)
            if zero_shot is None:
                zero_shot = _zero_shot(cases, test_idx, pre.checkpoint, args.width, spacing)
                zero_shot["seed"] = seed

    def across(key):
        vals = [per_seed[s][key]["mean_auroc"] for s in per_seed]
        return {"mean": float(np.mean(vals)), "per_seed": vals}

    diffs = {t: [per_seed[s]["paired_difference"][t]["difference"] for s in per_seed] for t in (*TARGETS, "mean")}
    summary = {
        "pretrained_mean_auroc": across("pretrained"),
        "scratch_mean_auroc": across("scratch"),
        "difference_mean_over_seeds": {t: float(np.mean(v)) for t, v in diffs.items()},
        "seeds_pretrained_better": int(sum(per_seed[s]["pretrained_beats_scratch"] for s in per_seed)),
        "n_seeds": len(per_seed),
        # A per-label difference counts as significant when its DeLong 95% CI excludes 0.
        "significant_differences": [
            {"seed": int(s), "target": t, "difference": per_seed[s]["paired_difference"][t]["difference"],
             "delong_p": per_seed[s]["paired_difference"][t]["delong_p"]}
            for s in per_seed for t in TARGETS
            if per_seed[s]["paired_difference"][t]["delong_ci"][0] > 0
            or per_seed[s]["paired_difference"][t]["delong_ci"][1] < 0],
    }
    result = {
        "threads": 1,
        "cohort_seed": args.cohort_seed,
        "cohort_seconds": t_cohorts,
        "spacing_mm": list(spacing), "volume_shape": [32, 48, 48],
        "pretrain": {"n_volumes": args.n_pretrain, "width": args.width, "patch": list(patch), "lr": args.pretrain_lr,
                     "steps": args.pretrain_steps, "batch_size": args.pretrain_batch, "shared_by_seeds": True,
                     "loss_first_20pct": first, "loss_last_20pct": last, "loss_decreased": last < first,
                     "seconds": pre.seconds,
                     "loss_curve_every_10": [round(h["loss"], 4) for h in pre.history[::10]]},
        "plaque_characterisation": {"n_labelled": args.n_labelled, "test_fraction": args.test_fraction,
                                    "pool": args.pool, "finetune_steps": args.finetune_steps,
                                    "batch_size": args.finetune_batch, "lr": args.lr,
                                    "encoder_lr": args.encoder_lr if args.encoder_lr is not None else args.lr,
                                    "seeds": args.seeds, "per_seed": per_seed, "summary": summary},
        "zero_shot_any_plaque": zero_shot,
    }
    result["total_seconds"] = time.perf_counter() - t_start
    # CPU seconds of this process: wall time stretches when other jobs share the core.
    result["total_cpu_seconds"] = time.process_time() - cpu_start
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2))

    print(f"pretraining loss {first:.3f} -> {last:.3f} over {args.pretrain_steps} steps ({pre.seconds:.0f} s)")
    print(f"plaque characterisation, pool {args.pool}, {args.finetune_steps} steps, "
          f"{per_seed[str(args.seeds[0])]['n_train']} train / {per_seed[str(args.seeds[0])]['n_test']} test per seed")
    for s, r in per_seed.items():
        for name in ("pretrained", "scratch"):
            parts = ", ".join(f"{t} {r[name][t]['auroc']:.3f} ({r[name][t]['ci'][0]:.3f}-{r[name][t]['ci'][1]:.3f})"
                              for t in TARGETS)
            print(f"  seed {s} {name:10s}: mean AUROC {r[name]['mean_auroc']:.3f}; {parts}")
        for t in TARGETS:
            d = r["paired_difference"][t]
            print(f"  seed {s} {t}: difference {d['difference']:+.3f} (DeLong 95% CI {d['delong_ci'][0]:+.3f} to "
                  f"{d['delong_ci'][1]:+.3f}, p {d['delong_p']:.3f})")
    print(f"mean over seeds: pretrained {summary['pretrained_mean_auroc']['mean']:.3f}, scratch "
          f"{summary['scratch_mean_auroc']['mean']:.3f}; pretrained better in {summary['seeds_pretrained_better']}"
          f"/{summary['n_seeds']} seeds; significant per-label differences: {len(summary['significant_differences'])}")
    print(f"zero-shot any-plaque AUROC: pretrained {zero_shot['pretrained']['auroc']:.3f}, "
          f"untrained {zero_shot['untrained']['auroc']:.3f}")
    print(f"total {result['total_seconds']:.0f} s wall, {result['total_cpu_seconds']:.0f} s CPU; wrote {args.out}")


if __name__ == "__main__":
    main()
