"""Regenerate the figures of docs/explain.md.

    python docs/figures/make_explain_figures.py [--run RUN_DIR] [--fixtures ../shared/fixtures]

1. A demo run (``riskfm demo``; a quick one is trained into a temporary folder when ``--run`` is not
   given) is explained with ``riskfm.explain.explain_run`` for its highest- and lowest-risk test
   patients: 12-lead print-out, median-beat map, CT slices, clinical variables, modality Shapley
   values, the cohort median-beat comparison and the sanity checks.
2. The same trained model is applied to the real fixtures: the PTB record s0010_re (ECG) and the
   cardiac CTA (CT), the figures a user gets for a real patient.

Writes PNGs at 120 dpi into docs/figures/explain/ (the print resolution of riskfm is 300 dpi).
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import torch

HERE = Path(__file__).resolve().parent
OUT = HERE / "explain"
DPI = 120


def _demo_run(run: Path | None) -> Path:
    if run is not None:
        return run
    from riskfm.recipes.demo import run_demo

    tmp = Path(tempfile.mkdtemp(prefix="riskfm_explain_docs_"))
    run_demo(tmp, quick=True)
    return tmp / "report"


def _patients(run: Path) -> list[str]:
    """The test patients with every modality and the highest / lowest predicted 30-day MACE risk."""
    import yaml

    preds = pd.read_csv(run / "predictions.csv", dtype={"patient_id": str})
    manifest = pd.read_csv(yaml.safe_load((run / "config.yaml").read_text())["manifest"], dtype={"patient_id": str})
    full = set(manifest.loc[(manifest["ecg_path"].fillna("") != "") & (manifest["ct_path"].fillna("") != ""),
                            "patient_id"])
    test = preds[(preds["split"] == "test") & (preds["target"] == "mace_30d") & preds["patient_id"].isin(full)]
    test = test.sort_values("y_prob")
    return [test["patient_id"].iloc[-1], test["patient_id"].iloc[0]]


def _real_fixtures(run: Path, fixtures: Path) -> None:
    """The demo model's ECG and CT explanations of the real PTB record and cardiac CTA."""
    from riskfm.ct import prepare_ct, read_ct
    from riskfm.ct.preprocess import crop_or_pad, resample_to_spacing
    from riskfm.data.sample import Sample, collate_samples
    from riskfm.ecg import prepare_ecg, read_ecg
    from riskfm.ecg.beats import detect_r_peaks, median_beat
    from riskfm.explain import explain
    from riskfm.explain.beat_space import paste_beats
    from riskfm.plots.ecg_paper import plot_ecg_paper
    from riskfm.plots.style import save_figure
    from riskfm.train.run import load_run_model

    model = load_run_model(run).model
    ecg_spec = model.encoders["ecg"].input_spec
    ecg = read_ecg(fixtures / "ecg" / "ptb" / "s0010_re")
    raw, mask = prepare_ecg(ecg, replace(ecg_spec, representation="raw"))
    x = raw
    if ecg_spec.representation == "median_beat":
        x = median_beat(raw, ecg_spec.fs, window_s=ecg_spec.beat_window_s)
    ct_spec = model.encoders["ct"].input_spec
    vol = read_ct(fixtures / "ct" / "cardiac_cta" / "ct.nii.gz")
    ct = prepare_ct(vol, ct_spec)
    # One "patient" with the real ECG and the real CT; no clinical data (the model's missing embedding).
    batch = collate_samples([Sample(patient_id="PTB s0010_re + cardiac CTA", ecg=x, ecg_lead_mask=mask, ct=ct)])
    a = explain(model, batch, "ecg", "integrated_gradients", "stenosis_rca", n_steps=64)
    title = "PTB s0010_re (inferolateral MI): integrated gradients for RCA stenosis"
    save_figure(a.plot(0, title=title), OUT / "real_s0010_re_median_beat.png", dpi=DPI)
    if a.representation == "median_beat":
        before = round(ecg_spec.beat_window_s[0] * ecg_spec.fs)
        overlay = paste_beats(a.values[0], detect_r_peaks(raw, ecg_spec.fs), raw.shape[1], before)
    else:
        overlay = a.values[0]
    fig = plot_ecg_paper(raw, ecg_spec.fs, ecg_spec.leads, attribution=overlay, title=title)
    save_figure(fig, OUT / "real_s0010_re_paper.png", dpi=DPI)
    c = explain(model, batch, "ct", "gradcam", "stenosis_lad")
    hu = crop_or_pad(resample_to_spacing(vol, ct_spec.spacing).array, ct_spec.shape, fill=-1024.0)
    fig = c.plot(0, hu=hu, window=(300.0, 800.0), title="Cardiac CTA fixture: 3D Grad-CAM for LAD stenosis")
    save_figure(fig, OUT / "real_cardiac_cta_gradcam.png", dpi=DPI)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", type=Path, default=None, help="a finished demo run (RUN/report)")
    parser.add_argument("--fixtures", type=Path, default=HERE.parents[2] / "shared" / "fixtures")
    args = parser.parse_args()
    torch.manual_seed(0)
    from riskfm.explain import explain_run

    run = _demo_run(args.run)
    OUT.mkdir(parents=True, exist_ok=True)
    for old in OUT.glob("*.png"):
        old.unlink()
    tmp = Path(tempfile.mkdtemp(prefix="riskfm_explain_out_"))
    patients = _patients(run)
    res = explain_run(run, patients, tmp, sanity=True, n_steps=32, cohort_size=300, dpi=DPI)
    # Stable names for the docs: the highest- and lowest-risk test patient.
    rename = {patients[0]: "high_risk", patients[1]: "low_risk"}
    for f in res.files:
        if f.suffix == ".png":
            name = f.name
            for pid, label in rename.items():
                name = name.replace(pid, label)
            shutil.copy(f, OUT / name)
    if args.fixtures.is_dir():
        _real_fixtures(run, args.fixtures)
    print(f"wrote {len(list(OUT.glob('*.png')))} figures to {OUT}")
    print("patients:", rename, "problems:", res.summary["problems"])
    print(np.round(pd.DataFrame(res.summary["cohort"]["modalities"]).set_index("modality")["mean"], 4).to_dict())


if __name__ == "__main__":
    main()
