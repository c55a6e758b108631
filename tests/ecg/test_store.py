"""The ECG store: equals per-record preprocessing, resumes, splits across machines, checks the spec."""

import numpy as np
import pytest

from riskfm.ecg import prepare_ecg, read_ecg
from riskfm.ecg.spec import ECGInputSpec
from riskfm.ecg.store import ECGStore, StoreError, build_ecg_store, manifest_ecg_paths

SPEC = ECGInputSpec(fs=250.0, n_samples=1000, bandpass_hz=(0.67, 40.0), normalisation="global_zscore")


@pytest.fixture(scope="module")
def paths(tiny_cohort):
    return manifest_ecg_paths(tiny_cohort.manifest_path)[:12]


def test_store_equals_per_record_preprocessing(tmp_path, paths):
    bad = str(tmp_path / "missing_record")
    summary = build_ecg_store([*paths, bad], tmp_path / "s", SPEC, shard_size=5)
    assert summary == {"built": 3, "skipped": 0, "ok": 12, "failed": 1}
    store = ECGStore(tmp_path / "s")
    assert len(store) == 13
    for p in paths[:4]:
        x, mask = store[p]
        ref, ref_mask = prepare_ecg(read_ecg(p), SPEC)
        assert x.dtype == np.float16 and x.shape == (12, 1000)
        np.testing.assert_allclose(x.astype(np.float32), ref, atol=2e-3, rtol=1e-3)  # float16 rounding
        np.testing.assert_array_equal(mask, ref_mask)
    rec = store.record(bad)
    assert not rec["ok"] and "missing_record" in rec["reason"]
    with pytest.raises(StoreError, match="another input spec"):
        store.check_spec(ECGInputSpec(fs=500.0, n_samples=5000))


def test_split_build_and_resume(tmp_path, paths):
    out = tmp_path / "s"
    first = build_ecg_store(paths, out, SPEC, shard_size=4, shard="0/2")
    assert first["built"] == 2  # shards 0 and 2 of 3
    with pytest.raises(StoreError, match="1 of 3 shards"):
        ECGStore(out)
    second = build_ecg_store(paths, out, SPEC, shard_size=4, shard="1/2")
    assert second["built"] == 1
    again = build_ecg_store(paths, out, SPEC, shard_size=4)  # resume: nothing left to do
    assert again == {"built": 0, "skipped": 3, "ok": 0, "failed": 0}
    assert len(ECGStore(out)) == len(paths)
    with pytest.raises(StoreError, match="differs"):
        build_ecg_store(paths, out, ECGInputSpec(fs=500.0, n_samples=500), shard_size=4)


def test_command_line_build_with_workers(tmp_path, tiny_cohort):
    import json

    from typer.testing import CliRunner

    from riskfm.cli import app

    spec_file = tmp_path / "spec.json"
    spec_file.write_text(json.dumps({"fs": 100.0, "n_samples": 500}))
    result = CliRunner().invoke(app, ["--quiet", "ecg", "store", "build", str(tiny_cohort.manifest_path), "--out",
                                      str(tmp_path / "cli"), "--spec", str(spec_file), "--workers", "2",
                                      "--shard-size", "40", "--no-quality"])
    assert result.exit_code == 0, result.output
    built = json.loads(result.stdout.strip().splitlines()[-1])
    assert built["built"] == 2 and built["ok"] == len(manifest_ecg_paths(tiny_cohort.manifest_path))
