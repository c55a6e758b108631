"""``riskfm explain RUN_DIR --patients ID [--patients ID ...]``: attribution figures of chosen patients.

The command only parses and validates arguments; :func:`riskfm.explain.run.explain_run` does the work
and reports its progress on stderr (``riskfm --quiet`` silences it). Files go to ``OUT/<target>/``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from riskfm.commands.common import handle_errors, run_model_errors


@handle_errors
def explain(
    run_dir: Annotated[Path, typer.Argument(help="a finished run folder (model.pt, predictions.csv, config.yaml)")],
    patients: Annotated[list[str], typer.Option(
        "--patients", "-p", help="patient id to explain (repeatable, or comma-separated)")],
    out: Annotated[Path | None, typer.Option(
        help="output folder (default: RUN_DIR/explain); the files go to its subfolder named after the target")] = None,
    target: Annotated[str | None, typer.Option(
        help="explained target, e.g. mace_30d, stenosis_lad, risk_score (default: mace_30d)")] = None,
    manifest: Annotated[Path | None, typer.Option(help="manifest of the patients (default: the run's)")] = None,
    ecg_method: Annotated[str | None, typer.Option(
        help="integrated_gradients | gradient_shap | occlusion | saliency | gradcam")] = None,
    ct_method: Annotated[str | None, typer.Option(
        help="gradcam | occlusion | integrated_gradients | saliency")] = None,
    clinical_method: Annotated[str | None, typer.Option(
        help="layer_integrated_gradients (text encoder) | feature_ablation (tabular encoder)")] = None,
    cohort_split: Annotated[list[str] | None, typer.Option(
        help="split(s) of predictions.csv for the cohort figures (repeatable; default test and external)")] = None,
    cohort_size: Annotated[int, typer.Option(
        min=0, help="at most this many cohort patients (seeded sample); 0 skips the cohort figures")] = 200,
    n_steps: Annotated[int, typer.Option(min=2, help="Integrated Gradients steps")] = 50,
    sanity: Annotated[bool, typer.Option(
        help="also run cascading randomisation and deletion/insertion on the first patient's ECG")] = False,
    dpi: Annotated[int, typer.Option(min=50, help="resolution of the PNG figures")] = 300,
    seed: int = 0,
) -> None:
    """Write ECG, CT, clinical-variable and modality attribution figures for PATIENTS, plus cohort figures."""
    from riskfm.explain.run import explain_run

    ids = [p.strip() for item in patients for p in item.split(",") if p.strip()]
    with run_model_errors(run_dir):
        res = explain_run(run_dir, ids, out, target=target, manifest=manifest, ecg_method=ecg_method,
                          ct_method=ct_method, clinical_method=clinical_method,
                          cohort_splits=tuple(cohort_split) if cohort_split else ("test", "external"),
                          cohort_size=cohort_size, n_steps=n_steps, sanity=sanity, seed=seed, dpi=dpi)
    for problem in res.summary.get("problems", []):
        typer.secho(f"warning: {problem}", fg=typer.colors.YELLOW, err=True)
    typer.echo(f"{len(res.files)} files for target {res.summary['target']} -> {res.out_dir}")
    for f in res.files:
        typer.echo(f"  {f.name}")
