"""Synthetic exams, segmentation networks, the non-gated bucket model, protocols and the CLI."""

import numpy as np
import pandas as pd
import pytest
import torch

from riskfm.ct.calcium import epicardial_fat_volume, score_calcium
from riskfm.ct.calcium.nongated import BucketClassifier, exam_features, slice_summaries
from riskfm.ct.calcium.protocols import add_subgroups, fairness_table
from riskfm.ct.calcium.segmentation import CalciumSeg3d, load_segmenter
from riskfm.data.splits import low_data_folds
from riskfm.errors import CheckpointError
from riskfm.synthetic.calcium import DISTRACTOR_LABELS, make_calcium_exam
from riskfm.train.tasks.calcium_segmentation import train_segmenter

SMALL = {"shape": (8, 48, 48), "spacing": (3.0, 2.5, 2.5)}


@pytest.fixture(scope="module")
def exams():
    return [make_calcium_exam(i, burden=2 + i % 3, **SMALL) for i in range(3)]


def test_synthetic_exam_ground_truth(exams):
    ex = make_calcium_exam(5, burden=4)
    assert ex.reference.agatston > 0 and ex.reference.agatston == pytest.approx(
        score_calcium(ex.hu, ex.spacing, labels=ex.labels).agatston)
    assert not np.any((ex.labels > 0) & (ex.distractors > 0))
    assert not np.any(ex.heart_roi & (ex.distractors == DISTRACTOR_LABELS["bone"]))  # bone outside the ROI
    assert np.all(ex.labels[ex.labels > 0] <= 4) and np.all(ex.hu[ex.labels > 0] >= 130)
    # Distractors make plain thresholding in the ROI over-count: what the model must learn.
    assert score_calcium(ex.hu, ex.spacing).agatston > ex.reference.agatston
    assert make_calcium_exam(0, burden=0).reference.agatston == 0


@pytest.mark.parametrize("model", ["unet2d", "seg3d", "cora3d"])
def test_segmenter_trains_predicts_and_round_trips(exams, model, tmp_path):
    seg = train_segmenter(exams, model=model, widths=(4, 8, 8, 8), epochs=2, steps_per_epoch=2, batch_size=2)
    assert len(seg.config.history) == 2 and all(np.isfinite(seg.config.history))
    pred = seg.predict(exams[0].hu, exams[0].spacing)
    assert pred.shape == exams[0].hu.shape and pred.dtype == np.uint8 and pred.max() <= 4
    assert np.all(exams[0].hu[pred > 0] >= 130)  # calcium only where HU says it can be
    loaded = load_segmenter(seg.save(tmp_path / "m.pt"))
    assert np.array_equal(loaded.predict(exams[0].hu), pred)
    s = seg.score(exams[0].hu, exams[0].spacing)
    assert set(s.per_artery) == {"LM", "LAD", "LCX", "RCA"}


def test_seg3d_starts_from_a_pretrained_encoder_checkpoint(tmp_path):
    from riskfm.ct.cnn3d import CNN3d
    from riskfm.encoders import CheckpointError

    enc = CNN3d(widths=(4, 8, 8, 8))
    torch.save({"state_dict": {f"encoders.ct.{k}": v for k, v in enc.state_dict().items()}}, tmp_path / "enc.pt")
    net = CalciumSeg3d((4, 8, 8, 8), tmp_path / "enc.pt")
    assert torch.equal(net.encoder.blocks[0].conv.weight, enc.blocks[0].conv.weight)
    assert net.encoder_init.endswith("enc.pt")
    assert net(torch.rand(1, 4, 8, 32, 32)).shape == (1, 5, 8, 32, 32)
    torch.save({"other": torch.zeros(1)}, tmp_path / "bad.pt")
    with pytest.raises(CheckpointError, match="no cnn3d-small conv blocks"):
        CalciumSeg3d((4, 8, 8, 8), tmp_path / "bad.pt")
    with pytest.raises(CheckpointError, match="do not fit|lacks"):
        CalciumSeg3d((8, 8, 8, 8), tmp_path / "enc.pt")


def test_nongated_summaries_and_bucket_classifier():
    hu = np.zeros((6, 20, 20))
    cal = np.zeros(hu.shape, bool)
    hu[2, 2:4, 2:4] = 300
    hu[2, 10:12, 10:13] = 500
    cal[hu > 0] = True
    s = slice_summaries(hu, cal, (3.0, 1.0, 1.0))
    assert s[2].tolist() == [10.0, 500.0, (4 * 300 + 6 * 500) / 1000, 2]
    feats = exam_features(s)
    assert feats.shape == (20,) and feats[:4].tolist() == s[2].tolist() and feats[4] == 0
    rng = np.random.default_rng(0)
    agat = rng.choice([0, 5, 50, 200, 800], size=60)
    x = np.column_stack([agat * rng.uniform(0.8, 1.2, 60), rng.normal(size=(60, 19))])
    clf = BucketClassifier(n_estimators=30).fit(x, agatston=agat)
    assert (clf.predict(x) == np.searchsorted([0, 10, 100, 400], agat, side="left")).mean() > 0.9
    assert clf.predict_proba(x).shape == (60, 5)


def test_epicardial_fat_volume_counts_fat_inside_the_pericardium():
    hu = np.full((2, 10, 10), 40.0)
    peri = np.zeros(hu.shape, bool)
    peri[:, 2:8, 2:8] = True
    hu[:, 2:4, 2:8] = -100.0      # 2 x 2 x 6 = 24 fat voxels inside
    hu[:, 0, :] = -100.0          # fat outside: not counted
    assert epicardial_fat_volume(hu, (2.0, 1.0, 1.0), peri) == pytest.approx(24 * 2.0 / 1000)


def test_low_data_folds_keep_tests_intact_and_subsets_nested():
    splits = low_data_folds(20, n_folds=5, fractions=(1.0, 0.5, 0.25), seed=1)
    assert len(splits) == 15
    tests = [s.test for s in splits if s.fraction == 1.0]
    assert np.array_equal(np.sort(np.concatenate(tests)), np.arange(20))
    for k in range(5):
        cell = {s.fraction: s for s in splits if s.fold == k}
        assert len(cell[1.0].train) == 16 and len(cell[0.25].train) == 4
        assert set(cell[0.25].train) <= set(cell[0.5].train) <= set(cell[1.0].train)
        assert not set(cell[1.0].train) & set(cell[1.0].test)


def test_fairness_gaps_binary_and_multilevel():
    df = pd.DataFrame({"reference": [0, 50, 150, 500, 0, 50], "predicted": [10, 50, 100, 600, 0, 40],
                       "sex": ["M", "M", "F", "F", "M", "F"], "age": [45, 60, 70, 55, 50, 66],
                       "eat_ml": [10, 20, 30, 40, 50, 60]})
    t = fairness_table(add_subgroups(df))
    sex = t[t.attribute == "sex"].set_index("group")
    mae_f = np.mean([50, 100, 10])
    mae_m = np.mean([10, 0, 0])
    assert sex.loc["F", "mae"] == pytest.approx(mae_f) and sex.loc["F", "gap_mae"] == pytest.approx(mae_f - mae_m)
    age = t[t.attribute == "age"].set_index("group")
    assert list(age.index) == ["<=50", "51-65", ">65"]
    assert age["gap_bias"].to_numpy() == pytest.approx(age["bias"].to_numpy() - np.median(age["bias"]))
    assert set(t.attribute) == {"sex", "age", "cac_drs", "eat"}


@pytest.fixture
def loud(monkeypatch):
    """Progress bars and status lines on (another test may have run ``riskfm --quiet`` in-process)."""
    import riskfm.progress as progress

    monkeypatch.delenv("RISKFM_QUIET", raising=False)
    monkeypatch.setitem(progress._state, "quiet", False)


def test_recipes_write_tables_and_figures(tmp_path, loud, capsys):
    from riskfm.recipes.cac_fairness import run_fairness
    from riskfm.recipes.cac_low_data import run_low_data

    exams = [make_calcium_exam(i, burden=i % 5, **SMALL) for i in range(3)]
    res = run_low_data(tmp_path / "ld", exams=exams, n_folds=2, fractions=(1.0, 0.5), epochs=1,
                       steps_per_epoch=1, widths=(4, 8, 8, 8))
    assert set(res.tables["summary"]["model"]) == {"unet2d", "cora3d-random"}
    err = capsys.readouterr().err   # progress: the arms, each training's steps
    assert "riskfm: low-data protocol: 8 trainings" in err and "low-data arms" in err
    assert "training cora3d-random fold 2/2 at 50%" in err
    assert all(p.is_file() for p in res.paths.values())
    fair = run_fairness(tmp_path / "fair", train_exams=exams[:2], test_exams=exams, epochs=1, steps_per_epoch=1,
                        widths=(4, 8, 8, 8))
    assert all(p.is_file() for p in fair.paths.values()) and len(fair.metrics["models"]) == 2
    err = capsys.readouterr().err
    assert "training unet2d" in err and "scoring test exams with 2 models" in err


@pytest.mark.slow  # trains a small U-Net, renders and segments 9 exams (seconds)
def test_nongated_on_synthetic_exams_trains_a_unet_without_a_model(tmp_path, loud, capsys):
    from riskfm.recipes.cac_nongated import run_nongated_synthetic

    res = run_nongated_synthetic(tmp_path, None, n_train=6, n_test=3, n_gated=2, epochs=1, steps_per_epoch=1)
    err = capsys.readouterr().err
    assert "no segmentation model given: training a U-Net on 2 gated synthetic exams first" in err
    assert "rendering gated exams" in err and "training unet2d" in err
    assert "rendering 6 + 3 non-gated synthetic exams" in err
    assert res.name == "cac_nongated" and (res.metrics["n_train"], res.metrics["n_test"]) == (6, 3)
    assert all(p.is_file() for p in res.paths.values())


def test_cli_scores_a_nifti_with_and_without_a_model(tmp_path):
    from typer.testing import CliRunner

    from riskfm.commands.cac import app
    from riskfm.synthetic.calcium import make_calcium_cohort

    manifest = make_calcium_cohort(1, tmp_path / "c", shape=SMALL["shape"], spacing=SMALL["spacing"])
    row = pd.read_csv(manifest).iloc[0]
    ct = tmp_path / "c" / row.ct_path
    runner = CliRunner()
    r = runner.invoke(app, ["score", str(ct), "--roi", str(tmp_path / "c" / row.roi_path), "--out", str(tmp_path / "o1")])
    assert r.exit_code == 0, r.output
    assert (tmp_path / "o1" / "overlay.png").is_file() and "Agatston" in r.output
    table = pd.read_csv(tmp_path / "o1" / "per_artery.csv", index_col=0)
    assert table.loc["total", "agatston"] >= row.agatston  # threshold in the ROI counts distractors too
    seg = train_segmenter([make_calcium_exam(0, **SMALL)], widths=(4, 8, 8, 8), epochs=1, steps_per_epoch=1)
    seg.save(tmp_path / "m.pt")
    r = runner.invoke(app, ["score", str(ct), "--model", str(tmp_path / "m.pt"), "--out", str(tmp_path / "o2")])
    assert r.exit_code == 0, r.output
    assert {"LM", "LAD", "LCX", "RCA", "total"} <= set(pd.read_csv(tmp_path / "o2" / "per_artery.csv")["artery"])
    r = runner.invoke(app, ["score", str(tmp_path / "missing.nii.gz")])
    assert r.exit_code == 2 and "error" in r.output


def test_lesion_decisions_keep_or_drop_whole_regions():
    from riskfm.ct.calcium.segmentation import _lesion_decisions

    cand = np.zeros((1, 6, 12), bool)
    cand[0, 1:4, 1:4] = True   # region A: 9 voxels, mostly calcium
    cand[0, 1:3, 7:10] = True  # region B: 6 voxels, mostly not
    p_calc = np.zeros(cand.shape, np.float32)
    p_calc[0, 1:4, 1:4] = 0.8
    p_calc[0, 1, 1] = 0.1      # one doubtful voxel inside A: kept with its region
    p_calc[0, 1:3, 7:10] = 0.2
    p_calc[0, 1, 7] = 0.95     # one confident voxel inside B: dropped with its region
    p_artery = np.zeros((4,) + cand.shape, np.float32)
    p_artery[1] = 0.6          # LAD wins the vote over A ...
    p_artery[3] = 0.4
    p_artery[3, 0, 2, 2] = 1.0  # ... despite one RCA-looking voxel
    out = _lesion_decisions(cand, p_calc, p_artery)
    assert np.all(out[0, 1:4, 1:4] == 2)
    assert np.all(out[0, 1:3, 7:10] == 0)
    assert out[~cand].max() == 0
    # Deciding per voxel would cut A's doubtful voxel out and keep B's confident one.
    pixel = np.where(cand & (p_calc > 0.5), p_artery.argmax(0) + 1, 0)
    assert pixel[0, 1, 1] == 0 and pixel[0, 1, 7] != 0


def test_predict_rejects_an_unknown_decision_rule(exams):
    seg = train_segmenter(exams[:2], widths=(4, 8), epochs=1, steps_per_epoch=1, batch_size=2)
    with pytest.raises(ValueError, match="decision"):
        seg.predict(exams[0].hu, decision="majority")


def test_cora3d_starts_from_a_cora_pretraining_checkpoint(tmp_path):
    from riskfm.ct.calcium.cora_seg import CalciumCora3d
    from riskfm.ct.cora import CoraResUNet
    from riskfm.encoders import CheckpointError

    pre = CoraResUNet(width=4)  # what riskfm pretrain-ct trains: one output channel
    torch.save({"model": {f"net.{k}": v for k, v in pre.state_dict().items()}}, tmp_path / "cora.pt")
    net = CalciumCora3d(4, tmp_path / "cora.pt")
    assert torch.equal(net.net.stages[2][0].conv1.conv.weight, pre.stages[2][0].conv1.conv.weight)
    # Only the encoder transfers: the calcium head has five channels and starts afresh.
    assert net.net.head.conv.conv.weight.shape[0] == 5 and net.encoder_init.endswith("cora.pt")
    assert net(torch.rand(1, 4, 8, 40, 40)).shape == (1, 5, 8, 40, 40)
    with pytest.raises(CheckpointError, match="width"):
        CalciumCora3d(8, tmp_path / "cora.pt")
    torch.save({"other": torch.zeros(1)}, tmp_path / "bad.pt")
    with pytest.raises(CheckpointError, match="no CORA encoder stages"):
        CalciumCora3d(4, tmp_path / "bad.pt")


def test_estimated_roi_keeps_coronary_calcium_and_drops_the_spine():
    from scipy import ndimage

    from riskfm.ct.calcium.roi import estimate_heart_roi

    lost = total = 0
    for seed in range(4):
        ex = make_calcium_exam(100 + seed, burden=4)
        roi = estimate_heart_roi(ex.hu, ex.spacing)
        total += int((ex.labels > 0).sum())
        lost += int(((ex.labels > 0) & ~roi).sum())
        bone, _ = ndimage.label(ex.distractors == DISTRACTOR_LABELS["bone"])
        spine = bone == 1 + np.bincount(bone.ravel())[1:].argmax()  # the largest bone: the vertebral column
        assert not np.any(roi & spine)
    # The anterior heart wall (LAD, RCA) lies close behind the chest wall: the ROI must reach it.
    assert lost <= 0.02 * total


def test_roi_trained_model_decides_only_inside_the_roi(exams, tmp_path):
    from riskfm.ct.calcium.roi import estimate_heart_roi

    seg = train_segmenter(exams, widths=(4, 8), epochs=1, steps_per_epoch=1, batch_size=2)
    assert seg.config.roi == "estimate"
    ex = exams[1]
    outside = (ex.hu >= 130) & ~estimate_heart_roi(ex.hu, ex.spacing)
    assert outside.any() and not np.any(seg.predict(ex.hu, ex.spacing)[outside])
    # A mask passed in wins over the estimate, and a wrong-sized one is refused.
    assert not seg.predict(ex.hu, ex.spacing, roi=np.zeros(ex.hu.shape, bool)).any()
    with pytest.raises(ValueError, match="roi has shape"):
        seg.predict(ex.hu, ex.spacing, roi=np.ones((2, 2, 2), bool))
    assert load_segmenter(seg.save(tmp_path / "m.pt")).config.roi == "estimate"
    with pytest.raises(ValueError, match="roi must be one of"):
        train_segmenter(exams, roi="heart", epochs=1, steps_per_epoch=1)


def test_segmenter_files_of_older_riskfm_load_and_other_kinds_are_refused(exams, tmp_path):
    from dataclasses import asdict

    from riskfm.train.bundle import BundleKindError, load_bundle, save_bundle

    seg = train_segmenter(exams[:2], widths=(4, 8), epochs=1, steps_per_epoch=1, batch_size=2, progress=False)
    assert load_bundle(seg.save(tmp_path / "new.pt"))["kind"] == "calcium-segmenter"
    # The single-file layout CalciumSegmenter.save wrote before bundles (config lists, no kind).
    cfg = {**asdict(seg.config), "widths": list(seg.config.widths), "spacing": list(seg.config.spacing)}
    torch.save({"state_dict": seg.net.state_dict(), "riskfm_calcium_config": cfg}, tmp_path / "old.pt")
    old = load_segmenter(tmp_path / "old.pt")
    assert old.config == seg.config
    assert all(torch.equal(v, seg.net.state_dict()[k]) for k, v in old.net.state_dict().items())
    ex = exams[2]
    assert np.array_equal(old.predict(ex.hu, ex.spacing), seg.predict(ex.hu, ex.spacing))
    save_bundle(tmp_path / "dense.pt", kind="cora-dense", model=seg.net.state_dict(), config=cfg)
    with pytest.raises(BundleKindError, match="dense.pt: holds a 'cora-dense' checkpoint, not 'calcium-segmenter'"):
        load_segmenter(tmp_path / "dense.pt")
    save_bundle(tmp_path / "odd.pt", kind="calcium-segmenter", model=seg.net.state_dict(), config={"depth": 3})
    with pytest.raises(CheckpointError, match="odd.pt: calcium segmenter config has no 'model'"):
        load_segmenter(tmp_path / "odd.pt")


def test_patch_boxes_fit_the_exam_and_favour_coronary_calcium():
    from riskfm.ct.calcium.segmentation import _patch_box

    cand = np.zeros((8, 50, 60), bool)
    labels = np.zeros(cand.shape, np.int64)
    cand[:, 5, 5] = True
    cand[4, 40, 50] = True
    labels[4, 40, 50] = 2
    rng = np.random.default_rng(0)
    boxes = [_patch_box((cand, labels), (16, 32, 32), rng) for _ in range(200)]
    assert all(tuple(b.stop - b.start for b in box) == (8, 32, 32) for box in boxes)
    assert all(b.start >= 0 and b.stop <= n for box in boxes for b, n in zip(box, cand.shape))
    hits = np.mean([labels[box].any() for box in boxes])
    assert 0.4 < hits < 0.75  # half the crops aim at the one coronary voxel (the rest rarely reach it)


def test_nongated_recipe_fits_trees_on_predicted_summaries(tmp_path, loud, capsys):
    from sklearn.metrics import cohen_kappa_score

    from riskfm.recipes.cac_nongated import run_nongated

    train = [make_calcium_exam(40 + i, burden=i % 5, gated=False, **SMALL) for i in range(6)]
    test = [make_calcium_exam(60 + i, burden=(i + 2) % 5, gated=False, **SMALL) for i in range(4)]
    seg = train_segmenter(train[:2], roi="none", widths=(4, 8), epochs=1, steps_per_epoch=1, batch_size=2)
    res = run_nongated(tmp_path, seg, train_exams=train, test_exams=test)
    err = capsys.readouterr().err
    assert "segmenting training exams" in err and "segmenting test exams" in err
    assert all(p.is_file() for p in res.paths.values())
    df = pd.read_csv(res.files["exams"])
    assert len(df) == 4 and df["trees_bucket"].between(0, 4).all()
    m = res.metrics
    expected = cohen_kappa_score(df["reference_bucket"], df["trees_bucket"])
    kappa = m["trees"]["kappa"]["value"]  # JSON-ready: null when undefined
    assert (float("nan") if kappa is None else kappa) == pytest.approx(expected, nan_ok=True)
    assert m["mask"]["accuracy"] == pytest.approx(np.mean(df["mask_bucket"] == df["reference_bucket"]))
