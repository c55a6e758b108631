"""Bland-Altman agreement of continuous scores in evaluate() and report.html (checked against statsmodels)."""

import json

import numpy as np
import pandas as pd
import pytest

from riskfm.evaluate import evaluate


def test_scores_get_bland_altman_table_figure_metrics_and_report_section(tmp_path):
    rng = np.random.default_rng(0)
    n = 60
    preds = pd.DataFrame({"patient_id": [f"p{i}" for i in range(n)], "split": "test", "target": "mace_30d",
                          "y_true": (rng.random(n) < 0.3).astype(float), "y_prob": rng.random(n)})
    reference = rng.gamma(1.0, 150.0, n)
    scores = pd.DataFrame({"patient_id": preds["patient_id"], "split": "test", "score": "agatston",
                           "reference": reference, "predicted": reference * 1.05 + rng.normal(0, 20, n)})
    evaluate(preds, tmp_path, spec={"n_boot": 20, "recalibration": []}, scores=scores)
    table = pd.read_csv(tmp_path / "tables" / "agreement.csv")
    diff = scores["predicted"] - scores["reference"]
    assert table.loc[0, "bias"] == pytest.approx(diff.mean())
    import matplotlib

    matplotlib.use("Agg")
    from statsmodels.graphics.agreement import mean_diff_plot

    from riskfm.evaluate.agreement import bland_altman

    fig = mean_diff_plot(scores["predicted"].to_numpy(), scores["reference"].to_numpy())
    # statsmodels draws the bias and the limits of agreement (1.96 x population SD) as horizontal lines
    levels = sorted(float(line.get_ydata()[0]) for line in fig.axes[0].lines)
    ref = bland_altman(scores["reference"], scores["predicted"], ddof=0)
    assert levels == pytest.approx([ref.loa[0], ref.value, ref.loa[1]], rel=1e-3)
    # the report uses the sample SD (ddof 1), the usual Bland-Altman convention
    sd = diff.std(ddof=1)
    assert table.loc[0, "loa_high"] == pytest.approx(diff.mean() + 1.959963984540054 * sd, rel=1e-6)
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    cell = metrics["test"]["agatston"]["bland_altman"]
    assert cell["n"] == n and cell["value"] == pytest.approx(diff.mean()) and len(cell["loa"]) == 2
    assert (table.loc[0, "ci_low"], table.loc[0, "ci_high"]) == pytest.approx(tuple(cell["ci"]))
    assert (tmp_path / "figures" / "bland_altman_test_agatston.png").stat().st_size > 0
    html = (tmp_path / "report.html").read_text()
    assert "Agreement of scores" in html and "Bias and limits of agreement" in html


def test_scores_with_missing_columns_are_refused(tmp_path):
    preds = pd.DataFrame({"patient_id": ["a", "b"], "split": "test", "target": "mace_30d",
                          "y_true": [0.0, 1.0], "y_prob": [0.2, 0.7]})
    with pytest.raises(ValueError, match="scores: missing column"):
        evaluate(preds, tmp_path, scores=pd.DataFrame({"patient_id": ["a"], "score": ["x"]}))
