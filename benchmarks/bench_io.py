"""Reading and batching overheads (issue 14 item 4): ``read_ecg`` vs bare ``wfdb.rdsamp``, ``collate_samples`` vs ``default_collate``.

Writes benchmarks/results/io.json.

(a) ``read_ecg`` (standard leads, mV, float32 ``[12, T]``) against the call a user would write
    without riskfm, ``wfdb.rdsamp(record)``, on synthetic cohort records (10 s, 500 Hz, 12 leads)
    and the PTB fixture record (115 s, 1 kHz, 15 channels in two files). The code before the
    change (``riskfm/ecg/wfdb_read.py`` and ``riskfm/ecg/assembly.py`` at ``--before``, loaded
    from git into temporary modules and plugged in as the ``wfdb`` reader of the same
    ``read_ecg``) runs in the same loop: each record is read by all three, in rotating order, so a
    noisy shared CPU slows them alike. Times are per record, median over repeats.
(b) ``collate_samples`` at batch sizes 32 and 256 with the demo's representation sizes (ECG
    median beats ``[12, 174]``, CT ``[4, 40, 64, 64]``, 28 tabular features), against the version
    at ``--before`` (``riskfm/data/sample.py``) and ``torch.utils.data.default_collate`` on the
    same arrays as plain dicts (no presence flags; only comparable when every modality is there).
    Also a batch with CT missing for every other sample (new vs before), and batches without CT
    (ECG + tabular only, as in the ECG studies), where the per-sample overhead shows: with CT,
    copying ~2.6 MB per sample into fresh memory dominates whatever the loop does.

Both "before" and "after" results are checked equal before anything is timed.

    OMP_NUM_THREADS=1 PYTHONPATH=$PWD .venv/bin/python benchmarks/bench_io.py [--n 100] [--repeats 7]
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
PTB = ROOT / ".." / "shared" / "fixtures" / "ecg" / "ptb" / "s0010_re"


def _module_from_git(rev: str, path: str, name: str, replace: dict[str, str] | None = None):
    """Import ``path`` as it was at git revision ``rev`` under the module name ``name``."""
    source = subprocess.run(["git", "show", f"{rev}:{path}"], cwd=ROOT, check=True, capture_output=True,
                            text=True).stdout
    for old, new in (replace or {}).items():
        source = source.replace(old, new)
    folder = Path(tempfile.mkdtemp(prefix="bench_io_"))
    file = folder / f"{name}.py"
    file.write_text(source)
    spec = importlib.util.spec_from_file_location(name, file)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def _same_ecg(a, b) -> bool:
    return (a.signal.dtype == b.signal.dtype and a.signal.shape == b.signal.shape
            and np.array_equal(a.signal.view(np.uint32), b.signal.view(np.uint32))
            and a.fs == b.fs and a.leads == b.leads and a.meta == b.meta)


def bench_read(rev: str, n: int, repeats: int, ptb_reads: int) -> dict:
    """Per-record seconds of read_ecg (after, before) and wfdb.rdsamp, interleaved."""
    import wfdb

    from riskfm.ecg.io import read_ecg, register_ecg_reader
    from riskfm.ecg.readers import BUILTIN_READERS
    from riskfm.ecg.store import manifest_ecg_paths
    from riskfm.synthetic import make_cohort

    _module_from_git(rev, "riskfm/ecg/assembly.py", "_bench_old_assembly")
    old_wfdb = _module_from_git(rev, "riskfm/ecg/wfdb_read.py", "_bench_old_wfdb_read",
                                {"from riskfm.ecg.assembly import": "from _bench_old_assembly import"})
    builtin = next(r for r in BUILTIN_READERS if r.name == "wfdb")

    def use(read) -> None:
        register_ecg_reader("wfdb", builtin.sniff, read, description=builtin.description, replace=True)

    def old_read(path, leads):
        return old_wfdb.read_wfdb(path, leads)

    def read_before(path):
        use(old_read)
        try:
            return read_ecg(path)
        finally:
            use(builtin.read)

    def rdsamp(path):
        return wfdb.rdsamp(str(path))

    methods = {"read_ecg_after": read_ecg, "read_ecg_before": read_before, "wfdb_rdsamp": rdsamp}
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        cohort = make_cohort(n=n, seed=0, out_dir=Path(tmp) / "cohort", missing_ecg=0.0, missing_ct=1.0,
                             n_workers=1)
        groups = {"synthetic": [Path(k.removesuffix(".hea")) for k in manifest_ecg_paths(cohort.manifest_path)]}
        if Path(f"{PTB}.hea").is_file():
            groups["ptb_fixture"] = [PTB.resolve()] * ptb_reads
        for group, records in groups.items():
            for record in dict.fromkeys(records):
                if not _same_ecg(read_ecg(record), read_before(record)):
                    raise AssertionError(f"read_ecg before/after differ on {record}")
            per_rep = {name: [] for name in methods}
            for rep in range(repeats):
                spent = dict.fromkeys(methods, 0.0)
                names = list(methods)
                for i, record in enumerate(records):
                    shift = (i + rep) % len(names)  # rotate which method goes first
                    for name in names[shift:] + names[:shift]:
                        t0 = time.perf_counter()
                        methods[name](record)
                        spent[name] += time.perf_counter() - t0
                for name in methods:
                    per_rep[name].append(spent[name] / len(records))
            ms = {name: float(np.median(v)) * 1e3 for name, v in per_rep.items()}
            info = wfdb.rdheader(str(records[0]))
            results[group] = {
                "records": len(records), "distinct_records": len(dict.fromkeys(records)),
                "record": f"{info.n_sig} channels, {info.sig_len} samples at {info.fs:g} Hz",
                "ms_per_record": {k: round(v, 3) for k, v in ms.items()},
                "ratio_to_rdsamp_before": round(ms["read_ecg_before"] / ms["wfdb_rdsamp"], 2),
                "ratio_to_rdsamp_after": round(ms["read_ecg_after"] / ms["wfdb_rdsamp"], 2),
                "speedup_after_vs_before": round(ms["read_ecg_before"] / ms["read_ecg_after"], 2),
            }
    return results


def _demo_samples(batch: int, seed: int, ct_every: int | None = 1):
    from riskfm.data import Sample

    rng = np.random.default_rng(seed)
    out = []
    for i in range(batch):
        out.append(Sample(
            f"P{i:05d}", site="s0", index=i, ecg=rng.normal(size=(12, 174)).astype(np.float32),
            ecg_lead_mask=np.ones(12, bool),
            ct=rng.random((4, 40, 64, 64), dtype=np.float32) if ct_every and i % ct_every == 0 else None,
            clinical_tabular=rng.normal(size=28).astype(np.float32),
            stenosis=rng.integers(0, 2, 4).astype(np.float32), mace_30d=float(i % 2),
            time_to_event_days=float(i), event=float(i % 2),
        ))
    return out


def _same_batch(a: dict, b: dict) -> bool:
    import torch

    if list(a) != list(b):
        return False
    for key, value in a.items():
        other = b[key]
        if isinstance(value, torch.Tensor):
            if (other.dtype != value.dtype or other.shape != value.shape
                    or not np.array_equal(value.numpy(), other.numpy(), equal_nan=True)):
                return False
        elif value != other:
            return False
    return True


def bench_collate(rev: str, batch_sizes: list[int], repeats: int) -> dict:
    """Milliseconds per batch: collate_samples after / before, default_collate on plain dicts."""
    from torch.utils.data import default_collate

    from riskfm.data.sample import collate_samples

    old = _module_from_git(rev, "riskfm/data/sample.py", "_bench_old_sample")
    fields = ("ecg", "ecg_lead_mask", "ct", "clinical_tabular", "stenosis", "mace_30d", "time_to_event_days", "event")
    results = {}
    for batch in batch_sizes:
        for case, ct_every in (("all_present", 1), ("ct_missing_every_other", 2), ("no_ct", None)):
            samples = _demo_samples(batch, seed=batch, ct_every=ct_every)
            if not _same_batch(collate_samples(samples), old.collate_samples(samples)):
                raise AssertionError(f"collate_samples before/after differ (batch {batch}, {case})")
            methods = {"collate_samples_after": lambda s=samples: collate_samples(s),
                       "collate_samples_before": lambda s=samples: old.collate_samples(s)}
            if ct_every != 2:  # default_collate has no presence flags: only batches without gaps
                dicts = [{f: getattr(s, f) for f in fields if f != "ct" or ct_every} for s in samples]
                methods["torch_default_collate"] = lambda d=dicts: default_collate(d)
            # calls per timing: enough for ~20 ms, so sub-millisecond batches are not timer noise
            t0 = time.perf_counter()
            methods["collate_samples_after"]()
            number = max(1, int(0.02 / max(time.perf_counter() - t0, 1e-6)))
            per_rep = {name: [] for name in methods}
            names = list(methods)
            for rep in range(repeats):
                shift = rep % len(names)
                for name in names[shift:] + names[:shift]:
                    t0 = time.perf_counter()
                    for _ in range(number):
                        out = methods[name]()
                        del out
                    per_rep[name].append((time.perf_counter() - t0) / number)
            ms = {name: float(np.median(v)) * 1e3 for name, v in per_rep.items()}
            entry = {"calls_per_timing": number, "ms_per_batch": {k: round(v, 3) for k, v in ms.items()},
                     "speedup_after_vs_before": round(ms["collate_samples_before"] / ms["collate_samples_after"], 2)}
            if "torch_default_collate" in ms:
                entry["ratio_to_default_collate_after"] = round(ms["collate_samples_after"] / ms["torch_default_collate"], 2)
                entry["ratio_to_default_collate_before"] = round(
                    ms["collate_samples_before"] / ms["torch_default_collate"], 2)
            results[f"batch_{batch}_{case}"] = entry
            del samples, methods
    return results


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=100, help="synthetic WFDB records (10 s, 500 Hz, 12 leads)")
    parser.add_argument("--ptb-reads", type=int, default=20, help="reads of the PTB fixture record per repeat")
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[32, 256])
    parser.add_argument("--before", default="85b4a0a",
                        help="git revision with the code before the change (default: this branch's base)")
    parser.add_argument("--parts", nargs="+", choices=["read", "collate"], default=["read", "collate"],
                        help="run only these parts; the others keep their numbers from the existing io.json")
    args = parser.parse_args()
    import torch

    out = Path(__file__).parent / "results" / "io.json"
    previous = json.loads(out.read_text()) if out.is_file() else {}

    result = {
        "before_revision": args.before,
        "threads": {"torch": torch.get_num_threads(), "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS")},
        "cpu_count": os.cpu_count(),
        "repeats": args.repeats,
        "read_ecg": (bench_read(args.before, args.n, args.repeats, args.ptb_reads) if "read" in args.parts
                     else previous.get("read_ecg")),
        "collate": (bench_collate(args.before, args.batch_sizes, args.repeats) if "collate" in args.parts
                    else previous.get("collate")),
        "note": "medians over repeats, methods interleaved on a shared, noisy CPU; before = code at "
                "before_revision loaded from git",
    }
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(result, indent=1))
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
