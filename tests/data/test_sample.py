import numpy as np
import torch

from riskfm.data import Sample, collate_samples


def test_collate_presence_flags_and_zeros_for_missing():
    a = Sample("A", index=0, ecg=np.ones((12, 50), np.float32), ecg_lead_mask=np.ones(12, bool),
               clinical_text="age 60", stenosis=np.array([1, 0, np.nan, 0], np.float32), mace_30d=1.0)
    b = Sample("B", index=1, ct=np.ones((4, 2, 3, 3), np.float32))
    batch = collate_samples([a, b])
    assert batch["ecg_present"].tolist() == [True, False]
    assert batch["ct_present"].tolist() == [False, True]
    assert batch["clinical_present"].tolist() == [True, False]
    assert batch["ecg"].shape == (2, 12, 50) and torch.all(batch["ecg"][1] == 0)
    assert batch["ct"].shape == (2, 4, 2, 3, 3) and torch.all(batch["ct"][0] == 0)
    assert not batch["ecg_lead_mask"][1].any()
    assert torch.isnan(batch["stenosis"][0, 2]) and torch.isnan(batch["mace_30d"][1])
    assert batch["index"].tolist() == [0, 1]


def test_collate_rejects_mixed_shapes():
    import pytest

    a = Sample("A", ecg=np.ones((12, 50), np.float32))
    b = Sample("B", ecg=np.ones((12, 60), np.float32))
    with pytest.raises(ValueError, match="different shapes"):
        collate_samples([a, b])
