"""``riskfm pretrain-ct`` and ``riskfm ct ...``: CORA pretraining, zero-shot maps and downstream tasks.

Parse, validate, call the library; no logic lives here. Progress (reading the CTs, training steps
with the loss, evaluating the test CTs, sliding windows) comes from the library on stderr;
``riskfm --quiet`` silences it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from riskfm.commands.common import handle_errors

app = typer.Typer(add_completion=False, no_args_is_help=True,
                  help="CORA CCTA foundation model: downstream tasks and zero-shot abnormality maps.")


def _check_checkpoint(checkpoint: Path | None) -> None:
    """Fail before any CT is read when --checkpoint names no file (its content is checked on loading)."""
    if checkpoint is None:
        return
    if not checkpoint.exists():
        raise FileNotFoundError(f"{checkpoint}: checkpoint not found (--checkpoint); give the cora_pretrained.pt "
                                "written by `riskfm pretrain-ct`, or omit --checkpoint to train from scratch")
    if not checkpoint.is_file():
        raise FileNotFoundError(f"{checkpoint}: is a folder (--checkpoint); give the cora_pretrained.pt file inside it")


def _triple(text: str | None, name: str, cast=float):
    if text is None:
        return None
    try:
        values = tuple(cast(v) for v in text.replace("x", ",").split(","))
    except ValueError as exc:
        raise typer.BadParameter(f"{name} must be three numbers like 2.0,1.5,1.5 (got {text!r})") from exc
    if len(values) == 1:
        values = values * 3
    if len(values) != 3:
        raise typer.BadParameter(f"{name} must be one or three numbers (z, y, x), got {text!r}")
    return values


SOURCE = Annotated[Path, typer.Argument(help="manifest (CSV/Parquet with ct_path) or folder of CTs (NIfTI / DICOM)")]
CHECKPOINT = Annotated[Path | None, typer.Option(help="cora_pretrained.pt from `riskfm pretrain-ct` (omit: from scratch)")]
SPACING = Annotated[str | None, typer.Option(help="working spacing z,y,x in mm (default: the checkpoint's)")]
SCRATCH_WIDTH = Annotated[int | None, typer.Option(help="width when training from scratch (default 8)")]
DENSE_PATCH = Annotated[str, typer.Option(help="training / sliding-window patch, one number or z,y,x")]


@handle_errors
def pretrain_ct(
    source: SOURCE,
    out: Annotated[Path, typer.Option(help="output folder")] = Path("cora_pretrain"),
    width: Annotated[int, typer.Option(help="network width (32 = CORA Table S1; 8 for CPU runs)")] = 32,
    patch: Annotated[str, typer.Option(help="patch size in voxels, one number or z,y,x")] = "64",
    spacing: Annotated[str, typer.Option(help="resampling target z,y,x mm (CORA as printed: 5.0,0.5,0.5)")] = "5.0,0.5,0.5",
    steps: int = 1000,
    batch_size: Annotated[int, typer.Option(help="patches per step per process")] = 2,
    lr: float = 1e-3,
    workers: Annotated[int, typer.Option(help="DataLoader worker processes (the synthesis engine runs there)")] = 0,
    accelerator: Annotated[str, typer.Option(help="cpu, gpu, auto")] = "cpu",
    devices: Annotated[str, typer.Option(help="devices per node (e.g. 1, 8, auto)")] = "1",
    strategy: Annotated[str, typer.Option(help="auto, ddp, ...")] = "auto",
    num_nodes: int = 1,
    precision: Annotated[str, typer.Option(help="32-true, bf16-mixed, 16-mixed")] = "32-true",
    checkpoint_every: int = 100,
    lesion_prob: Annotated[float, typer.Option(help="share of patches that receive synthetic plaques")] = 0.8,
    resume: Annotated[bool, typer.Option(help="continue from OUT/checkpoints/last.ckpt if present")] = True,
    seed: int = 0,
) -> None:
    """Pretrain CORA on unlabelled CTs by segmenting synthetic plaques (Tversky + focal loss)."""
    from riskfm.ct.pretrain import PretrainConfig, pretrain_cora
    from riskfm.ct.synthesis import SynthesisConfig

    patch_size = _triple(patch, "patch", int)
    cfg = PretrainConfig(width=width, patch_size=patch_size, spacing=_triple(spacing, "spacing"), steps=steps,
                         batch_size=batch_size, lr=lr, num_workers=workers, accelerator=accelerator,
                         devices=int(devices) if devices.isdigit() else devices, strategy=strategy,
                         num_nodes=num_nodes, precision=precision, checkpoint_every=checkpoint_every, seed=seed,
                         synthesis=SynthesisConfig(patch_size=patch_size, lesion_prob=lesion_prob))
    from riskfm.errors import CheckpointError

    try:  # the library shows the steps, the time left and the loss on stderr
        res = pretrain_cora(source, out, cfg, resume=resume)
    except CheckpointError as exc:
        if resume and "last.ckpt" in str(exc):
            raise CheckpointError(f"{exc}; delete it, or pass --no-resume, to start over") from exc
        raise
    if res.history:
        first, last = res.loss_drop()
        typer.echo(f"loss {first:.4f} -> {last:.4f} (first vs last 20% of steps), {res.seconds:.0f} s")
    sources = {}
    for v in res.volumes:
        sources[v["mask_source"]] = sources.get(v["mask_source"], 0) + 1
    typer.echo(f"patch centres: {sources} (coronary = from masks; others = mask-less fallback)")
    typer.echo(f"wrote {res.checkpoint}")


@app.command()
@handle_errors
def abnormality(
    ct: Annotated[Path, typer.Argument(help="CT (NIfTI file or DICOM folder)")],
    checkpoint: Annotated[Path, typer.Option(help="cora_pretrained.pt")],
    out: Annotated[Path, typer.Option(help="output NIfTI of the probability map")] = Path("abnormality.nii.gz"),
    overlap: float = 0.5,
) -> None:
    """Zero-shot abnormality map of one CT from a pretrained CORA (no fine-tuning)."""
    import numpy as np

    from riskfm.ct import read_ct
    from riskfm.ct.io import write_nifti
    from riskfm.ct.pretrain import abnormality_map, load_pretrained
    from riskfm.progress import status

    _check_checkpoint(checkpoint)
    net = load_pretrained(checkpoint)  # a bad checkpoint fails before the CT is read
    status(f"reading {ct}")
    prob = abnormality_map(net, read_ct(ct), overlap=overlap, progress="abnormality map")
    write_nifti(out, prob.array, prob.affine, np.float32)
    typer.echo(f"max {prob.array.max():.3f}, voxels > 0.5: {int((prob.array > 0.5).sum())}; wrote {out}")


@app.command()
@handle_errors
def plaque(
    source: SOURCE,
    checkpoint: CHECKPOINT = None,
    out: Annotated[Path, typer.Option(help="output folder")] = Path("cora_plaque"),
    width: SCRATCH_WIDTH = None,
    spacing: SPACING = None,
    steps: int = 300,
    batch_size: int = 4,
    lr: float = 1e-3,
    freeze_encoder: Annotated[bool, typer.Option(help="linear probe: train the head only")] = False,
    encoder_lr: Annotated[float | None, typer.Option(
        help="encoder learning rate (default: --lr / 10 with --checkpoint, --lr from scratch)")] = None,
    pool: Annotated[str, typer.Option(
        help="pooling of each feature map before the linear head: max, avg (the paper's global "
             "average), or avgmax (both concatenated)")] = "max",
    scales: Annotated[str, typer.Option(
        help="encoder maps the head pools: all (the four stages concatenated) or bottleneck (the paper's)")
    ] = "all",
    head_init: Annotated[str, typer.Option(
        help="probe: start the head as a linear probe of the frozen encoder, then fine-tune (LP-FT); "
             "random: the paper's random head")] = "probe",
    test_fraction: float = 0.3,
    seed: int = 0,
) -> None:
    """Plaque characterisation: calcified / non-calcified present, AUROC with bootstrap CIs."""
    from riskfm.recipes.cora_plaque import run_plaque_characterisation

    _check_checkpoint(checkpoint)
    res = run_plaque_characterisation(source, out, checkpoint=checkpoint, width=width,
                                      spacing=_triple(spacing, "spacing"), steps=steps, batch_size=batch_size,
                                      lr=lr, encoder_lr=encoder_lr, freeze_encoder=freeze_encoder, pool=pool,
                                      scales=scales, head_init=head_init,
                                      test_fraction=test_fraction, seed=seed)
    for target, m in res["metrics"].items():
        au = (f"n/e ({m['not_estimable']})" if m["auroc"] is None
              else f"{m['auroc']:.3f} ({m['auroc_ci'][0]:.3f}-{m['auroc_ci'][1]:.3f})")
        typer.echo(f"{target}: AUROC {au}, n {m['n']}, positives {m['n_pos']}")
    typer.echo(f"wrote {res['paths']['metrics']}")


def _dense_options(width, spacing, patch, steps, batch_size, lr, threshold, test_fraction, seed):
    """The dense tasks' :class:`~riskfm.recipes.cora_common.DenseTaskOptions` from CLI values."""
    from riskfm.recipes.cora_common import DenseTaskOptions

    return DenseTaskOptions(width=width, spacing=_triple(spacing, "spacing"), patch=_triple(patch, "patch", int),
                            steps=steps, batch_size=batch_size, lr=lr, threshold=threshold,
                            test_fraction=test_fraction, seed=seed)


@app.command()
@handle_errors
def stenosis(
    source: SOURCE,
    checkpoint: CHECKPOINT = None,
    out: Annotated[Path, typer.Option(help="output folder")] = Path("cora_stenosis"),
    width: SCRATCH_WIDTH = None,
    spacing: SPACING = None,
    patch: DENSE_PATCH = "32",
    steps: int = 300,
    batch_size: int = 2,
    lr: float = 1e-3,
    threshold: float = 0.5,
    test_fraction: float = 0.3,
    seed: int = 0,
) -> None:
    """Stenosis detection: heart-cropped segmentation, lesion-level precision / recall / F1."""
    from riskfm.recipes.cora_stenosis import run_stenosis_detection

    _check_checkpoint(checkpoint)
    opts = _dense_options(width, spacing, patch, steps, batch_size, lr, threshold, test_fraction, seed)
    res = run_stenosis_detection(source, out, checkpoint=checkpoint, options=opts)
    m = res["metrics"]
    typer.echo(f"lesion level: precision {m['precision']:.3f}, recall {m['recall']:.3f}, F1 {m['f1']:.3f} "
               f"({m['detected']}/{m['n_ref']} lesions found, {m['tp_pred']}/{m['n_pred']} predictions true)")
    typer.echo(f"wrote {res['paths']['metrics']}")


@app.command()
@handle_errors
def segment(
    source: SOURCE,
    checkpoint: CHECKPOINT = None,
    out: Annotated[Path, typer.Option(help="output folder")] = Path("cora_segment"),
    width: SCRATCH_WIDTH = None,
    spacing: SPACING = None,
    patch: DENSE_PATCH = "32",
    steps: int = 300,
    batch_size: int = 2,
    lr: float = 1e-3,
    train_sizes: Annotated[str | None, typer.Option(
        help="data efficiency: comma-separated training-set sizes, pretrained vs scratch (e.g. 50,100,200)")] = None,
    test_fraction: float = 0.3,
    seed: int = 0,
) -> None:
    """Coronary artery segmentation (new decoder, Dice loss): Dice, clDice, mean surface distance."""
    from riskfm.recipes.cora_segmentation import run_artery_segmentation, run_data_efficiency

    _check_checkpoint(checkpoint)
    opts = _dense_options(width, spacing, patch, steps, batch_size, lr, 0.5, test_fraction, seed)
    kwargs = dict(checkpoint=checkpoint, options=opts)
    if train_sizes:
        try:
            sizes = [int(v) for v in train_sizes.split(",") if v.strip()]
        except ValueError:
            raise typer.BadParameter(f"--train-sizes must be comma-separated integers like 50,100,200 "
                                     f"(got {train_sizes!r})") from None
        res = run_data_efficiency(source, out, train_sizes=sizes, **kwargs)
        typer.echo(res["table"].round(3).to_string(index=False))
        typer.echo(f"wrote {res['paths']['table']}")
        return
    res = run_artery_segmentation(source, out, **kwargs)
    m = res["metrics"]
    typer.echo(f"Dice {m['dice_mean']:.3f}, clDice {m['cldice_mean']:.3f}, MSD {m['msd_mm_mean']:.2f} mm "
               f"({m['n_test']} test CTs)")
    typer.echo(f"wrote {res['paths']['metrics']}")
