"""collate_samples stacks each field once and gives exactly the batches of the per-sample version (issue 14).

``_reference_collate`` is the implementation before the change (a torch.zeros batch filled one
sample at a time); every batch below must match it in keys and key order, dtypes, shapes, values
(NaN where NaN) and presence flags.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from riskfm.data import Sample, collate_samples


def _reference_stack(arrays, name):
    present = torch.tensor([a is not None for a in arrays], dtype=torch.bool)
    if not present.any():
        return None, present
    ref = next(a for a in arrays if a is not None)
    shapes = {tuple(a.shape) for a in arrays if a is not None}
    if len(shapes) > 1:
        raise ValueError(f"{name}: samples in one batch have different shapes {sorted(shapes)}; "
                         "prepare every record for the same encoder input spec")
    out = torch.zeros((len(arrays), *ref.shape), dtype=torch.float32)
    for i, a in enumerate(arrays):
        if a is not None:
            out[i] = torch.as_tensor(np.asarray(a, dtype=np.float32))
    return out, present


def _reference_collate(samples):
    batch = {"patient_id": [s.patient_id for s in samples], "site": [s.site for s in samples],
             "index": torch.tensor([s.index for s in samples], dtype=torch.long)}
    ecg, batch["ecg_present"] = _reference_stack([s.ecg for s in samples], "ecg")
    if ecg is not None:
        batch["ecg"] = ecg
        masks = [s.ecg_lead_mask if s.ecg_lead_mask is not None else np.zeros(ecg.shape[1], bool) for s in samples]
        batch["ecg_lead_mask"] = torch.as_tensor(np.stack(masks), dtype=torch.bool)
    ct, batch["ct_present"] = _reference_stack([s.ct for s in samples], "ct")
    if ct is not None:
        batch["ct"] = ct
    tab, tab_present = _reference_stack([s.clinical_tabular for s in samples], "clinical_tabular")
    if tab is not None:
        batch["clinical_tabular"] = tab
    texts = [s.clinical_text for s in samples]
    batch["clinical_text"] = texts
    batch["clinical_present"] = torch.tensor([t is not None for t in texts], dtype=torch.bool) | tab_present
    batch["stenosis"] = torch.as_tensor(np.stack([np.asarray(s.stenosis, np.float32) for s in samples]))
    for key in ("mace_30d", "time_to_event_days", "event"):
        batch[key] = torch.tensor([getattr(s, key) for s in samples], dtype=torch.float32)
    return batch


def _assert_same_batch(got, want):
    assert list(got) == list(want)
    for key, value in want.items():
        if isinstance(value, torch.Tensor):
            other = got[key]
            assert isinstance(other, torch.Tensor), key
            assert other.dtype == value.dtype and other.shape == value.shape, key
            assert other.is_contiguous(), key
            assert np.array_equal(other.numpy(), value.numpy(), equal_nan=value.dtype.is_floating_point), key
        else:
            assert got[key] == value, key


def _sample(rng, i, *, ecg=True, ct=True, tab=True, text=False, mask=True, dtype=np.float32):
    def maybe(flag, shape):
        if not flag:
            return None
        a = rng.normal(size=shape).astype(dtype)
        a.flat[0] = np.nan  # NaN survives the copy
        return a

    return Sample(
        f"P{i:03d}", site=f"s{i % 2}", index=i, ecg=maybe(ecg, (12, 174)),
        ecg_lead_mask=(rng.random(12) > 0.2) if (ecg and mask) else None, ct=maybe(ct, (4, 3, 5, 5)),
        clinical_text=f"age {60 + i}" if text else None, clinical_tabular=maybe(tab, (28,)),
        stenosis=np.array([1, 0, np.nan, rng.integers(2)], np.float32), mace_30d=float(i % 2),
        time_to_event_days=np.nan if i % 3 else 30.0 * i, event=float(i % 3 == 0),
    )


@pytest.mark.parametrize("case", ["all", "missing_mixed", "one", "no_ct", "nothing", "float64", "no_masks"])
def test_collate_matches_the_per_sample_version(case):
    rng = np.random.default_rng(sum(map(ord, case)))  # fixed per case
    n = 1 if case == "one" else 9
    samples = []
    for i in range(n):
        if case == "missing_mixed":
            kw = {"ecg": i % 2 == 0, "ct": i % 3 != 1, "tab": i % 4 != 0, "text": i % 5 == 0}
        elif case == "no_ct":
            kw = {"ct": False, "text": True}
        elif case == "nothing":
            kw = {"ecg": False, "ct": False, "tab": False}
        elif case == "float64":
            kw = {"dtype": np.float64}
        elif case == "no_masks":
            kw = {"mask": i % 2 == 0}
        else:
            kw = {}
        samples.append(_sample(rng, i, **kw))
    _assert_same_batch(collate_samples(samples), _reference_collate(samples))


def test_missing_rows_are_zero_and_the_batch_owns_its_memory():
    rng = np.random.default_rng(1)
    samples = [_sample(rng, 0), _sample(rng, 1, ecg=False, ct=False), _sample(rng, 2)]
    batch = collate_samples(samples)
    assert torch.all(batch["ecg"][1] == 0) and torch.all(batch["ct"][1] == 0)
    batch["ecg"][0, 0, 1] = 123.0  # the batch is a copy: writing to it leaves the sample alone
    assert samples[0].ecg[0, 1] != 123.0
    batch["ct"][1] += 1.0  # the zero rows of absent samples are not shared between rows
    assert torch.all(batch["ct"][1] == 1.0) and not torch.any(batch["ct"][0] == 1.0)


def test_integer_and_tensor_inputs_are_cast_as_before():
    samples = [Sample("A", ecg=np.arange(24, dtype=np.int64).reshape(2, 12)),
               Sample("B", ecg=torch.ones(2, 12, dtype=torch.float64))]
    _assert_same_batch(collate_samples(samples), _reference_collate(samples))


def test_mixed_shapes_give_the_same_error():
    samples = [Sample("A", ct=np.ones((4, 2, 3, 3), np.float32)), Sample("B", ct=np.ones((4, 2, 3, 4), np.float32))]
    with pytest.raises(ValueError) as new:
        collate_samples(samples)
    with pytest.raises(ValueError) as old:
        _reference_collate(samples)
    assert str(new.value) == str(old.value)
