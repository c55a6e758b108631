"""Training from the prepared cache at 500 / 2,000 / 10,000 patients, against today's in-memory path.

Writes benchmarks/results/scale.json (issue 14 item 5). Not a test: it writes tens of GB.

Cohorts: ``n`` patients with a 12-lead WFDB ECG (10 s, 500 Hz) and a CT at the encoder's grid
(64 x 128 x 128 voxels at 2.0 x 1.5 x 1.5 mm, written 66 x 130 x 130 so that every file is
cropped), uncompressed NIfTI int16. The CTs come from a fast renderer written here (body, heart,
contrast-filled lumen, a plaque blob, noise: ~10 ms a volume) because riskfm's anatomical renderer
takes ~1 s at this grid; the content does not matter for what is measured. Free disk is checked
first (about 4.5 MB per patient: source + cache), and everything written is deleted at the end.

Per size, each measurement in a fresh process (so peak memory is that measurement's alone):

* ``fill``: time to fill the cache (``PreparedCache.fill``) with 1 thread (on the first 300
  files, reported per file) and with 2 threads (every file);
* ``cache``: training steps from the cache with ``num_workers`` DataLoader workers (2), the
  dataset built as ``riskfm train`` builds it (HU from the workers, window channels computed in the
  training process and counted as step time, not waiting): peak RSS
  of the training process and of a worker, seconds per patient (fixed number of steps over a
  shuffled epoch, after 3 warm-up steps), and the share of step time spent waiting for data;
* ``memory``: today's path, ``data.cache: false`` and ``num_workers: 0`` (every array in the
  process before the first step), where it fits in memory (skipped with the reason where not);
* ``predict``: ``predict_loaded`` (riskfm predict's library call, with ``num_workers: auto``) on
  500 cached patients, against the model's forward pass alone on the same batches, already
  collated and windowed in memory; three interleaved repeats, medians.

At the smallest size also a 2-process DDP run on CPU (gloo, torchrun) from the cache: every
patient exactly once in the predictions.

    OMP_NUM_THREADS=1 PYTHONPATH=$PWD .venv/bin/python benchmarks/bench_scale.py [--sizes 500 2000 10000]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
CT_SHAPE = (64, 128, 128)
CT_WRITTEN = (66, 130, 130)
SPACING = (2.0, 1.5, 1.5)
BYTES_PER_PATIENT = 2 * int(np.prod(CT_WRITTEN)) + 2 * int(np.prod(CT_SHAPE)) + 2 * 12 * 5000 * 2


# ----------------------------------------------------------------------------------------- cohort
def _fast_ct(rng: np.random.Generator, plaque: bool) -> np.ndarray:
    z, y, x = np.ogrid[:CT_WRITTEN[0], :CT_WRITTEN[1], :CT_WRITTEN[2]]
    cz, cy, cx = (s / 2 for s in CT_WRITTEN)
    hu = np.full(CT_WRITTEN, -1000.0, np.float32)
    body = ((y - cy) / 60) ** 2 + ((x - cx) / 62) ** 2 < 1
    hu[np.broadcast_to(body, CT_WRITTEN)] = 30.0
    heart = ((z - cz) / 22) ** 2 + ((y - cy - 5) / 30) ** 2 + ((x - cx + 8) / 34) ** 2 < 1
    hu[heart] = 45.0
    ly, lx = cy + rng.uniform(-10, 10), cx + rng.uniform(-10, 10)
    lumen = ((y - ly) / 4) ** 2 + ((x - lx) / 4) ** 2 < 1
    hu[np.broadcast_to(lumen, CT_WRITTEN) & heart] = 350.0 + rng.normal(0, 30)
    if plaque:
        pz = rng.uniform(cz - 10, cz + 10)
        blob = ((z - pz) / 3) ** 2 + ((y - ly) / 3) ** 2 + ((x - lx - 3) / 3) ** 2 < 1
        hu[blob] = 700.0
    hu += rng.normal(0, 15, CT_WRITTEN).astype(np.float32)
    return hu


def write_cohort(root: Path, n: int, seed: int = 0) -> Path:
    """Write n patients (ECG + CT + labels) and their manifest; returns the manifest path."""
    import nibabel as nib
    import wfdb

    rng = np.random.default_rng(seed)
    (root / "ecg").mkdir(parents=True, exist_ok=True)
    (root / "ct").mkdir(parents=True, exist_ok=True)
    leads = ["I", "II", "III", "aVR", "aVL", "aVF", "V1", "V2", "V3", "V4", "V5", "V6"]
    t = np.arange(5000) / 500.0
    rows = []
    affine = np.diag([SPACING[2], SPACING[1], SPACING[0], 1.0])
    for i in range(n):
        pid = f"P{i:05d}"
        y = rng.random(4) < 0.25
        beat = np.sin(2 * np.pi * 1.2 * t)[None] * rng.uniform(0.5, 1.5, (12, 1))
        sig = (beat + 0.05 * rng.standard_normal((12, 5000)) - 0.1 * y[2]).T
        wfdb.wrsamp(pid, fs=500, units=["mV"] * 12, sig_name=leads, p_signal=sig, fmt=["16"] * 12,
                    adc_gain=[1000.0] * 12, baseline=[0] * 12, write_dir=str(root / "ecg"))
        hu = _fast_ct(rng, bool(y[2]))
        # NIfTI stores x, y, z: transpose riskfm's [Z, Y, X]
        nib.save(nib.Nifti1Image(np.rint(hu).astype(np.int16).transpose(2, 1, 0), affine), str(root / "ct" / f"{pid}.nii"))
        rows.append({"patient_id": pid, "site": "ext" if i % 10 == 0 else "main", "ecg_path": f"ecg/{pid}",
                     "ct_path": f"ct/{pid}.nii", "stenosis_rca": int(y[0]), "stenosis_lm": int(y[1]),
                     "stenosis_lad": int(y[2]), "stenosis_lcx": int(y[3]), "mace_30d": int(y.any()),
                     "time_to_event_days": 30.0, "event": int(y.any())})
    import pandas as pd

    manifest = root / "cohort.csv"
    pd.DataFrame(rows).to_csv(manifest, index=False)
    return manifest


# ------------------------------------------------------------------------------------- measuring
def run_config(manifest: Path, cache: Path | None, workers: int) -> dict:
    """The benchmark's run: ECG (resnet1d-small) + CT (cnn3d-small at the 64 x 128 x 128 grid)."""
    return {
        "manifest": str(manifest), "out": str(manifest.parent / "run"), "modalities": ["ecg", "ct"],
        "targets": ["stenosis"], "split": {"external_sites": ["ext"]},
        "encoders": {"ecg": {"name": "resnet1d-small"},
                     "ct": {"name": "cnn3d-small",
                            "kwargs": {"input_spec": {"shape": list(CT_SHAPE), "spacing": list(SPACING)}}}},
        "train": {"batch_size": 16, "num_workers": workers, "augment": True, "progress": False},
        "data": {"cache": cache is not None, "cache_dir": None if cache is None else str(cache), "n_workers": 2},
    }


def _peak_rss_mb() -> tuple[float, float]:
    """Peak RSS (MB) of this process and of its largest finished child (Linux reports kB)."""
    return (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024)


def measure_training(manifest: Path, cache: Path | None, workers: int, steps: int) -> dict:
    """Train ``steps`` steps (after 3 warm-up steps) and report time, data waiting and peak memory."""
    import torch

    from riskfm.data.dataset import RiskDataset
    from riskfm.train.config import RunConfig
    from riskfm.train.run import build_encoders, build_model, load_cohort, prepare_for
    from riskfm.train.trainer import data_loader

    cfg = RunConfig(**run_config(manifest, cache, workers))
    torch.manual_seed(0)
    cohort = load_cohort(cfg)
    encoders = build_encoders(cfg)
    t0 = time.perf_counter()
    prepared = prepare_for(cohort, encoders, n_workers=2, cfg=cfg)
    t_prepare = time.perf_counter() - t0
    # as run_training builds them: CT as HU from the workers, window channels in this process
    ds = RiskDataset(cohort, prepared, clinical=None, augment=True, seed=0, ct_windows="batch")
    model = build_model(cfg, encoders, ds.frame())
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    loader = data_loader(ds, cfg.train.batch_size, workers, shuffle=True)
    it = iter(loader)
    wait = compute = 0.0
    seen = 0
    for step in range(3 + steps):
        t0 = time.perf_counter()
        try:
            batch = next(it)
        except StopIteration:  # a small cohort: the next epoch (worker start-up counts as waiting)
            it = iter(loader)
            batch = next(it)
        t1 = time.perf_counter()
        batch = ds.finish_batch(batch)
        out = model(batch)
        loss, _ = model.loss(out, batch)
        opt.zero_grad()
        loss.backward()
        opt.step()
        t2 = time.perf_counter()
        if step >= 3:
            wait += t1 - t0
            compute += t2 - t1
            seen += len(batch["patient_id"])
    del it, loader
    main_mb, child_mb = _peak_rss_mb()
    return {"patients": len(ds), "prepare_seconds": round(t_prepare, 2), "steps": steps,
            "seconds_per_patient": (wait + compute) / seen, "data_wait_share": wait / (wait + compute),
            "peak_rss_mb": round(main_mb, 1), "peak_worker_rss_mb": round(child_mb, 1), "workers": workers}


def measure_predict(manifest: Path, cache: Path, n: int) -> dict:
    """``predict_loaded`` on the first ``n`` patients vs the forward pass alone on the same batches."""
    import pandas as pd
    import torch

    from riskfm.data.dataset import RiskDataset
    from riskfm.data.sample import collate_samples
    from riskfm.train.config import RunConfig
    from riskfm.train.run import (
        LoadedRunModel,
        build_encoders,
        build_model,
        load_cohort,
        predict_loaded,
        prepare_for,
    )

    sub = manifest.parent / f"first{n}.csv"
    pd.read_csv(manifest).head(n).to_csv(sub, index=False)
    os.environ["RISKFM_CACHE_DIR"] = str(cache)  # predict uses this machine's default cache
    cfg = RunConfig(**run_config(sub, cache, "auto"))
    torch.manual_seed(0)
    encoders = build_encoders(cfg)
    model = build_model(cfg, encoders).eval()
    loaded = LoadedRunModel(model, cfg, None, [], {})
    predict_loaded(loaded, sub, batch_size=32)  # fills any missing item, warms up
    ds = RiskDataset(load_cohort(cfg), prepare_for(load_cohort(cfg), encoders, cfg=cfg), clinical=None)
    batches = [collate_samples([ds[i] for i in range(k, min(k + 32, len(ds)))]) for k in range(0, len(ds), 32)]
    times = {"predict": [], "forward": []}
    for _ in range(3):  # interleaved repeats: a noisy CPU slows both alike
        t0 = time.perf_counter()
        predict_loaded(loaded, sub, batch_size=32)
        times["predict"].append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        with torch.no_grad():
            for b in batches:
                model(b)
        times["forward"].append(time.perf_counter() - t0)
    p, f = float(np.median(times["predict"])), float(np.median(times["forward"]))
    return {"patients": n, "predict_seconds": p, "forward_seconds": f, "ratio": p / f}


def measure_fill(manifest: Path, cache: Path, threads: int, limit: int | None) -> dict:
    """Fill a cache for the benchmark's two pipelines; seconds and seconds per file."""
    import pandas as pd

    from riskfm.ct.spec import CTInputSpec
    from riskfm.ct.transforms import ct_pipeline
    from riskfm.data.cache import PreparedCache
    from riskfm.ecg.spec import ECGInputSpec
    from riskfm.ecg.transforms import ecg_pipeline
    from riskfm.train.config import RunConfig
    from riskfm.train.run import build_encoders

    cfg = RunConfig(**run_config(manifest, cache, 0))
    encoders = build_encoders(cfg)
    assert isinstance(encoders["ct"].input_spec, CTInputSpec) and isinstance(encoders["ecg"].input_spec, ECGInputSpec)
    table = pd.read_csv(manifest).head(limit) if limit else pd.read_csv(manifest)
    out = {}
    for m, pipe in (("ecg", ecg_pipeline(encoders["ecg"].input_spec)), ("ct", ct_pipeline(encoders["ct"].input_spec))):
        paths = [str((manifest.parent / p).resolve()) for p in table[f"{m}_path"]]
        c = PreparedCache(cache, pipe)
        r = c.fill(paths, workers=threads)
        out[m] = {"files": len(paths), "seconds": round(r.seconds, 2), "seconds_per_file": r.seconds / len(paths),
                  "prepared": r.prepared, "failed": r.failed, "size_mb": round(c.size_bytes() / 2**20, 1)}
    return out


def measure_ddp(manifest: Path, cache: Path, n: int) -> dict:
    """A 2-process gloo run under torchrun from the cache on the first n patients: each patient once."""
    import pandas as pd
    import yaml

    sub = manifest.parent / f"ddp{n}.csv"
    pd.read_csv(manifest).head(n).to_csv(sub, index=False)
    cfg = run_config(sub, cache, "auto")
    cfg["out"] = str(manifest.parent / "ddp_run")
    cfg["train"].update({"epochs": 1, "accelerator": "cpu"})
    cfg["evaluate"] = {"n_boot": 20, "figures": False}
    path = manifest.parent / "ddp.yaml"
    path.write_text(yaml.safe_dump(cfg))
    torchrun = Path(sys.executable).parent / "torchrun"
    t0 = time.perf_counter()
    proc = subprocess.run([str(torchrun), "--standalone", "--nproc_per_node", "2", "-m", "riskfm.cli", "train",
                           str(path)], capture_output=True, text=True, env={**os.environ, "OMP_NUM_THREADS": "1"})
    if proc.returncode:
        return {"ok": False, "error": (proc.stdout + proc.stderr)[-2000:]}
    preds = pd.read_csv(Path(cfg["out"]) / "predictions.csv")
    splits = pd.read_csv(Path(cfg["out"]) / "splits.csv")
    once = not preds.duplicated(["patient_id", "target"]).any() and \
        set(preds["patient_id"]) == set(splits["patient_id"])
    return {"ok": bool(once), "patients": int(preds["patient_id"].nunique()), "seconds": round(time.perf_counter() - t0, 1),
            "each_patient_exactly_once": bool(once)}


def _child(kind: str, **kw) -> dict:
    """Run one measurement in a fresh interpreter and return its JSON."""
    args = [sys.executable, __file__, "--child", kind, "--kw", json.dumps({k: str(v) if isinstance(v, Path) else v
                                                                          for k, v in kw.items()})]
    proc = subprocess.run(args, capture_output=True, text=True, env={**os.environ, "OMP_NUM_THREADS": "1"})
    if proc.returncode:
        raise RuntimeError(f"{kind} failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", type=int, nargs="+", default=[500, 2000, 10000])
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--root", type=Path, default=Path("/tmp/riskfm_bench_scale"))
    ap.add_argument("--memory-limit-gb", type=float, default=12.0,
                    help="skip the in-memory path where its arrays alone would exceed this")
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "scale.json")
    ap.add_argument("--child")
    ap.add_argument("--kw")
    a = ap.parse_args()
    if a.child:
        kw = json.loads(a.kw)
        for k in ("manifest", "cache"):
            if kw.get(k) is not None:
                kw[k] = Path(kw[k])
        fn = {"train": measure_training, "predict": measure_predict, "fill": measure_fill, "ddp": measure_ddp}[a.child]
        print(json.dumps(fn(**kw)))
        return
    need = max(a.sizes) * BYTES_PER_PATIENT * 1.1
    free = shutil.disk_usage(a.root.parent if not a.root.exists() else a.root).free
    if free < need:
        sys.exit(f"bench_scale: needs {need / 2**30:.1f} GB free under {a.root}, has {free / 2**30:.1f} GB")
    results = {"machine": {"cpus": os.cpu_count(), "torch_threads": 1}, "ct_grid": list(CT_SHAPE),
               "batch_size": 16, "steps": a.steps, "loader_workers": a.workers, "sizes": {}}
    try:
        for n in a.sizes:
            shutil.rmtree(a.root, ignore_errors=True)
            t0 = time.perf_counter()
            manifest = write_cohort(a.root / "cohort", n)
            r: dict = {"write_seconds": round(time.perf_counter() - t0, 1)}
            print(f"n={n}: cohort written in {r['write_seconds']} s", flush=True)
            r["fill_1_thread_first_300"] = _child("fill", manifest=manifest, cache=a.root / "cache1", threads=1,
                                                  limit=min(n, 300))
            shutil.rmtree(a.root / "cache1", ignore_errors=True)
            r["fill_2_threads"] = _child("fill", manifest=manifest, cache=a.root / "cache", threads=2, limit=None)
            print(f"n={n}: fill {r['fill_2_threads']}", flush=True)
            r["cache"] = _child("train", manifest=manifest, cache=a.root / "cache", workers=a.workers, steps=a.steps)
            print(f"n={n}: cache {r['cache']}", flush=True)
            in_memory_gb = n * (2 * np.prod(CT_SHAPE) + 2 * 12 * 5000) / 2**30
            if in_memory_gb <= a.memory_limit_gb:
                r["memory"] = _child("train", manifest=manifest, cache=None, workers=0, steps=a.steps)
                print(f"n={n}: memory {r['memory']}", flush=True)
            else:
                r["memory"] = {"skipped": f"its arrays alone would take {in_memory_gb:.1f} GB of RAM "
                                          f"(limit {a.memory_limit_gb} GB)"}
            r["predict"] = _child("predict", manifest=manifest, cache=a.root / "cache", n=min(n, 500))
            print(f"n={n}: predict {r['predict']}", flush=True)
            if n == min(a.sizes):
                r["ddp_2_processes"] = _child("ddp", manifest=manifest, cache=a.root / "cache", n=min(n, 160))
                print(f"n={n}: ddp {r['ddp_2_processes']}", flush=True)
            results["sizes"][str(n)] = r
            a.out.write_text(json.dumps(results, indent=2, default=float) + "\n")
    finally:
        shutil.rmtree(a.root, ignore_errors=True)
    sizes = sorted(results["sizes"], key=int)
    if len(sizes) > 1:
        lo, hi = results["sizes"][sizes[0]]["cache"], results["sizes"][sizes[-1]]["cache"]
        results["targets"] = {
            "peak_rss_ratio_largest_vs_smallest": hi["peak_rss_mb"] / lo["peak_rss_mb"],
            "seconds_per_patient_max_over_min": max(results["sizes"][s]["cache"]["seconds_per_patient"] for s in sizes)
            / min(results["sizes"][s]["cache"]["seconds_per_patient"] for s in sizes),
            "data_wait_share_max": max(results["sizes"][s]["cache"]["data_wait_share"] for s in sizes),
            "predict_over_forward_max": max(results["sizes"][s]["predict"]["ratio"] for s in sizes),
        }
    a.out.write_text(json.dumps(results, indent=2, default=float) + "\n")
    print(json.dumps(results.get("targets", {}), indent=2))


if __name__ == "__main__":
    main()
