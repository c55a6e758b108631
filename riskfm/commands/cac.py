"""``riskfm cac ...``: score a scan, train the segmentation model, the non-gated bucket model, the seed-000 protocols.

Parse, validate, call the library; no logic lives here. ``score`` calls
:func:`riskfm.ct.calcium.score_scan` and writes what its :class:`~riskfm.ct.calcium.CalciumReport`
holds; ``train`` calls :func:`riskfm.train.tasks.calcium_segmentation.train_segmenter_on_synthetic`;
``nongated`` :func:`riskfm.recipes.cac_nongated.run_nongated_synthetic` and the protocols their
recipe (:mod:`riskfm.recipes`). Long steps report on stderr
(:mod:`riskfm.progress`: status lines and bars, silenced by ``riskfm --quiet``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from riskfm.commands.common import OUT_DIR, SEED, OptionGroup, check_choice, handle_errors

app = typer.Typer(add_completion=False, no_args_is_help=True,
                  help="Coronary artery calcium: Agatston / volume / mass per artery, segmentation, protocols.")

#: Training length and seed of every command that trains a segmentation model (defaults per command).
TRAINING = OptionGroup(epochs=(int, 10), steps_per_epoch=(int, 25), seed=(SEED, 0))
CORA_ENCODER = Annotated[Path | None, typer.Option(
    help="pretrained CORA encoder (riskfm pretrain-ct checkpoint; width 8) for the 3D arm")]
CALCIUM_MODEL = "trained segmentation model (.pt from 'riskfm cac train')"
FAIRNESS_METRICS = ("mae", "rmse", "bias")


@app.command()
@handle_errors
def score(
    path: Annotated[Path, typer.Argument(help="DICOM series folder or NIfTI file (non-contrast CT)")],
    model: Annotated[Path | None, typer.Option(help=CALCIUM_MODEL)] = None,
    roi: Annotated[Path | None, typer.Option(help="heart mask NIfTI on the same grid (default: estimated from CT)")] = None,
    out: Annotated[Path, typer.Option(help="output folder for the tables and the overlay PNG")] = Path("cac_score"),
    threshold: Annotated[float, typer.Option(help="calcium threshold in HU")] = 130.0,
    min_area_mm2: Annotated[float, typer.Option(help="smallest lesion counted, mm^2 per slice")] = 1.0,
    slice_increment: Annotated[float | None, typer.Option(help="mm between slice centres (default: z spacing)")] = None,
    slice_thickness: Annotated[float | None, typer.Option(
        help="reconstructed slice thickness in mm, for the scan checks (default: DICOM SliceThickness, "
             "else the z spacing)")] = None,
    calibration_factor: Annotated[float | None, typer.Option(help="mg HA/cm^3 per HU, for the mass score")] = None,
    force: Annotated[bool, typer.Option(
        "--force", help="score a scan that fails the scan checks (contrast, heart not in view, oblique, slice "
                        "thickness); every finding is printed as a WARNING and written to scan_checks.csv")] = False,
) -> None:
    """Score one scan: per-artery table (with a model) or total inside a heart ROI (without).

    The scan is checked first (docs/calcium.md, "Which scans can be scored"): contrast-enhanced
    scans, scans without the heart in view, tilted slices and slices outside 1.5-5 mm are refused
    unless --force is given.
    """
    from riskfm.ct.calcium import score_scan

    report = score_scan(path, model=model, heart_mask=roi, threshold=threshold, min_area_mm2=min_area_mm2,
                        slice_increment=slice_increment, slice_thickness=slice_thickness,
                        calibration_factor=calibration_factor, force=force)
    paths = report.write(out)
    png = report.plot(out / "overlay.png")
    typer.echo(report.score.table().round(1).to_string())
    how = "model" if report.method == "model" else "threshold inside heart ROI (no artery split)"
    typer.echo(f"Agatston {report.agatston:.1f} (bucket {report.category}, CAC-DRS {report.cac_drs_category}); {how}")
    if report.forced:
        typer.echo(f"WARNING: scored with --force despite {len(report.refusals)} failed scan check(s): "
                   "this number is not a valid calcium score")
    for line in report.warning_lines():
        typer.echo(line)
    typer.echo(f"wrote {paths['per_artery']}, {paths['lesions']}, {paths['scan_checks']}, {png}")


@app.command()
@handle_errors
@TRAINING()
def train(
    out: Annotated[Path, typer.Option(help="where to write the model (.pt)")] = Path("cac_model.pt"),
    model: Annotated[str, typer.Option(help="unet2d (slice-wise U-Net), cora3d (CORA 3D U-Net, the "
                                             "foundation-model fine-tune) or seg3d (cnn3d-small 3D network)")] = "unet2d",
    n_exams: Annotated[int, typer.Option(help="synthetic training exams")] = 24,
    encoder_checkpoint: Annotated[Path | None, typer.Option(
        help="pretrained encoder: riskfm pretrain-ct checkpoint (cora3d) or cnn3d-small (seg3d)")] = None,
    roi: Annotated[str, typer.Option(help="estimate: learn (and later predict) inside the heart ROI estimated "
                                          "from each CT; none: every voxel >= 130 HU")] = "estimate",
    *,
    options: dict,
) -> None:
    """Train the calcium segmentation model on synthetic exams and save it."""
    from riskfm.ct.calcium.segmentation import MODELS, ROI_MODES
    from riskfm.train.tasks.calcium_segmentation import train_segmenter_on_synthetic

    check_choice(model, MODELS, "--model")  # before the exams are rendered
    check_choice(roi, ROI_MODES, "--roi")
    seg = train_segmenter_on_synthetic(n_exams, model=model, roi=roi, encoder_checkpoint=encoder_checkpoint,
                                       out=out, **options)
    typer.echo(f"loss per epoch {[round(v, 3) for v in seg.config.history]}; wrote {out}")


@app.command("low-data")
@handle_errors
@TRAINING(steps_per_epoch=10)
def low_data(
    out: OUT_DIR = Path("cac_low_data"),
    n_exams: int = 20,
    folds: int = 5,
    encoder_checkpoint: CORA_ENCODER = None,
    *,
    options: dict,
) -> None:
    """Low-data protocol: 5-fold CV at 100/75/50/25% of the training folds, Dice per model."""
    from riskfm.recipes.cac_low_data import run_low_data

    res = run_low_data(out, n_exams=n_exams, n_folds=folds, encoder_checkpoint=encoder_checkpoint, **options)
    cols = ["model", "fraction", "dice_overall_mean", "dice_overall_std"]
    typer.echo(res.tables["summary"][cols].round(3).to_string(index=False))
    typer.echo("wrote " + ", ".join(str(p) for p in res.paths.values()))


@app.command()
@handle_errors
@TRAINING(epochs=6, steps_per_epoch=20)
def fairness(
    out: OUT_DIR = Path("cac_fairness"),
    n_train: int = 16,
    n_test: int = 40,
    encoder_checkpoint: CORA_ENCODER = None,
    metric: Annotated[str, typer.Option(help="gap shown in the figure: mae, rmse or bias")] = "mae",
    *,
    options: dict,
) -> None:
    """Fairness protocol: MAE / RMSE / bias and gaps per subgroup for two models, with a figure."""
    from riskfm.recipes.cac_fairness import run_fairness

    check_choice(metric, FAIRNESS_METRICS, "--metric")  # before two models are trained
    res = run_fairness(out, n_train=n_train, n_test=n_test, encoder_checkpoint=encoder_checkpoint, metric=metric,
                       **options)
    for name in res.metrics["models"]:
        typer.echo(f"== {name}")
        typer.echo(res.tables[f"fairness_{name}"].round(2).to_string(index=False))
    typer.echo("wrote " + ", ".join(str(p) for p in res.paths.values()))


@app.command()
@handle_errors
@TRAINING()
def nongated(
    out: OUT_DIR = Path("cac_nongated"),
    model: Annotated[Path | None, typer.Option(
        help=CALCIUM_MODEL + "; default: train a U-Net on gated synthetic exams")] = None,
    n_train: Annotated[int, typer.Option(help="non-gated synthetic exams that fit the bucket trees")] = 60,
    n_test: Annotated[int, typer.Option(help="held-out non-gated synthetic exams")] = 40,
    *,
    options: dict,
) -> None:
    """Non-gated chest CT: segmentation -> 5-slice summaries -> gradient-boosted bucket trees, with kappa."""
    from riskfm.recipes.cac_nongated import run_nongated_synthetic

    res = run_nongated_synthetic(out, model, n_train=n_train, n_test=n_test, **options)
    m = res.metrics
    for name in ("trees", "mask"):
        lo, hi = m[name]["kappa"]["ci"] or (float("nan"), float("nan"))
        typer.echo(f"{name:5s}: kappa {m[name]['kappa']['value']:.3f} ({lo:.3f}-{hi:.3f}), "
                   f"accuracy {m[name]['accuracy']:.3f}")
    typer.echo("wrote " + ", ".join(str(p) for p in res.paths.values()))
