"""``riskfm evaluate PREDICTIONS.csv``: metrics.json, CSV tables, figures and report.html.

The command only parses and validates arguments; ``riskfm.evaluate.evaluate`` does the work.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from riskfm.commands.common import format_auroc, handle_errors

app = typer.Typer(add_completion=False, help="Evaluate a predictions file.")


@app.command()
@handle_errors
def evaluate(
    predictions: Annotated[Path, typer.Argument(help="predictions.csv (patient_id, split, target, y_true, y_prob"
                                                     "[, site, time_to_event_days, event])")],
    out: Annotated[Path | None, typer.Option(help="output folder (default: beside the predictions)")] = None,
    spec: Annotated[Path | None, typer.Option(help="evaluation spec (YAML); see docs/evaluation.md")] = None,
    covariates: Annotated[Path | None, typer.Option(
        help="CSV with patient_id + attributes (e.g. the manifest) for subgroup and fairness analyses")] = None,
    train_split: Annotated[str, typer.Option(help="split on which thresholds are chosen")] = "train",
    val_split: Annotated[str, typer.Option(help="split on which recalibration is fitted")] = "val",
    n_boot: Annotated[int | None, typer.Option(help="override the spec's bootstrap resamples")] = None,
    ci: Annotated[str | None, typer.Option(help="override the spec's AUROC interval: bootstrap | delong")] = None,
    seed: Annotated[int | None, typer.Option(help="override the spec's bootstrap seed")] = None,
    min_events: Annotated[int | None, typer.Option(
        help="override the spec's minimum events (and non-events) below which AUROC is not estimable")] = None,
    figures: Annotated[bool, typer.Option(help="draw figures (and embed them in report.html)")] = True,
) -> None:
    """Metrics with CIs, calibration, risk groups, survival, decision curves, subgroups and report.html."""
    from riskfm.evaluate import EvaluationSpec, auroc_table
    from riskfm.evaluate import evaluate as run_evaluate

    s = EvaluationSpec.from_any(spec)
    overrides = {k: v for k, v in {"n_boot": n_boot, "ci": ci, "seed": seed, "min_events": min_events,
                                   "min_nonevents": min_events}.items() if v is not None}
    if not figures:
        overrides["figures"] = False
    if overrides:
        s = EvaluationSpec.from_any({**s.to_dict(), **overrides})
    out_dir = out or predictions.parent
    run_name = predictions.resolve().parent.name or predictions.stem
    metrics = run_evaluate(predictions, out_dir, spec=s, train_split=train_split, val_split=val_split,
                           covariates=covariates, title=f"riskfm evaluation: {run_name}")
    table = auroc_table(metrics).reset_index()
    for _, r in table.iterrows():
        typer.echo(f"{r['split']:>10}  {r['target']:<14} AUROC {format_auroc(r)}  n={r['n']} n_pos={r['n_pos']}")
    typer.echo(f"metrics: {out_dir / 'metrics.json'}")
    if s.report:
        typer.echo(f"report: {out_dir / 'report.html'}")
