"""Every recipe returns a RecipeResult, read by its fields; figures come from riskfm.plots."""

import json

import numpy as np
import pandas as pd
import pytest

from riskfm.recipes.result import RecipeResult

SMALL = {"shape": (8, 48, 48), "spacing": (3.0, 2.5, 2.5)}
SPACING = (3.4, 3.0, 3.0)


def _png(path, size_in):
    import struct

    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", data[16:24])
    assert (width, height) == (round(size_in[0] * 300), round(size_in[1] * 300))


def _check(res, name, extras=()):
    assert isinstance(res, RecipeResult) and res.name == name
    assert set(res.extras) == set(extras)
    assert res.paths == {**res.files, **res.figures} and all(p.exists() for p in res.paths.values())
    json.dumps(res.to_dict(), allow_nan=False)  # JSON-ready, no models


def test_cac_figures(tmp_path):
    from riskfm.plots.cac import plot_bucket_confusion, plot_low_data_dice

    summary = pd.DataFrame({"model": ["a", "a", "b", "b"], "fraction": [0.5, 1.0, 0.5, 1.0],
                            "dice_overall_mean": [0.5, 0.6, 0.55, 0.7], "dice_overall_std": [0.1, np.nan, 0.1, 0.05]})
    fig = plot_low_data_dice(summary, tmp_path / "dice.png")
    _png(tmp_path / "dice.png", (3.5, 3.0))
    assert [t.get_text() for t in fig.axes[0].get_legend().get_texts()] == ["a", "b"]
    with pytest.raises(ValueError, match="lacks column"):
        plot_low_data_dice(summary.drop(columns="dice_overall_std"))
    ref = np.array([0, 1, 2, 4, 4])
    fig = plot_bucket_confusion(ref, {"trees": ref, "mask": [0, 0, 2, 3, 4]}, tmp_path / "conf.png")
    _png(tmp_path / "conf.png", (7.0, 3.2))
    assert [ax.get_title(loc="left") or ax.get_title() for ax in fig.axes] == ["trees", "mask"]
    assert sorted(t.get_text() for t in fig.axes[1].texts) == ["1", "1", "1", "1", "1"]
    with pytest.raises(ValueError, match="shape"):
        plot_bucket_confusion(ref, {"x": [0, 1]})


@pytest.mark.slow
def test_cac_recipes_return_recipe_results(tmp_path):
    from riskfm.recipes.cac_fairness import run_fairness
    from riskfm.recipes.cac_low_data import run_low_data
    from riskfm.recipes.cac_nongated import run_nongated
    from riskfm.synthetic.calcium import make_calcium_exam
    from riskfm.train.tasks.calcium_segmentation import train_segmenter

    exams = [make_calcium_exam(i, burden=i % 5, **SMALL) for i in range(3)]
    ld = run_low_data(tmp_path / "ld", exams=exams, n_folds=2, fractions=(1.0,), epochs=1, steps_per_epoch=1,
                      widths=(4, 8, 8, 8), models=("unet2d",))
    _check(ld, "cac_low_data")
    assert set(ld.figures) == {"figure"} and set(ld.files) == {"folds", "summary"}
    assert set(ld.tables) == {"folds", "summary"}
    # per-artery Dice columns in the one artery order (RCA, LM, LAD, LCX), then overall
    assert [c for c in ld.tables["folds"].columns if c.startswith("dice_")] == [
        "dice_RCA", "dice_LM", "dice_LAD", "dice_LCX", "dice_overall"]
    assert ld.metrics["n_folds"] == 2 and ld.metrics["models"] == ["unet2d"]

    fair = run_fairness(tmp_path / "fair", train_exams=exams[:2], test_exams=exams, epochs=1, steps_per_epoch=1,
                        widths=(4, 8, 8, 8))
    _check(fair, "cac_fairness")
    models = ["unet2d", "cora3d-random"]
    assert fair.metrics["models"] == models
    assert list(fair.tables) == ["exams", *(f"fairness_{m}" for m in models)]
    assert set(fair.files) == {"exams", *(f"table_{m}" for m in models)}

    train = [make_calcium_exam(40 + i, burden=i % 5, gated=False, **SMALL) for i in range(4)]
    seg = train_segmenter(train[:2], roi="none", widths=(4, 8), epochs=1, steps_per_epoch=1, batch_size=2)
    ng = run_nongated(tmp_path / "ng", seg, train_exams=train, test_exams=exams[:2])
    _check(ng, "cac_nongated", ("classifier",))
    assert set(ng.tables) == {"exams"} and set(ng.figures) == {"figure"}
    assert json.loads(ng.files["metrics"].read_text())["n_test"] == ng.metrics["n_test"] == 2


@pytest.fixture(scope="module")
def cohort(tmp_path_factory):
    from riskfm.synthetic import make_cohort

    return make_cohort(n=10, seed=5, out_dir=tmp_path_factory.mktemp("cora_cohort"), missing_ct=0.0,
                       missing_ecg=1.0, ct_shape=(24, 32, 32), ct_spacing=SPACING, n_workers=1)


@pytest.mark.slow
def test_cora_plaque_returns_a_recipe_result_with_the_evaluations_auroc(cohort, tmp_path):
    # the other CORA recipes' results are checked where tests/ct/test_cora_recipes.py runs them
    from riskfm.evaluate.discrimination import roc_auc
    from riskfm.recipes.cora_plaque import run_plaque_characterisation

    res = run_plaque_characterisation(cohort.manifest_path, tmp_path / "plaque", width=4, steps=1, batch_size=2,
                                      head_init="random", test_fraction=0.5, n_boot=50, min_events=1,
                                      min_nonevents=1, progress=False)
    _check(res, "cora_plaque", ("model", "fit", "train_indices", "test_indices"))
    assert res.metrics["pool"] == "max"
    assert json.loads(res.files["metrics"].read_text())["test"].keys() == res.metrics["test"].keys()
    preds = res.tables["predictions"]
    for target, cell in res.metrics["test"].items():
        assert cell["n"] == 5
        if cell.get("not_estimable"):
            assert not (cell.get("auroc") or {}).get("value")
            continue
        # the same numbers as the evaluation's AUROC with its stratified bootstrap (same seed)
        test = preds[(preds["split"] == "test") & (preds["target"] == target)]
        est = roc_auc(test["y_true"].to_numpy(), test["y_prob"].to_numpy(), ci="bootstrap", n_boot=50, seed=0)
        assert cell["auroc"]["value"] == pytest.approx(est.value)
        assert cell["auroc"]["ci"] == pytest.approx(list(est.ci))

