"""How fast the synthetic cohort is written (issue target: 1,000 patients in under 60 s on 2 cores).

Measures, in one run:
- ``make_cohort(n=1000)`` wall time with all cores (the target);
- the WFDB writer used by the generator against ``wfdb.wrsamp`` (the named baseline), per record.

Writes benchmarks/results/synthetic_cohort.json. Run: ``python benchmarks/bench_synthetic_cohort.py [--n 1000]``.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

import numpy as np


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=1000)
    ap.add_argument("--records", type=int, default=50)
    args = ap.parse_args()

    import wfdb

    from riskfm.ecg.spec import STANDARD_LEADS
    from riskfm.ecg.wfdb_write import write_wfdb
    from riskfm.synthetic import make_cohort

    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        make_cohort(n=args.n, seed=0, out_dir=Path(tmp) / "cohort")
        cohort_s = time.perf_counter() - t0

        sig = np.random.default_rng(0).normal(0, 0.5, (12, 5000))
        t0 = time.perf_counter()
        for i in range(args.records):
            write_wfdb(Path(tmp) / f"ours{i}", sig, 500, STANDARD_LEADS)
        ours = (time.perf_counter() - t0) / args.records
        t0 = time.perf_counter()
        for i in range(args.records):
            wfdb.wrsamp(f"ref{i}", fs=500, units=["mV"] * 12, sig_name=list(STANDARD_LEADS), p_signal=sig.T,
                        fmt=["16"] * 12, adc_gain=[1000.0] * 12, baseline=[0] * 12, write_dir=tmp)
        ref = (time.perf_counter() - t0) / args.records

    result = {
        "n_patients": args.n, "cores": os.cpu_count(), "cohort_seconds": round(cohort_s, 2),
        "patients_per_second": round(args.n / cohort_s, 1), "target_seconds_for_1000": 60,
        "wfdb_write_ms": {"riskfm.write_wfdb": round(ours * 1e3, 2), "wfdb.wrsamp (baseline)": round(ref * 1e3, 2)},
        "wfdb_write_speedup_vs_wrsamp": round(ref / ours, 1),
    }
    out = Path(__file__).parent / "results" / "synthetic_cohort.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
