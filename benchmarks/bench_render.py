"""CPU time to render one synthetic patient (12-lead ECG + coronary CTA); budget 40 ms.

The cohort writer renders every patient before writing it, so rendering must stay well inside the
cohort's per-patient budget (benchmarks/bench_synthetic_cohort.py). This used to be a unit test with
a wall-clock assert (< 40 ms), which flaked when tests shared the CPUs; it is measured here instead.

Measures, in one single-threaded process, CPU time per patient (best of ``--repeats`` rounds of
``--patients`` patients; CPU time, so other processes on the machine do not count) of:

- ``render_ecg`` + ``render_ct`` (riskfm) at their defaults (10 s x 12 leads at 500 Hz; a 40 x 64 x 64
  CT grid), the same severities and profiles the old test used;
- the named baseline, a machine yardstick on the same data sizes: ``scipy.ndimage.gaussian_filter``
  (sigma 1 voxel) over one 40 x 64 x 64 float32 grid plus ``scipy.signal.sosfiltfilt`` (4th-order
  0.5-40 Hz Butterworth band-pass) over one 12 x 5000 float32 ECG, i.e. filtering one patient's
  outputs once. ``render_vs_baseline`` (render time / baseline time) varies far less between
  machines than milliseconds do: compare that across runs.

Writes benchmarks/results/render.json. Run: ``python benchmarks/bench_render.py [--patients 50]``.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402

BUDGET_MS = 40.0


def cpu_ms_per_call(fn, n: int, repeats: int) -> float:
    """Best-of-``repeats`` CPU milliseconds per call of ``fn(i)`` over ``n`` calls."""
    fn(0)  # warm-up (imports, caches)
    best = float("inf")
    for _ in range(repeats):
        c0 = time.process_time()
        for i in range(n):
            fn(i)
        best = min(best, (time.process_time() - c0) / n)
    return best * 1000.0


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--patients", type=int, default=50)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()

    from scipy import ndimage, signal

    from riskfm.synthetic.ct_render import CtSiteProfile, render_ct
    from riskfm.synthetic.ecg_render import EcgSiteProfile, render_ecg

    severity = np.array([0.4, 0.2, 0.8, 0.6])          # RCA, LM, LAD, LCX
    calcified = np.array([True, False, True, False])
    ecg_profile, ct_profile = EcgSiteProfile(), CtSiteProfile()

    def render(i: int) -> None:
        rng = np.random.default_rng(i)
        render_ecg(rng, severity, heart_rate_bpm=70.0, age=60.0, female=bool(i % 2), profile=ecg_profile)
        render_ct(rng, severity, calcified, profile=ct_profile)

    rng = np.random.default_rng(0)
    grid = rng.normal(0.0, 100.0, (40, 64, 64)).astype(np.float32)
    ecg = rng.normal(0.0, 0.5, (12, 5000)).astype(np.float32)
    sos = signal.butter(4, [0.5, 40.0], btype="bandpass", fs=500.0, output="sos")

    def baseline(_: int) -> None:
        ndimage.gaussian_filter(grid, 1.0)
        signal.sosfiltfilt(sos, ecg, axis=-1)

    render_ms = cpu_ms_per_call(render, args.patients, args.repeats)
    baseline_ms = cpu_ms_per_call(baseline, args.patients, args.repeats)
    result = {
        "threads": 1, "patients_timed": args.patients, "repeats": args.repeats,
        "ecg_shape": [12, 5000], "ct_shape": [40, 64, 64],
        "render_cpu_ms_per_patient": render_ms,
        "baseline": "scipy.ndimage.gaussian_filter(40x64x64, sigma=1) + scipy.signal.sosfiltfilt(12x5000)",
        "baseline_cpu_ms": baseline_ms,
        "render_vs_baseline": render_ms / baseline_ms,
        "budget_ms": BUDGET_MS, "meets_budget": render_ms < BUDGET_MS,
    }
    out = Path(__file__).parent / "results" / "render.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2))
    print(f"render {render_ms:.1f} ms CPU per patient (baseline {baseline_ms:.1f} ms; x{render_ms / baseline_ms:.2f}); "
          f"budget < {BUDGET_MS:.0f} ms: {'met' if render_ms < BUDGET_MS else 'NOT met'}; wrote {out}")


if __name__ == "__main__":
    main()
