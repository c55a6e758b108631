"""``riskfm cac ...``: score a scan, train the segmentation model, the non-gated bucket model, the seed-000 protocols.

Parse, validate, call the library; no logic lives here. Long steps report on stderr
(:mod:`riskfm.progress`: status lines and bars, silenced by ``riskfm --quiet``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from riskfm.commands.common import handle_errors

app = typer.Typer(add_completion=False, no_args_is_help=True,
                  help="Coronary artery calcium: Agatston / volume / mass per artery, segmentation, protocols.")


def _load_segmenter(path: Path):
    """``load_segmenter(path)`` with torch's load errors turned into one-line CheckpointErrors.

    riskfm.ct.calcium.segmentation.load_segmenter calls ``torch.load`` itself, so a corrupt file or
    one refused by weights_only loading raises torch's several-paragraph ``UnpicklingError`` /
    ``RuntimeError``; on such a failure the file is read again with
    :func:`riskfm.train.checkpoint.load_checkpoint`, whose message is short.
    """
    from riskfm.ct.calcium.segmentation import load_segmenter
    from riskfm.errors import CheckpointError, RiskfmError
    from riskfm.train.checkpoint import load_checkpoint

    try:
        return load_segmenter(path)
    except (RiskfmError, ValueError, PermissionError, FileNotFoundError, IsADirectoryError):
        raise  # already name the file (torch's OSError(22) on a truncated file does not: handled below)
    except Exception as exc:  # noqa: BLE001 - re-raised below with the file named
        load_checkpoint(path)  # raises a CheckpointError when the file itself is unreadable or refused
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise CheckpointError(f"{path}: not a calcium model this riskfm version can load ({first}); "
                              "train one with `riskfm cac train`") from exc


def _overlay(hu, labels, path: Path, *, flagged: bool = False) -> Path:
    """PNG of the slice with the most calcium, HU in a soft-tissue window, arteries coloured.

    ``flagged``: the scan has scan-check findings; the title says so in red.
    """
    import numpy as np
    from matplotlib.colors import ListedColormap

    from riskfm.plots.style import new_figure, publication_style, save_figure

    z = int(np.argmax((labels > 0).sum(axis=(1, 2)))) if labels.any() else hu.shape[0] // 2
    with publication_style():
        fig = new_figure(3.5, 3.5)
        ax = fig.add_subplot(1, 1, 1)
        ax.imshow(np.clip(hu[z], -200, 600), cmap="gray")
        cmap = ListedColormap(["#ffd700", "#d62728", "#2ca02c", "#1f77b4"])  # LM, LAD, LCX, RCA
        ax.imshow(np.ma.masked_equal(labels[z], 0), cmap=cmap, vmin=1, vmax=4, interpolation="nearest")
        title = f"slice {z}: LM yellow, LAD red, LCX green, RCA blue"
        if flagged:
            title += "\nWARNING: scan checks failed, see scan_checks.csv"
        ax.set_title(title, color="#d62728" if flagged else "black")
        ax.axis("off")
    return save_figure(fig, path)


@app.command()
@handle_errors
def score(
    path: Annotated[Path, typer.Argument(help="DICOM series folder or NIfTI file (non-contrast CT)")],
    model: Annotated[Path | None, typer.Option(help="trained segmentation model (.pt from 'riskfm cac train')")] = None,
    roi: Annotated[Path | None, typer.Option(help="heart mask NIfTI on the same grid (default: estimated from CT)")] = None,
    out: Annotated[Path, typer.Option(help="output folder for the tables and the overlay PNG")] = Path("cac_score"),
    threshold: float = 130.0,
    min_area_mm2: float = 1.0,
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
    from riskfm.ct.calcium import BUCKET_NAMES, CAC_DRS_NAMES
    from riskfm.ct.calcium.scan import score_scan

    segmenter = _load_segmenter(model) if model is not None else None  # a bad model fails before the CT is read
    res = score_scan(path, model=segmenter, roi=roi, threshold=threshold, min_area_mm2=min_area_mm2,
                     slice_increment=slice_increment, slice_thickness=slice_thickness,
                     calibration_factor=calibration_factor, force=force)
    paths = res.write(out)
    png = _overlay(res.volume.array, res.labels, out / "overlay.png", flagged=bool(res.findings))
    result = res.score
    typer.echo(result.table().round(1).to_string())
    how = "model" if res.method == "model" else "threshold inside heart ROI (no artery split)"
    typer.echo(f"Agatston {result.agatston:.1f} (bucket {BUCKET_NAMES[result.bucket]}, "
               f"CAC-DRS {CAC_DRS_NAMES[result.cac_drs]}); {how}")
    if res.forced:
        typer.echo(f"WARNING: scored with --force despite {len(res.refusals)} failed scan check(s): "
                   "this number is not a valid calcium score")
    for line in res.warning_lines():
        typer.echo(line)
    typer.echo(f"wrote {paths['per_artery']}, {paths['lesions']}, {paths['scan_checks']}, {png}")


@app.command()
@handle_errors
def train(
    out: Annotated[Path, typer.Option(help="where to write the model (.pt)")] = Path("cac_model.pt"),
    model: Annotated[str, typer.Option(help="unet2d (slice-wise U-Net), cora3d (CORA 3D U-Net, the "
                                             "foundation-model fine-tune) or seg3d (cnn3d-small 3D network)")] = "unet2d",
    n_exams: Annotated[int, typer.Option(help="synthetic training exams")] = 24,
    epochs: int = 10,
    steps_per_epoch: int = 25,
    encoder_checkpoint: Annotated[Path | None, typer.Option(
        help="pretrained encoder: riskfm pretrain-ct checkpoint (cora3d) or cnn3d-small (seg3d)")] = None,
    roi: Annotated[str, typer.Option(help="estimate: learn (and later predict) inside the heart ROI estimated "
                                          "from each CT; none: every voxel >= 130 HU")] = "estimate",
    seed: int = 0,
) -> None:
    """Train the calcium segmentation model on synthetic exams and save it."""
    from riskfm.ct.calcium.protocols import synthetic_exams
    from riskfm.ct.calcium.segmentation import train_segmenter
    from riskfm.progress import status

    status(f"rendering {n_exams} synthetic training exams")
    exams = synthetic_exams((seed * 7919 + i for i in range(n_exams)), desc="rendering exams")
    seg = train_segmenter(exams, model=model, epochs=epochs, steps_per_epoch=steps_per_epoch,
                          encoder_checkpoint=encoder_checkpoint, roi=roi, seed=seed, progress=f"training {model}")
    seg.save(out)
    typer.echo(f"loss per epoch {[round(v, 3) for v in seg.config.history]}; wrote {out}")


@app.command("low-data")
@handle_errors
def low_data(
    out: Annotated[Path, typer.Option(help="output folder")] = Path("cac_low_data"),
    n_exams: int = 20,
    folds: int = 5,
    epochs: int = 10,
    steps_per_epoch: int = 10,
    encoder_checkpoint: Annotated[Path | None, typer.Option(
        help="pretrained CORA encoder (riskfm pretrain-ct checkpoint; width 8) for the 3D arm")] = None,
    seed: int = 0,
) -> None:
    """Low-data protocol: 5-fold CV at 100/75/50/25% of the training folds, Dice per model."""
    from riskfm.recipes.cac_low_data import run_low_data

    res = run_low_data(out, n_exams=n_exams, n_folds=folds, epochs=epochs, steps_per_epoch=steps_per_epoch,
                       encoder_checkpoint=encoder_checkpoint, seed=seed)
    cols = ["model", "fraction", "dice_overall_mean", "dice_overall_std"]
    typer.echo(res["summary"][cols].round(3).to_string(index=False))
    typer.echo("wrote " + ", ".join(str(p) for p in res["paths"].values()))


@app.command()
@handle_errors
def fairness(
    out: Annotated[Path, typer.Option(help="output folder")] = Path("cac_fairness"),
    n_train: int = 16,
    n_test: int = 40,
    epochs: int = 6,
    steps_per_epoch: int = 20,
    encoder_checkpoint: Annotated[Path | None, typer.Option(
        help="pretrained CORA encoder (riskfm pretrain-ct checkpoint; width 8) for the 3D arm")] = None,
    metric: Annotated[str, typer.Option(help="gap shown in the figure: mae, rmse or bias")] = "mae",
    seed: int = 0,
) -> None:
    """Fairness protocol: MAE / RMSE / bias and gaps per subgroup for two models, with a figure."""
    from riskfm.recipes.cac_fairness import run_fairness

    res = run_fairness(out, n_train=n_train, n_test=n_test, epochs=epochs, steps_per_epoch=steps_per_epoch,
                       encoder_checkpoint=encoder_checkpoint, metric=metric, seed=seed)
    for name, t in res["tables"].items():
        typer.echo(f"== {name}")
        typer.echo(t.round(2).to_string(index=False))
    typer.echo("wrote " + ", ".join(str(p) for p in res["paths"].values()))


@app.command()
@handle_errors
def nongated(
    out: Annotated[Path, typer.Option(help="output folder")] = Path("cac_nongated"),
    model: Annotated[Path | None, typer.Option(help="trained segmentation model (.pt from 'riskfm cac train'); "
                                                    "default: train a U-Net on gated synthetic exams")] = None,
    n_train: Annotated[int, typer.Option(help="non-gated synthetic exams that fit the bucket trees")] = 60,
    n_test: Annotated[int, typer.Option(help="held-out non-gated synthetic exams")] = 40,
    epochs: int = 10,
    steps_per_epoch: int = 25,
    seed: int = 0,
) -> None:
    """Non-gated chest CT: segmentation -> 5-slice summaries -> gradient-boosted bucket trees, with kappa."""
    from riskfm.ct.calcium.protocols import synthetic_exams
    from riskfm.ct.calcium.segmentation import train_segmenter
    from riskfm.progress import status
    from riskfm.recipes.cac_nongated import run_nongated

    if model is not None:
        seg = _load_segmenter(model)
    else:
        status("no --model: training a U-Net on 24 gated synthetic exams first")
        gated = synthetic_exams((seed * 7919 + i for i in range(24)), desc="rendering gated exams")
        seg = train_segmenter(gated, epochs=epochs, steps_per_epoch=steps_per_epoch, seed=seed,
                              progress="training unet2d")
    status(f"rendering {n_train} + {n_test} non-gated synthetic exams")
    train = synthetic_exams((20_000 + seed * 7919 + i for i in range(n_train)), desc="rendering training exams",
                            gated=False)
    test = synthetic_exams((30_000 + seed * 7919 + i for i in range(n_test)), desc="rendering test exams",
                           gated=False)
    res = run_nongated(out, seg, train_exams=train, test_exams=test, seed=seed)
    m = res["metrics"]
    for name in ("trees", "mask"):
        lo, hi = m[name]["kappa_ci"]
        typer.echo(f"{name:5s}: kappa {m[name]['kappa']:.3f} ({lo:.3f}-{hi:.3f}), accuracy {m[name]['accuracy']:.3f}")
    typer.echo("wrote " + ", ".join(str(p) for p in res["paths"].values()))
