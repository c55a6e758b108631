"""The command line's shape: every command lives in riskfm/commands/, shared options keep per-command defaults."""

from __future__ import annotations

import pytest
import typer
from typer.testing import CliRunner

from riskfm.cli import app


def _leaves(command, prefix=()):
    if hasattr(command, "commands"):
        for name, sub in command.commands.items():
            yield from _leaves(sub, (*prefix, name))
    else:
        yield prefix, command


def _params(*path):
    command = typer.main.get_command(app)
    for name in path:
        command = command.commands[name]
    return {p.name: p for p in command.params}


def test_every_command_lives_in_riskfm_commands():
    leaves = dict(_leaves(typer.main.get_command(app)))
    expected = {("demo",), ("train",), ("predict",), ("prepare",), ("evaluate",), ("explain",), ("pretrain-ct",),
                ("config", "init"), ("config", "show"), ("ecg", "store", "build"), ("ecg", "store", "info"),
                ("cac", "score"), ("cac", "train"), ("cac", "low-data"), ("cac", "fairness"), ("cac", "nongated"),
                ("ct", "abnormality"), ("ct", "plaque"), ("ct", "stenosis"), ("ct", "segment"),
                ("study", "ecg-stenosis"), ("study", "cora-mace")}
    assert set(leaves) == expected
    for path, command in leaves.items():
        assert command.callback.__module__.startswith("riskfm.commands."), path
        assert "verbose" in {p.name for p in command.params}, path  # wrapped by handle_errors


@pytest.mark.parametrize(("path", "defaults"), [
    (("cac", "train"), {"epochs": 10, "steps_per_epoch": 25, "seed": 0}),
    (("cac", "low-data"), {"epochs": 10, "steps_per_epoch": 10, "seed": 0}),
    (("cac", "fairness"), {"epochs": 6, "steps_per_epoch": 20, "seed": 0}),
    (("cac", "nongated"), {"epochs": 10, "steps_per_epoch": 25, "seed": 0}),
    (("ct", "plaque"), {"batch_size": 4, "steps": 300, "out": "cora_plaque", "checkpoint": None}),
    (("ct", "stenosis"), {"batch_size": 2, "patch": "32", "out": "cora_stenosis", "threshold": 0.5}),
    (("ct", "segment"), {"batch_size": 2, "patch": "32", "out": "cora_segment", "lr": 1e-3}),
])
def test_shared_options_keep_each_commands_defaults(path, defaults):
    params = _params(*path)
    for name, value in defaults.items():
        default = params[name].default
        assert (str(default) if name == "out" else default) == value, (path, name)


@pytest.mark.parametrize(("args", "needle"), [
    (["cac", "train", "--model", "unet3d"], "did you mean 'unet2d'"),
    (["cac", "train", "--roi", "bogus"], "estimate, none"),
    (["cac", "fairness", "--metric", "mea"], "did you mean 'mae'"),
])
def test_choices_are_checked_before_any_work(tmp_path, args, needle):
    result = CliRunner().invoke(app, [*args, "--out", str(tmp_path / "o")])
    text = " ".join(result.output.replace("│", " ").split())  # the usage error's box wraps lines
    assert result.exit_code == 2 and needle in text and "Traceback" not in result.output
    assert not (tmp_path / "o").exists()


def test_option_group_fills_the_commands_parameter():
    import inspect

    from riskfm.commands.common import OptionGroup

    group = OptionGroup(epochs=(int, 10), seed=(int, 0))

    @group(epochs=3)
    def command(out: str = "x", *, options: dict) -> dict:
        return {"out": out, **options}

    assert [p.name for p in inspect.signature(command).parameters.values()] == ["out", "epochs", "seed"]
    assert inspect.signature(command).parameters["epochs"].default == 3
    assert command(out="y", epochs=1, seed=2) == {"out": "y", "epochs": 1, "seed": 2}
    with pytest.raises(TypeError, match="no option"):
        group(batch=1)
    with pytest.raises(TypeError, match="no parameter 'options'"):
        group()(lambda out="x": out)


def test_demo_prints_from_the_recipe_result(tmp_path, monkeypatch):
    # The command reads the result's fields only: the table, the timings (metrics), the fit (extras).
    from types import SimpleNamespace

    import pandas as pd

    import riskfm.recipes.demo as demo
    from riskfm.recipes.result import RecipeResult

    table = pd.DataFrame({"split": ["test"], "target": ["mace_30d"], "auroc": [0.8], "ci_low": [0.7],
                          "ci_high": [0.9], "n": [50], "n_pos": [12], "note": [""], "oracle_auroc": [0.85]})
    fake = RecipeResult("demo", metrics={"cohort_seconds": 3.2, "train_seconds": 40.4, "total_seconds": 44.0},
                        tables={"auroc_vs_oracle": table}, files={"out_dir": tmp_path, "report": tmp_path / "report"},
                        extras={"fit": SimpleNamespace(best_epoch=1)})
    monkeypatch.setattr(demo, "run_demo", lambda *args, **kwargs: fake)
    result = CliRunner().invoke(app, ["demo", "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert "cohort 3 s, training + evaluation 40 s, total 44 s; best epoch 2" in result.output
    assert f"report: {tmp_path / 'report'}" in result.output and "0.800 (0.700-0.900)" in result.output


def test_cac_train_and_nongated_call_one_library_function(tmp_path, monkeypatch):
    from types import SimpleNamespace

    import riskfm.recipes.cac_nongated as cac_nongated
    import riskfm.train.tasks.calcium_segmentation as segmentation
    from riskfm.recipes.result import RecipeResult

    calls = []

    def train(n_exams, **kwargs):
        calls.append(("train", n_exams, kwargs))
        return SimpleNamespace(config=SimpleNamespace(history=[0.51234, 0.3]))

    kappa = {"value": 0.5, "ci": [0.25, 0.75]}
    fake = RecipeResult("cac_nongated", metrics={m: {"kappa": kappa, "accuracy": 0.6} for m in ("trees", "mask")},
                        files={"exams": tmp_path / "e.csv"}, figures={"figure": tmp_path / "f.png"})

    def nongated(out, model, **kwargs):
        calls.append(("nongated", model, kwargs))
        return fake

    monkeypatch.setattr(segmentation, "train_segmenter_on_synthetic", train)
    monkeypatch.setattr(cac_nongated, "run_nongated_synthetic", nongated)
    runner = CliRunner()
    result = runner.invoke(app, ["cac", "train", "--n-exams", "3", "--epochs", "2", "--out", str(tmp_path / "m.pt")])
    assert result.exit_code == 0, result.output
    assert f"loss per epoch [0.512, 0.3]; wrote {tmp_path / 'm.pt'}" in result.output
    result = runner.invoke(app, ["cac", "nongated", "--n-train", "5", "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert "trees: kappa 0.500 (0.250-0.750), accuracy 0.600" in result.output
    assert f"wrote {tmp_path / 'e.csv'}, {tmp_path / 'f.png'}" in result.output
    assert calls == [
        ("train", 3, {"model": "unet2d", "roi": "estimate", "encoder_checkpoint": None, "out": tmp_path / "m.pt",
                      "epochs": 2, "steps_per_epoch": 25, "seed": 0}),
        ("nongated", None, {"n_train": 5, "n_test": 40, "epochs": 10, "steps_per_epoch": 25, "seed": 0}),
    ]
