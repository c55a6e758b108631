"""The dense CORA tasks share one options object; keyword overrides replace single fields."""

import pytest

from riskfm.recipes.cora_common import DenseTaskOptions


def test_overrides_replace_fields_and_patch_becomes_ints():
    base = DenseTaskOptions(steps=50, lr=5e-4)
    opts = DenseTaskOptions.resolve(base, patch=[16.0, 24, 32], seed=3)
    assert (opts.steps, opts.lr, opts.seed) == (50, 5e-4, 3)
    assert opts.patch == (16, 24, 32) and all(isinstance(p, int) for p in opts.patch)
    assert DenseTaskOptions.resolve(None) == DenseTaskOptions(patch=(32, 32, 32))


def test_an_unknown_option_is_named():
    with pytest.raises(TypeError, match=r"unknown option\(s\) \['step'\]"):
        DenseTaskOptions.resolve(step=10)
