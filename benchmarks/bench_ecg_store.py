"""Records per second: the ECG store vs per-record ``wfdb.rdsamp`` + preprocessing vs a raw memmap read.

Writes benchmarks/results/ecg_store.json. Goal: store >= 20x faster than parsing + preprocessing,
and within 3x of reading the same bytes straight from a memory map.

    .venv/bin/python benchmarks/bench_ecg_store.py [--n 200]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=200, help="synthetic records (10 s, 500 Hz, 12 leads)")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    import wfdb

    from riskfm.ecg.net1d import ecgfounder_input_spec
    from riskfm.ecg.preprocess import prepare_ecg
    from riskfm.ecg.record import ECG
    from riskfm.ecg.store import ECGStore, build_ecg_store, manifest_ecg_paths
    from riskfm.synthetic import make_cohort

    spec = ecgfounder_input_spec()
    with tempfile.TemporaryDirectory() as tmp:
        cohort = make_cohort(n=args.n, seed=0, out_dir=Path(tmp) / "cohort", missing_ecg=0.0, missing_ct=1.0,
                             n_workers=1)
        keys = manifest_ecg_paths(cohort.manifest_path)
        t0 = time.perf_counter()
        build_ecg_store(keys, Path(tmp) / "store", spec, shard_size=256, quality=False)
        build_s = time.perf_counter() - t0

        # baseline: what a dataset does without the store
        t0 = time.perf_counter()
        for key in keys:
            sig, fields = wfdb.rdsamp(key.removesuffix(".hea"))
            prepare_ecg(ECG(sig.T, fields["fs"], fields["sig_name"]), spec)
        parse_rate = len(keys) / (time.perf_counter() - t0)

        store = ECGStore(Path(tmp) / "store")
        order = np.random.default_rng(0).permutation(len(keys))
        rates, raw_rates = [], []
        for _ in range(args.repeats):
            t0 = time.perf_counter()
            for i in order:
                x, mask = store[keys[i]]
                np.asarray(x, dtype=np.float32)
            rates.append(len(keys) / (time.perf_counter() - t0))
            # the same bytes read straight from the shard memmaps (no index, no key lookup)
            shards = [np.load(p, mmap_mode="r") for p in sorted((Path(tmp) / "store" / "shards").glob("shard_*[0-9].npy"))]
            flat = [(s, r) for s in shards for r in range(s.shape[0])]
            t0 = time.perf_counter()
            for i in order:
                s, r = flat[i]
                np.asarray(s[r], dtype=np.float32)
            raw_rates.append(len(keys) / (time.perf_counter() - t0))
    store_rate, raw_rate = float(np.median(rates)), float(np.median(raw_rates))
    result = {"n_records": len(keys), "build_seconds": round(build_s, 2),
              "rdsamp_plus_preprocess_records_per_s": round(parse_rate, 1),
              "store_records_per_s": round(store_rate, 1), "raw_memmap_records_per_s": round(raw_rate, 1),
              "store_vs_rdsamp_speedup": round(store_rate / parse_rate, 1),
              "raw_memmap_vs_store_ratio": round(raw_rate / store_rate, 2),
              "goals": {"speedup_at_least": 20, "raw_ratio_at_most": 3}}
    out = Path(__file__).parent / "results" / "ecg_store.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(result, indent=1))
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
