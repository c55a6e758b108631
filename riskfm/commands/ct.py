"""``riskfm pretrain-ct`` and ``riskfm ct ...``: CORA pretraining, zero-shot maps and downstream tasks.

Parse, validate, call the library; no logic lives here: ``pretrain-ct`` calls
:func:`riskfm.ct.pretrain.pretrain_cora`, ``plaque`` / ``stenosis`` / ``segment`` their recipe
(:mod:`riskfm.recipes`), ``abnormality`` :func:`riskfm.ct.pretrain.abnormality_map`. Progress
(reading the CTs, training steps with the loss, evaluating the test CTs, sliding windows) comes
from the library on stderr; ``riskfm --quiet`` silences it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from riskfm.commands.common import OUT_DIR, SEED, OptionGroup, format_auroc, handle_errors

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
CT_FILE = Annotated[Path, typer.Argument(help="CT (NIfTI file or DICOM folder)")]
PRETRAINED = Annotated[Path, typer.Option(help="cora_pretrained.pt")]
DENSE_PATCH = Annotated[str, typer.Option(help="training / sliding-window patch, one number or z,y,x")]
#: What every fine-tune of a (pretrained or scratch) CORA network takes; ``--out`` default per command.
FINETUNE = OptionGroup(checkpoint=(CHECKPOINT, None), out=(OUT_DIR, Path("cora_task")), width=(SCRATCH_WIDTH, None),
                       spacing=(SPACING, None), steps=(int, 300), batch_size=(int, 2), lr=(float, 1e-3),
                       test_fraction=(float, 0.3), seed=(SEED, 0))
#: The dense tasks (stenosis, segmentation) also take a patch size.
DENSE = OptionGroup(**FINETUNE.options, patch=(DENSE_PATCH, "32"))


def _task_options(options: dict) -> tuple[Path, Path | None, dict]:
    """``(out, checkpoint, the rest)`` of :data:`FINETUNE` / :data:`DENSE` values, as the recipes take them.

    --checkpoint is checked first; ``spacing`` and ``patch`` are parsed to (z, y, x).
    """
    rest = dict(options)
    out, checkpoint = rest.pop("out"), rest.pop("checkpoint")
    _check_checkpoint(checkpoint)
    rest["spacing"] = _triple(rest["spacing"], "spacing")
    if "patch" in rest:
        rest["patch"] = _triple(rest["patch"], "patch", int)
    return out, checkpoint, rest


def _dense_options(rest: dict, threshold: float = 0.5):
    """Build the dense tasks' :class:`~riskfm.recipes.cora_common.DenseTaskOptions` from CLI values."""
    from riskfm.recipes.cora_common import DenseTaskOptions

    return DenseTaskOptions(threshold=threshold, **rest)


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
    from riskfm.ct.pretrain import PretrainConfig
    from riskfm.ct.synthesis import SynthesisConfig
    from riskfm.train.tasks.cora_pretrain import pretrain_cora

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
            raise type(exc)(str(exc).replace("pass resume=False (riskfm pretrain-ct --no-resume)",
                                             "pass --no-resume")) from exc
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
    ct: CT_FILE,
    checkpoint: PRETRAINED,
    out: Annotated[Path, typer.Option(help="output NIfTI of the probability map")] = Path("abnormality.nii.gz"),
    overlap: float = 0.5,
) -> None:
    """Zero-shot abnormality map of one CT from a pretrained CORA (no fine-tuning)."""
    from riskfm.ct.pretrain import abnormality_map_of_file

    _check_checkpoint(checkpoint)
    prob = abnormality_map_of_file(ct, checkpoint, out, overlap=overlap)
    typer.echo(f"max {prob.array.max():.3f}, voxels > 0.5: {int((prob.array > 0.5).sum())}; wrote {out}")


@app.command()
@handle_errors
@FINETUNE(out=Path("cora_plaque"), batch_size=4)
def plaque(
    source: SOURCE,
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
    *,
    options: dict,
) -> None:
    """Plaque characterisation: calcified / non-calcified present, AUROC with bootstrap CIs."""
    from riskfm.recipes.cora_plaque import run_plaque_characterisation

    out, checkpoint, rest = _task_options(options)
    res = run_plaque_characterisation(source, out, checkpoint=checkpoint, encoder_lr=encoder_lr,
                                      freeze_encoder=freeze_encoder, pool=pool, scales=scales, head_init=head_init,
                                      **rest)
    from riskfm.evaluate.run_metrics import auroc_table

    for (_, target), r in auroc_table({"test": res.metrics["test"]}).iterrows():
        typer.echo(f"{target}: AUROC {format_auroc(r)}, n {r['n']}, positives {r['n_pos']}")
    typer.echo(f"wrote {res.files['metrics']}")


@app.command()
@handle_errors
@DENSE(out=Path("cora_stenosis"))
def stenosis(
    source: SOURCE,
    threshold: Annotated[float, typer.Option(help="probability above which a voxel is stenosis")] = 0.5,
    *,
    options: dict,
) -> None:
    """Stenosis detection: heart-cropped segmentation, lesion-level precision / recall / F1."""
    from riskfm.recipes.cora_stenosis import run_stenosis_detection

    out, checkpoint, rest = _task_options(options)
    res = run_stenosis_detection(source, out, checkpoint=checkpoint, options=_dense_options(rest, threshold))
    m = res.metrics
    typer.echo(f"lesion level: precision {m['precision']:.3f}, recall {m['recall']:.3f}, F1 {m['f1']:.3f} "
               f"({m['detected']}/{m['n_ref']} lesions found, {m['tp_pred']}/{m['n_pred']} predictions true)")
    typer.echo(f"wrote {res.files['metrics']}")


@app.command()
@handle_errors
@DENSE(out=Path("cora_segment"))
def segment(
    source: SOURCE,
    train_sizes: Annotated[str | None, typer.Option(
        help="data efficiency: comma-separated training-set sizes, pretrained vs scratch (e.g. 50,100,200)")] = None,
    *,
    options: dict,
) -> None:
    """Coronary artery segmentation (new decoder, Dice loss): Dice, clDice, mean surface distance."""
    from riskfm.recipes.cora_segmentation import run_artery_segmentation, run_data_efficiency

    out, checkpoint, rest = _task_options(options)
    kwargs = dict(checkpoint=checkpoint, options=_dense_options(rest))
    if train_sizes:
        try:
            sizes = [int(v) for v in train_sizes.split(",") if v.strip()]
        except ValueError:
            raise typer.BadParameter(f"--train-sizes must be comma-separated integers like 50,100,200 "
                                     f"(got {train_sizes!r})") from None
        res = run_data_efficiency(source, out, train_sizes=sizes, **kwargs)
        typer.echo(res.tables["data_efficiency"].round(3).to_string(index=False))
        typer.echo(f"wrote {res.files['table']}")
        return
    res = run_artery_segmentation(source, out, **kwargs)
    m = res.metrics
    typer.echo(f"Dice {m['dice_mean']:.3f}, clDice {m['cldice_mean']:.3f}, MSD {m['msd_mm_mean']:.2f} mm "
               f"({m['n_test']} test CTs)")
    typer.echo(f"wrote {res.files['metrics']}")
