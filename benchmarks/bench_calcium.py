"""Calcium scoring speed (issue target: a 512 x 512 x 64 exam in at most 0.2 s on one core), and
optionally the segmentation -> bucket agreement (target: Cohen's kappa >= 0.8 on held-out exams).

Speed, in one run on one thread:
- ``score_calcium`` on a synthetic 512 x 512 x 64 chest exam (bones, aortic and coronary calcium);
- the named baseline: the straightforward per-slice loop (``scipy.ndimage.label`` per slice, one
  Python iteration per lesion), i.e. the textbook implementation the tests compare against.

``--kappa``: trains a segmentation network (``--model``: the slice-wise U-Net by default, or the
CORA 3D network) on ``--n-train`` synthetic exams and reports Cohen's kappa of the five buckets,
Bland-Altman and accuracy at cut-offs on ``--n-test`` held-out exams, plus seconds per exam. The
network decides inside the estimated heart ROI (``roi="estimate"``, the default of
``train_segmenter``); ``--roi none`` trains it on every bright voxel of the scan, as before.

Writes benchmarks/results/calcium.json. Run: ``python benchmarks/bench_calcium.py [--kappa]``.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402
from scipy import ndimage  # noqa: E402


def loop_agatston(hu: np.ndarray, spacing) -> float:
    pixel = spacing[1] * spacing[2]
    total = 0.0
    for z in range(hu.shape[0]):
        lab, n = ndimage.label(hu[z] >= 130, structure=np.ones((3, 3)))
        for k in range(1, n + 1):
            pix = hu[z][lab == k]
            area = pix.size * pixel
            if area >= 1.0:
                peak = pix.max()
                total += area * (1 if peak < 200 else 2 if peak < 300 else 3 if peak < 400 else 4)
    return total * spacing[0] / 3.0


def best_of(fn, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--kappa", action="store_true")
    ap.add_argument("--n-train", type=int, default=40)
    ap.add_argument("--n-test", type=int, default=40)
    ap.add_argument("--epochs", type=int, default=12)
    ap.add_argument("--steps", type=int, default=40)
    ap.add_argument("--model", default="unet2d", choices=["unet2d", "seg3d", "cora3d"])
    ap.add_argument("--width", type=int, default=8, help="first-stage channels (doubling per stage)")
    ap.add_argument("--roi", default="estimate", choices=["estimate", "none"])
    ap.add_argument("--lr", type=float, default=3e-3)
    ap.add_argument("--threads", type=int, default=None, help="torch threads for training (default: all cores)")
    ap.add_argument("--seed", type=int, default=0, help="network seed; training exams are drawn from it too")
    ap.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "results" / "calcium.json")
    args = ap.parse_args()

    import torch

    torch.set_num_threads(1)
    from riskfm.ct.calcium import score_calcium
    from riskfm.synthetic.calcium import make_calcium_exam

    exam = make_calcium_exam(0, shape=(64, 512, 512), spacing=(3.0, 0.35, 0.35), burden=4)
    hu, sp = exam.hu, exam.spacing
    fast = best_of(lambda: score_calcium(hu, sp), args.repeat)
    loop = best_of(lambda: loop_agatston(hu, sp), max(1, args.repeat // 2))
    a, b = score_calcium(hu, sp).agatston, loop_agatston(hu, sp)
    result = {
        "exam_shape": list(hu.shape), "threads": 1,
        "score_calcium_seconds_per_exam": fast, "baseline_loop_seconds_per_exam": loop,
        "speedup_vs_loop": loop / fast, "target_seconds": 0.2, "meets_target": fast <= 0.2,
        "agatston_fast": a, "agatston_loop": b,
    }
    print(f"score_calcium {fast * 1000:.0f} ms per 512x512x64 exam (loop baseline {loop * 1000:.0f} ms, "
          f"x{loop / fast:.1f}); Agatston {a:.1f} vs loop {b:.1f}")

    if args.kappa:
        from riskfm.ct.calcium import agatston_bucket
        from riskfm.evaluate.agreement import bland_altman, cohen_kappa, diagnostic_at_cutoffs
        from riskfm.train.tasks.calcium_segmentation import train_segmenter

        torch.set_num_threads(args.threads or max(1, os.cpu_count() or 1))
        train = [make_calcium_exam(args.seed * 1000 + i) for i in range(args.n_train)]
        test = [make_calcium_exam(100_000 + i) for i in range(args.n_test)]
        t0 = time.perf_counter()
        w = args.width
        seg = train_segmenter(train, model=args.model, widths=(w, 2 * w, 4 * w, 8 * w), epochs=args.epochs,
                              steps_per_epoch=args.steps, batch_size=8, lr=args.lr, roi=args.roi,
                              seed=args.seed)
        train_s = time.perf_counter() - t0
        from riskfm.ct.calcium.roi import estimate_heart_roi

        ref = np.array([e.reference.agatston for e in test])
        # What `riskfm cac score --model` does: the heart ROI estimated from the CT (inside
        # seg.score), lesion-level decisions; the per-voxel rule is reported next to it.
        t0 = time.perf_counter()
        pred = np.array([seg.score(e.hu, e.spacing).agatston for e in test])
        per_exam = (time.perf_counter() - t0) / len(test)
        rois = [estimate_heart_roi(e.hu, e.spacing) for e in test]
        pixel = np.array([score_calcium(e.hu, e.spacing, labels=seg.predict(
            e.hu, e.spacing, roi=roi, decision="pixel")).agatston for e, roi in zip(test, rois)])
        # The ceiling the ROI allows: reference labels inside the estimated ROI.
        ceiling = np.array([score_calcium(e.hu, e.spacing, labels=np.where(roi, e.labels, 0)).agatston
                            for e, roi in zip(test, rois)])
        k_ceiling = cohen_kappa(agatston_bucket(ref), agatston_bucket(ceiling))
        k_pixel = cohen_kappa(agatston_bucket(ref), agatston_bucket(pixel))
        k = cohen_kappa(agatston_bucket(ref), agatston_bucket(pred))
        result["segmentation"] = {
            "model": args.model, "width": args.width, "seed": args.seed, "roi": args.roi, "lr": args.lr,
            "n_train": args.n_train, "n_test": args.n_test, "epochs": args.epochs, "steps_per_epoch": args.steps,
            "kappa_ceiling_reference_labels_in_roi": k_ceiling.value,
            "train_seconds": train_s, "seconds_per_exam": per_exam, "kappa": k.to_dict(), "kappa_pixel_decisions": k_pixel.to_dict(),
            "bland_altman": bland_altman(ref, pred).to_dict(),
            "cutoffs": diagnostic_at_cutoffs(ref, pred).to_dict(orient="records"),
            "loss_history": seg.config.history,
        }
        print(f"kappa on buckets {k.value:.3f} ({k.ci[0]:.3f}-{k.ci[1]:.3f}) with lesion decisions, "
              f"{k_pixel.value:.3f} per voxel (ROI ceiling {k_ceiling.value:.3f}); {per_exam:.2f} s per exam, "
              f"training {train_s:.0f} s")

    out = args.out
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2, default=float))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
