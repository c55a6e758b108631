"""One artery vocabulary: names in one order, calcium label ids frozen, every module reading it."""

import riskfm.arteries as arteries
from riskfm.arteries import ARTERIES, ARTERY_LABELS, ARTERY_NAMES, STENOSIS_COLUMNS, stenosis_column


def test_order_and_frozen_label_ids():
    assert ARTERIES == ("RCA", "LM", "LAD", "LCX")
    # Baked into trained segmenters and saved masks: never renumber.
    assert list(ARTERY_LABELS.items()) == [("LM", 1), ("LAD", 2), ("LCX", 3), ("RCA", 4)]
    assert ARTERY_NAMES == {1: "LM", 2: "LAD", 3: "LCX", 4: "RCA"}
    assert set(ARTERY_LABELS) == set(ARTERIES)
    assert STENOSIS_COLUMNS == ("stenosis_rca", "stenosis_lm", "stenosis_lad", "stenosis_lcx")
    assert stenosis_column("lad") == "stenosis_lad"
    import pytest

    with pytest.raises(ValueError, match="unknown artery"):
        stenosis_column("PDA")


def test_every_module_uses_the_one_vocabulary():
    from data_adapters.coca import COCA_ARTERIES
    from riskfm.ct.calcium import scoring
    from riskfm.data import manifest, sample
    from riskfm.synthetic import ct_render, ecg_render, patients

    assert scoring.ARTERY_LABELS is arteries.ARTERY_LABELS and scoring.ARTERY_NAMES is arteries.ARTERY_NAMES
    assert ct_render.ARTERY_LABELS is arteries.ARTERY_LABELS
    for module in (ct_render, ecg_render, patients, sample):
        assert module.ARTERIES is ARTERIES
    assert patients.STENOSIS_COLUMNS is STENOSIS_COLUMNS and manifest.STENOSIS_TARGETS == STENOSIS_COLUMNS
    assert COCA_ARTERIES == {"Left Coronary Artery": 1, "Left Anterior Descending Artery": 2,
                             "Left Circumflex Artery": 3, "Right Coronary Artery": 4}
