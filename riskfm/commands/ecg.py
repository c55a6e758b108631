"""``riskfm ecg store build|info``: the ECG store (preprocessed, memory-mapped ECGs; docs/ecg.md).

Parse, validate, call the library (:func:`riskfm.ecg.store.build_manifest_store`,
:func:`riskfm.ecg.store.store_summary`); each prints one JSON line on stdout.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from riskfm.commands.common import handle_errors

app = typer.Typer(add_completion=False, no_args_is_help=True, help="ECG tools: the ECG store.")
store_app = typer.Typer(add_completion=False, no_args_is_help=True,
                        help="Preprocess a cohort's ECGs once into memory-mapped float16 shards, and inspect them.")
app.add_typer(store_app, name="store")


@store_app.command()
@handle_errors
def build(
    manifest: Annotated[Path, typer.Argument(help="manifest with an ecg_path column")],
    out: Annotated[Path, typer.Option(help="store folder")],
    encoder: Annotated[str, typer.Option(help="registry name whose input_spec to use")] = "ecgfounder-12lead",
    spec: Annotated[Path | None, typer.Option(help="JSON file with ECGInputSpec fields (overrides --encoder)")] = None,
    workers: Annotated[int, typer.Option(min=1, help="worker processes (each builds whole shards)")] = 1,
    shard: Annotated[str | None, typer.Option(help="i/N: build this machine's share of the shards")] = None,
    shard_size: Annotated[int, typer.Option(min=1, help="records per shard")] = 1024,
    resume: Annotated[bool, typer.Option(help="keep the shards already built (--no-resume rebuilds them)")] = True,
    quality: Annotated[bool, typer.Option(help="index each record's quality flags (--no-quality skips it)")] = True,
) -> None:
    """Preprocess a manifest's ECGs into a store; prints {"built", "skipped", "ok", "failed"} as JSON."""
    from riskfm.ecg.store import build_manifest_store
    from riskfm.progress import is_quiet

    if not manifest.is_file():
        raise FileNotFoundError(f"{manifest}: manifest not found")
    summary = build_manifest_store(manifest, out, encoder=encoder, spec=spec, n_workers=workers, shard=shard,
                                   shard_size=shard_size, resume=resume, quality=quality, progress=not is_quiet())
    typer.echo(json.dumps(summary))


@store_app.command()
@handle_errors
def info(
    store: Annotated[Path, typer.Argument(help="store folder")],
) -> None:
    """Summarise a store (complete or not) as JSON: records, ok, quality_flagged, shards_built, shards."""
    from riskfm.ecg.store import store_summary

    typer.echo(json.dumps(store_summary(store)))
