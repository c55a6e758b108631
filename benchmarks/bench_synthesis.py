"""Lesion-synthesis engine throughput: 64^3 patches per second per core (issue goal: >= 10).

Measures, in one run on one thread, over the same synthetic coronary CTA and the same candidate
coronary voxels:

- ``LesionSynthesisEngine`` (riskfm): crop only the region the transformed patch needs, separable
  Gaussian blobs in the plaque's box, ONE sampling grid for image (trilinear) and labels (nearest)
  through ``torch.grid_sample``, normal-approximated Poisson counts where the count is high;
- the named baseline, a straightforward ``scipy.ndimage`` implementation of the same steps:
  dense Gaussian blobs over the region, ``ndimage.rotate`` about the three axes then
  ``ndimage.zoom`` (image order 1, labels order 0), ``np.flip``, exact Poisson counts for every
  voxel, ``np.clip`` per window.

Writes benchmarks/results/synthesis.json. Run: ``python benchmarks/bench_synthesis.py [--patches 60]``.
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


def baseline_patch(hu, candidates, rng, cfg):
    """The same steps as the engine, written the obvious way with scipy.ndimage."""
    size = np.asarray(cfg.patch_size)
    centre = np.array(np.unravel_index(int(candidates[rng.integers(len(candidates))]), hu.shape))
    angles = rng.uniform(-cfg.max_rotation_deg, cfg.max_rotation_deg, 3)
    zoom = rng.uniform(*cfg.zoom_range)
    flips = rng.random(3) < cfg.flip_prob
    # A region big enough for any rotation and zoom: the patch's diagonal over the smallest zoom.
    half = int(np.ceil(np.sqrt(3) * size.max() / 2 / cfg.zoom_range[0])) + 2
    padded = np.pad(hu.astype(np.float32), half, constant_values=-1024.0)
    c = centre + half
    region = padded[c[0] - half:c[0] + half, c[1] - half:c[1] + half, c[2] - half:c[2] + half].copy()
    labels = np.zeros(region.shape, np.uint8)
    if rng.random() < cfg.lesion_prob:
        grid = np.indices(region.shape).astype(np.float32)
        for _ in range(int(rng.integers(1, cfg.max_lesions + 1))):
            calcified = rng.random() < cfg.calcified_prob
            n = int(rng.integers(cfg.n_blobs[0], cfg.n_blobs[1] + 1))
            keep_out = np.ones(region.shape, np.float32)
            first = np.full(3, half, float) + rng.uniform(-1, 1, 3)
            for _b in range(n):
                sigma = rng.uniform(*cfg.sigma_vox)
                centre_b = first + rng.normal(size=3) * sigma * 0.5
                d2 = sum((grid[k] - centre_b[k]) ** 2 for k in range(3))
                keep_out *= 1.0 - np.exp(-d2 / (2 * sigma**2))
            f = 1.0 - keep_out
            peak = rng.uniform(*(cfg.calcified_hu if calcified else cfg.noncalcified_hu))
            region = region * (1 - f) + peak * f
            labels[f >= 0.5] = 1 if calcified else 2
    for angle, axes in zip(angles, ((1, 2), (0, 2), (0, 1))):
        region = ndimage.rotate(region, angle, axes=axes, reshape=False, order=1, cval=-1024.0)
        labels = ndimage.rotate(labels, angle, axes=axes, reshape=False, order=0)
    region = ndimage.zoom(region, zoom, order=1)
    labels = ndimage.zoom(labels, zoom, order=0)
    start = np.array(region.shape) // 2 - size // 2
    sl = tuple(slice(s, s + n) for s, n in zip(start, size))
    region, labels = region[sl], labels[sl]
    for axis in np.flatnonzero(flips):
        region, labels = np.flip(region, axis), np.flip(labels, axis)
    mu = np.maximum(cfg.mu_water * (1 + region.astype(np.float64) / 1000), 0)
    counts = rng.poisson(cfg.i0 * np.exp(-mu * cfg.path_mm)) + rng.normal(0, cfg.sigma_e, region.shape)
    noisy = 1000 * (np.log(cfg.i0 / np.maximum(counts, 1.0)) / (cfg.path_mm * cfg.mu_water) - 1)
    image = np.stack([np.clip((noisy - (lv - w / 2)) / w, 0, 1) for lv, w in cfg.windows]).astype(np.float32)
    return image, labels


def rate(fn, n: int) -> tuple[float, float]:
    """Patches per CPU second of this (single-threaded) process, and per wall second.

    Per CPU second is the per-core rate even when other jobs share the core; wall time is what
    an idle core gives.
    """
    fn(0)  # warm-up (imports, caches)
    c0, t0 = time.process_time(), time.perf_counter()
    for i in range(n):
        fn(i + 1)
    return n / (time.process_time() - c0), n / (time.perf_counter() - t0)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--patches", type=int, default=60)
    ap.add_argument("--size", type=int, default=64)
    args = ap.parse_args()

    import torch

    torch.set_num_threads(1)
    from riskfm.ct.synthesis import LesionSynthesisEngine, SynthesisConfig, candidate_voxels
    from riskfm.synthetic.ct_render import CtSiteProfile, render_ct

    # A coronary CTA at a CCTA-like resolution with its artery labels (the coronary mask).
    spacing = (0.8, 0.6, 0.6)
    ct = render_ct(np.random.default_rng(0), np.array([0.5, 0.2, 0.6, 0.3]), np.array([True, False, False, True]),
                   profile=CtSiteProfile(), shape=(100, 160, 160), spacing=spacing)
    hu = ct.hu.astype(np.float32)
    candidates = candidate_voxels(ct.artery_labels > 0, margin=args.size // 4)
    cfg = SynthesisConfig(patch_size=(args.size,) * 3)
    engine = LesionSynthesisEngine(cfg)

    fast, fast_wall = rate(lambda i: engine(hu, spacing, candidates, np.random.default_rng([1, i])), args.patches)
    slow, slow_wall = rate(lambda i: baseline_patch(hu, candidates, np.random.default_rng([1, i]), cfg),
                           max(5, args.patches // 6))
    sample = engine(hu, spacing, candidates, np.random.default_rng([1, 3]))
    result = {
        "patch_size": [args.size] * 3, "threads": 1, "volume_shape": list(hu.shape), "spacing_mm": list(spacing),
        "engine_patches_per_s_per_core": fast, "baseline_scipy_patches_per_s_per_core": slow,
        "speedup_vs_baseline": fast / slow,
        "engine_patches_per_wall_s": fast_wall, "baseline_patches_per_wall_s": slow_wall, "goal_patches_per_s_per_core": 10.0, "meets_goal": fast >= 10.0,
        "patches_timed": args.patches, "example_lesions": len(sample.lesions),
        "example_image_shape": list(sample.image.shape),
    }
    out = Path(__file__).parent / "results" / "synthesis.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2))
    print(f"engine {fast:.1f} patches/s/core of {args.size}^3 (baseline scipy.ndimage {slow:.2f}; "
          f"x{fast / slow:.1f}); goal >= 10: {'met' if fast >= 10 else 'NOT met'}; wrote {out}")


if __name__ == "__main__":
    main()
