"""CORA's downstream recipes and CLI commands end to end on a tiny synthetic cohort (few steps)."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score
from typer.testing import CliRunner

from riskfm.ct.cases import cases_from_folder, cases_from_manifest, companion_masks, load_case
from riskfm.ct.pretrain import PretrainConfig
from riskfm.ct.synthesis import SynthesisConfig
from riskfm.train.tasks.cora_pretrain import pretrain_cora

SPACING = (3.4, 3.0, 3.0)


@pytest.fixture(scope="module")
def cohort(tmp_path_factory):
    from riskfm.synthetic import make_cohort

    return make_cohort(n=10, seed=5, out_dir=tmp_path_factory.mktemp("cora_cohort"), missing_ct=0.0,
                       missing_ecg=1.0, ct_shape=(24, 32, 32), ct_spacing=SPACING, n_workers=1)


@pytest.fixture(scope="module")
def checkpoint(cohort, tmp_path_factory):
    cfg = PretrainConfig(width=4, patch_size=(16, 16, 16), spacing=SPACING, steps=2, batch_size=2,
                         synthesis=SynthesisConfig(patch_size=(16, 16, 16)))
    return pretrain_cora(cohort.manifest_path, tmp_path_factory.mktemp("pre"), cfg).checkpoint


def _check_result(res, name, extras=()):
    """A recipe's RecipeResult: its name, extras, existing files and a JSON-ready to_dict."""
    from riskfm.recipes.result import RecipeResult

    assert isinstance(res, RecipeResult) and res.name == name
    assert set(res.extras) == set(extras)
    assert res.paths == {**res.files, **res.figures} and all(p.exists() for p in res.paths.values())
    json.dumps(res.to_dict(), allow_nan=False)  # JSON-ready, no models


def test_cases_find_the_cohorts_masks(cohort):
    cases = cases_from_manifest(cohort.manifest_path)
    assert len(cases) == 10
    assert set(cases[0].masks) == {"heart", "coronary", "plaque"}
    assert cases[0].masks["coronary"].name.endswith("_labels.nii.gz")
    folder = cases_from_folder(cohort.root / "ct")
    assert len(folder) == 10 and all("_" not in c.patient_id for c in folder)
    loaded = load_case(cases[0], (6.8, 6.0, 6.0), crop_heart=True)
    assert all(m.shape == loaded.vol.shape for m in loaded.masks.values())
    assert loaded.vol.spacing == (6.8, 6.0, 6.0)
    assert companion_masks(cohort.root / "ct" / "missing.nii.gz") == {}
    with pytest.raises(FileNotFoundError):
        cases_from_manifest(cohort.root / "nope.csv")


def test_plaque_characterisation_reports_auroc_with_cis(cohort, checkpoint, tmp_path):
    from riskfm.recipes.cora_plaque import run_plaque_characterisation

    # 5 test CTs: the small-sample floor is lowered to 1 so the numbers can be checked
    res = run_plaque_characterisation(cohort.manifest_path, tmp_path, checkpoint=checkpoint, steps=2,
                                      batch_size=2, test_fraction=0.5, n_boot=50, min_events=1, min_nonevents=1)
    metrics = json.loads((tmp_path / "metrics.json").read_text())["test"]
    preds = pd.read_csv(tmp_path / "predictions.csv")
    assert set(preds["target"]) == {"plaque_calcified", "plaque_noncalcified"}
    for target, m in metrics.items():
        test = preds[(preds["split"] == "test") & (preds["target"] == target)]
        assert m["n"] == len(test) == 5
        if 0 < test["y_true"].sum() < len(test):
            assert m["auroc"]["value"] == pytest.approx(roc_auc_score(test["y_true"], test["y_prob"]))
            lo, hi = m["auroc"]["ci"]
            assert lo <= hi
        else:
            assert m["auroc"]["value"] is None and "event" in m["not_estimable"]
    assert len(res.extras["fit"].steps) == 2
    # The default head is the whole-volume one of docs/ct.md (max pooling of all four stages,
    # started as a linear probe), and a pretrained encoder fine-tunes at a tenth of the head's
    # rate; all recorded with the run.
    saved = json.loads((tmp_path / "metrics.json").read_text())
    assert (saved["pool"], saved["scales"], saved["head_init"], saved["freeze_encoder"]) == ("max", "all", "probe", False)
    assert res.extras["model"].norm_fixed
    assert saved["lr"] == 1e-3 and saved["encoder_lr"] == pytest.approx(1e-4)


def test_stenosis_detection_scores_lesions(cohort, checkpoint, tmp_path):
    from riskfm.recipes.cora_stenosis import run_stenosis_detection

    res = run_stenosis_detection(cohort.manifest_path, tmp_path, checkpoint=checkpoint, patch=(16, 16, 16),
                                 steps=2, test_fraction=0.3)
    _check_result(res, "cora_stenosis", ("fit", "network"))
    assert set(res.tables) == {"per_case", "history"}
    m = res.metrics
    per_case = res.tables["per_case"]
    assert m["target"] == "plaque" and m["n_test"] == 3 == len(per_case)
    assert m["n_ref"] == per_case["n_ref"].sum() and m["detected"] <= m["n_ref"]
    assert json.loads((tmp_path / "metrics.json").read_text())["min_overlap"] == 10


def test_artery_segmentation_and_data_efficiency(cohort, checkpoint, tmp_path):
    from riskfm.recipes.cora_segmentation import run_artery_segmentation, run_data_efficiency

    res = run_artery_segmentation(cohort.manifest_path, tmp_path / "seg", checkpoint=checkpoint,
                                  patch=(16, 16, 16), steps=2, test_fraction=0.2)
    _check_result(res, "cora_segmentation", ("fit",))
    assert res.files["masks"].is_dir() and list(res.paths) == ["metrics", "per_case", "history", "masks"]
    per_case = res.tables["per_case"]
    assert set(per_case.columns) >= {"dice", "cldice", "msd_mm"} and len(per_case) == 2
    # the scores are those of the saved masks: Dice recomputed by hand, clDice from the files
    from riskfm.ct import read_ct
    from riskfm.ct.seg_metrics import cl_dice

    for _, row in per_case.iterrows():
        pred = read_ct(tmp_path / "seg" / "masks" / f"{row['patient_id']}_pred.nii.gz").array > 0
        ref = read_ct(tmp_path / "seg" / "masks" / f"{row['patient_id']}_ref.nii.gz").array > 0
        assert ref.any()
        both = pred.sum() + ref.sum()
        assert row["dice"] == pytest.approx(2 * np.logical_and(pred, ref).sum() / both, abs=1e-12)
        assert row["cldice"] == pytest.approx(cl_dice(pred, ref), abs=1e-12, nan_ok=True)
    eff = run_data_efficiency(cohort.manifest_path, tmp_path / "eff", checkpoint=checkpoint, train_sizes=(2, 50),
                              patch=(16, 16, 16), steps=1, test_fraction=0.2)
    _check_result(eff, "cora_data_efficiency")
    assert set(eff.tables) == {"data_efficiency"} and set(eff.paths) == {"table", "metrics"}
    table = eff.tables["data_efficiency"]
    assert list(table["model"]) == ["pretrained", "scratch", "pretrained", "scratch"]
    assert list(table["n_train"]) == [2, 2, 8, 8]  # 50 is capped at the 8 training cases
    assert (tmp_path / "eff" / "data_efficiency.csv").is_file()


def test_cli_pretrain_and_plaque(cohort, tmp_path):
    from riskfm.cli import app

    runner = CliRunner()
    out = tmp_path / "pre"
    result = runner.invoke(app, ["pretrain-ct", str(cohort.manifest_path), "--out", str(out), "--width", "4",
                                 "--patch", "16", "--spacing", "3.4,3.0,3.0", "--steps", "2", "--batch-size", "1"])
    assert result.exit_code == 0, result.output
    assert "coronary" in result.output and (out / "cora_pretrained.pt").is_file()
    result = runner.invoke(app, ["ct", "plaque", str(cohort.manifest_path), "--checkpoint",
                                 str(out / "cora_pretrained.pt"), "--out", str(tmp_path / "plaque"),
                                 "--steps", "1", "--batch-size", "2", "--test-fraction", "0.5", "--pool", "max",
                                 "--scales", "all", "--head-init", "random"])
    assert result.exit_code == 0, result.output
    assert "AUROC" in result.output
    saved = json.loads((tmp_path / "plaque" / "metrics.json").read_text())
    assert (saved["pool"], saved["scales"], saved["head_init"]) == ("max", "all", "random")
    bad = runner.invoke(app, ["ct", "plaque", str(cohort.manifest_path), "--out", str(tmp_path / "bad"),
                              "--pool", "sum"])
    assert bad.exit_code != 0 and "pool must be one of" in bad.output
    result = runner.invoke(app, ["ct", "abnormality", str(cohort.root / "ct" / "P00000.nii.gz"), "--checkpoint",
                                 str(out / "cora_pretrained.pt"), "--out", str(tmp_path / "map.nii.gz")])
    assert result.exit_code == 0, result.output
    from riskfm.ct import read_ct

    prob = read_ct(tmp_path / "map.nii.gz")
    ct = read_ct(cohort.root / "ct" / "P00000.nii.gz")
    assert prob.shape == ct.shape and np.allclose(prob.affine, ct.affine, atol=1e-4)
    bad = runner.invoke(app, ["pretrain-ct", str(tmp_path / "nothing_here")])
    assert bad.exit_code == 2 and "not found" in bad.output


def test_plaque_characterisation_on_explicit_index_subsets(cohort, checkpoint, tmp_path):
    # Label-efficiency runs train on a subset and leave other cases out: only the cases of the two
    # parts are scored, and the test metrics are those of exactly the given test cases.
    from riskfm.recipes.cora_plaque import run_plaque_characterisation

    res = run_plaque_characterisation(cohort.manifest_path, tmp_path, checkpoint=checkpoint, steps=2,
                                      batch_size=2, pool="avg", scales="bottleneck", head_init="random",
                                      train_indices=[0, 1, 2, 3], test_indices=[6, 7, 8, 9], n_boot=50)
    preds = res.tables["predictions"]
    ids = [c.patient_id for c in cases_from_manifest(cohort.manifest_path)]
    assert len(preds) == 2 * 8 and preds["y_prob"].between(0, 1).all()
    assert set(preds.loc[preds["split"] == "train", "patient_id"]) == {ids[i] for i in (0, 1, 2, 3)}
    assert set(preds.loc[preds["split"] == "test", "patient_id"]) == {ids[i] for i in (6, 7, 8, 9)}
    assert all(m["n"] == 4 for m in res.metrics["test"].values())
    saved = json.loads((tmp_path / "metrics.json").read_text())
    assert saved["n_train"] == 4 and saved["n_test"] == 4 and saved["pool"] == "avg"
    assert not res.extras["model"].norm_fixed and saved["head_init"] == "random"  # the paper's head
    # From scratch the encoder trains at the head's rate unless told otherwise.
    scratch = run_plaque_characterisation(cohort.manifest_path, tmp_path / "scratch", width=4, steps=1,
                                          head_init="random", batch_size=2, train_indices=[0, 1, 2, 3],
                                          test_indices=[6, 7, 8, 9], n_boot=20)
    assert json.loads((scratch.files["metrics"]).read_text())["encoder_lr"] == 1e-3


def test_probe_head_init_leaves_the_pretrained_encoder_untouched(cohort, checkpoint, tmp_path):
    # LP-FT with no fine-tuning steps is exactly a linear probe: the encoder is the checkpoint's.
    import torch

    from riskfm.ct.pretrain import load_pretrained
    from riskfm.recipes.cora_plaque import run_plaque_characterisation

    res = run_plaque_characterisation(cohort.manifest_path, tmp_path, checkpoint=checkpoint, steps=0,
                                      batch_size=2, test_fraction=0.5, n_boot=20)
    assert len(res.extras["fit"].steps) == 0 and res.extras["model"].norm_fixed
    reference = load_pretrained(checkpoint).state_dict()
    assert all(torch.equal(v, reference[k]) for k, v in res.extras["model"].encoder.state_dict().items())
    assert res.tables["predictions"]["y_prob"].between(0, 1).all()
    with pytest.raises(ValueError, match="scales must be one of"):
        run_plaque_characterisation(cohort.manifest_path, tmp_path, scales="deep")
    with pytest.raises(ValueError, match="head_init must be one of"):
        run_plaque_characterisation(cohort.manifest_path, tmp_path, head_init="zeros")
    # With the standardisation fixed by the probe, batches of one volume train; a random head cannot.
    one = run_plaque_characterisation(cohort.manifest_path, tmp_path / "one", checkpoint=checkpoint, steps=1,
                                      batch_size=1, test_fraction=0.5, n_boot=20)
    assert len(one.extras["fit"].steps) == 1
    with pytest.raises(ValueError, match="batch_size must be >= 2"):
        run_plaque_characterisation(cohort.manifest_path, tmp_path, head_init="random", batch_size=1)


def test_a_fine_tune_gives_the_same_numbers_whatever_ran_before_it(cohort, tmp_path):
    # same inputs + seed -> same predictions, even after other torch work in the process (the new head
    # and a from-scratch network are drawn from the seed, not from whatever state torch's RNG is in)
    import torch

    from riskfm.recipes.cora_plaque import run_plaque_characterisation

    kw = {"steps": 2, "batch_size": 2, "test_fraction": 0.5, "n_boot": 20, "width": 4, "head_init": "random",
          "spacing": (6.8, 6.0, 6.0), "progress": False}
    first = run_plaque_characterisation(cohort.manifest_path, tmp_path / "a", **kw).tables["predictions"]
    torch.rand(1000)  # something else drew from torch's generator in between
    again = run_plaque_characterisation(cohort.manifest_path, tmp_path / "b", **kw).tables["predictions"]
    pd.testing.assert_frame_equal(first, again)
    # the same folder again: the finished run is recognised (checkpoint of the same fingerprint), not retrained
    same = run_plaque_characterisation(cohort.manifest_path, tmp_path / "a", **kw)
    pd.testing.assert_frame_equal(first, same.tables["predictions"])
    assert same.extras["fit"].steps_run == 2
    with pytest.raises(Exception, match="belongs to another run"):
        run_plaque_characterisation(cohort.manifest_path, tmp_path / "a", **{**kw, "steps": 3, "head_init": "probe"})
