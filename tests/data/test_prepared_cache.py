"""The prepared cache: same arrays as preparing in memory, no source read on reuse, never stale."""

import os
import pickle
import shutil

import numpy as np
import pytest
import torch

from riskfm.ct.spec import CTInputSpec
from riskfm.ct.transforms import ct_pipeline
from riskfm.data import Cohort, collate_samples
from riskfm.data.cache import PreparedCache, in_part, source_fingerprint
from riskfm.data.dataset import RiskDataset, prepare_cohort
from riskfm.ecg.plausibility import ECGPlausibility
from riskfm.ecg.spec import ECGInputSpec
from riskfm.ecg.transforms import ecg_pipeline
from tests.train.foreign_cohort import write_foreign_cohort

ECG = ECGInputSpec(fs=250, n_samples=2000)
CT = CTInputSpec(spacing=(3.0, 2.0, 2.0), shape=(12, 20, 20))


@pytest.fixture()
def cohort_dir(tmp_path):
    write_foreign_cohort(tmp_path / "data", n=10)
    return tmp_path / "data"


def _cohort(folder, **kw):
    return Cohort.from_manifest(folder / "cohort.csv", **kw)


def _forbid_reading(monkeypatch):
    """Any attempt to read a source ECG or CT fails the test."""
    def refuse(path, *a, **k):
        raise AssertionError(f"read a source file: {path}")

    monkeypatch.setattr("riskfm.ecg.io.read_ecg", refuse)
    monkeypatch.setattr("riskfm.ct.io.read_ct", refuse)


def test_cached_arrays_equal_the_in_memory_preparation(cohort_dir, tmp_path):
    cohort = _cohort(cohort_dir)
    memory = prepare_cohort(cohort, ecg_spec=ECG, ct_spec=CT, n_workers=1)
    cached = prepare_cohort(cohort, ecg_spec=ECG, ct_spec=CT, n_workers=2, cache_dir=tmp_path / "cache")
    assert not memory.failures and not cached.failures
    assert set(cached.ecg) == set(memory.ecg) and set(cached.ct_hu) == set(memory.ct_hu)
    for pid in memory.ecg:
        np.testing.assert_array_equal(cached.ecg[pid][0], memory.ecg[pid][0])
        np.testing.assert_array_equal(cached.ecg[pid][1], memory.ecg[pid][1])
        np.testing.assert_array_equal(cached.ct_hu[pid], memory.ct_hu[pid])
        assert cached.ecg[pid][0].dtype == np.float16 and cached.ct_hu[pid].dtype == np.int16
    # the samples a model sees are the same whichever way they were prepared
    a, b = RiskDataset(cohort, memory, clinical=None), RiskDataset(cohort, cached, clinical=None)
    for i in range(len(a)):
        np.testing.assert_array_equal(a[i].ct, b[i].ct)
        np.testing.assert_array_equal(a[i].ecg, b[i].ecg)


def test_a_second_preparation_reads_no_source_file(cohort_dir, tmp_path, monkeypatch):
    bad = cohort_dir / "waveforms" / "subj-004.hea"
    bad.write_text("not a header\n")
    first = prepare_cohort(_cohort(cohort_dir), ecg_spec=ECG, ct_spec=CT, n_workers=1, cache_dir=tmp_path / "c")
    _forbid_reading(monkeypatch)
    again = prepare_cohort(_cohort(cohort_dir), ecg_spec=ECG, ct_spec=CT, n_workers=1, cache_dir=tmp_path / "c")
    # failures are cached with their reason: the excluded patient is excluded again, for the same reason
    assert again.failures == first.failures and [f["patient_id"] for f in again.failures] == ["subj-004"]
    assert "ecg unreadable" in again.failures[0]["reason"]
    for pid in first.ct_hu:
        np.testing.assert_array_equal(again.ct_hu[pid], first.ct_hu[pid])


def test_a_changed_source_is_prepared_again_never_served_stale(cohort_dir, tmp_path):
    cohort = _cohort(cohort_dir, modalities=["ct"])
    cache = tmp_path / "c"
    before = prepare_cohort(cohort, ct_spec=CT, n_workers=1, cache_dir=cache)
    pid = cohort.df["patient_id"].iloc[0]
    path = cohort.df["ct_path"].iloc[0]
    # replace patient 0's CT by patient 1's (a re-exported scan, same name)
    shutil.copyfile(cohort.df["ct_path"].iloc[1], path)
    os.utime(path, ns=(1, 1))
    after = prepare_cohort(cohort, ct_spec=CT, n_workers=1, cache_dir=cache)
    np.testing.assert_array_equal(after.ct_hu[pid], before.ct_hu[cohort.df["patient_id"].iloc[1]])
    assert not np.array_equal(after.ct_hu[pid], before.ct_hu[pid])


def test_another_spec_or_check_makes_another_cache(cohort_dir, tmp_path):
    fingerprints = {ecg_pipeline(ECG).fingerprint, ecg_pipeline(ECGInputSpec(fs=500, n_samples=4000)).fingerprint,
                    ecg_pipeline(ECG, quality=True).fingerprint,
                    ecg_pipeline(ECG, checks=ECGPlausibility(max_amplitude_mv=20.0)).fingerprint,
                    ecg_pipeline(ECGInputSpec(fs=250, n_samples=2000, representation="median_beat")).fingerprint,
                    ecg_pipeline(ECGInputSpec(fs=250, n_samples=2000, normalisation="lead_zscore")).fingerprint}
    assert len(fingerprints) == 6
    # provenance does not change the arrays, so it does not change the cache
    assert ecg_pipeline(ECGInputSpec(fs=250, n_samples=2000, licence="CC-BY")).fingerprint == ecg_pipeline(ECG).fingerprint
    assert ct_pipeline(CT).fingerprint != ct_pipeline(CTInputSpec(spacing=(3.0, 2.0, 2.0), shape=(12, 20, 24))).fingerprint
    cohort = _cohort(cohort_dir, modalities=["ecg"])
    prepare_cohort(cohort, ecg_spec=ECG, n_workers=1, cache_dir=tmp_path / "c")
    beats = ECGInputSpec(fs=250, n_samples=2000, representation="median_beat")
    prepared = prepare_cohort(cohort, ecg_spec=beats, n_workers=1, cache_dir=tmp_path / "c")
    assert {p.name.split("-")[0] for p in (tmp_path / "c").iterdir()} == {"ecg"}
    assert len(list((tmp_path / "c").iterdir())) == 2
    assert next(iter(prepared.ecg.values()))[0].shape == (12, beats.input_samples)


def test_an_interrupted_shard_is_ignored_and_filled_again(cohort_dir, tmp_path):
    cohort = _cohort(cohort_dir, modalities=["ct"])
    cache = PreparedCache(tmp_path / "c", ct_pipeline(CT))
    cache.fill(list(cohort.df["ct_path"]))
    shards = cache.folder / "shards"
    index = next(shards.glob("*.index.csv"))
    index.unlink()  # a fill killed after writing the arrays, before its index
    fresh = PreparedCache(tmp_path / "c", ct_pipeline(CT))
    assert len(fresh) == 0
    report = fresh.fill(list(cohort.df["ct_path"]))
    assert report.prepared == len(cohort) and report.reused == 0
    assert PreparedCache(tmp_path / "c", ct_pipeline(CT)).fill(list(cohort.df["ct_path"])).reused == len(cohort)


def test_parts_split_the_filling_and_together_cover_the_cohort(cohort_dir, tmp_path):
    cohort = _cohort(cohort_dir, modalities=["ct"])
    paths = list(cohort.df["ct_path"])
    assert sorted(p for i in range(3) for p in paths if in_part(p, (i, 3))) == sorted(paths)
    reports = [PreparedCache(tmp_path / "c", ct_pipeline(CT)).fill(paths, part=(i, 2)) for i in range(2)]
    assert sum(r.prepared for r in reports) == len(paths)
    assert reports[0].prepared + reports[0].skipped == len(paths)
    assert PreparedCache(tmp_path / "c", ct_pipeline(CT)).missing(paths) == ([], len(paths))


def test_wfdb_record_fingerprint_covers_the_signal_file(cohort_dir):
    hea = cohort_dir / "waveforms" / "subj-001.hea"
    record = str(hea.with_suffix(""))
    before = source_fingerprint(record)
    assert source_fingerprint(hea) == before
    dat = cohort_dir / "waveforms" / "subj-001.dat"  # the signal file beside the header
    with open(dat, "ab") as f:
        f.write(b"\0\0")
    assert source_fingerprint(record) != before
    with pytest.raises(FileNotFoundError):
        source_fingerprint(cohort_dir / "waveforms" / "nobody")


def test_cached_datasets_stream_through_dataloader_workers(cohort_dir, tmp_path):
    cohort = _cohort(cohort_dir)
    prepared = prepare_cohort(cohort, ecg_spec=ECG, ct_spec=CT, n_workers=1, cache_dir=tmp_path / "c")
    ds = RiskDataset(cohort, prepared, clinical=None)
    assert len(pickle.dumps(ds)) < 200_000  # the workers get paths and row numbers, not arrays
    serial = [collate_samples([ds[i] for i in range(k, min(k + 4, len(ds)))]) for k in range(0, len(ds), 4)]
    loader = torch.utils.data.DataLoader(ds, batch_size=4, num_workers=2, collate_fn=collate_samples)
    for a, b in zip(serial, loader):
        assert torch.equal(a["ecg"], b["ecg"]) and torch.equal(a["ct"], b["ct"])


def test_a_manifest_without_clinical_columns_gives_one_empty_record_per_patient(cohort_dir, tmp_path):
    import pandas as pd

    table = pd.read_csv(cohort_dir / "cohort.csv")
    keep = ["patient_id", "site", "ecg_path", "ct_path", "stenosis_rca", "stenosis_lm", "stenosis_lad",
            "stenosis_lcx", "mace_30d", "time_to_event_days", "event"]
    table[[c for c in keep if c in table.columns]].to_csv(cohort_dir / "bare.csv", index=False)
    cohort = Cohort.from_manifest(cohort_dir / "bare.csv")
    assert cohort.clinical_columns == []
    ds = RiskDataset(cohort, prepare_cohort(cohort, ct_spec=CT, n_workers=1), clinical=None)
    assert ds[len(ds) - 1].clinical == {} and ds[len(ds) - 1].ct is not None


def test_batches_collated_in_workers_equal_those_collated_in_process_with_absent_rows(cohort_dir, tmp_path):
    cohort = _cohort(cohort_dir)
    cohort.df.loc[[1, 2, 5], "ct_path"] = ""  # absent CTs must arrive as zero rows, flagged absent
    prepared = prepare_cohort(cohort, ct_spec=CT, n_workers=1, cache_dir=tmp_path / "c")
    ds = RiskDataset(cohort, prepared, clinical=None)
    serial = collate_samples([ds[i] for i in range(len(ds))])
    (batch,) = list(torch.utils.data.DataLoader(ds, batch_size=len(ds), num_workers=1, collate_fn=collate_samples))
    assert torch.equal(batch["ct"], serial["ct"]) and batch["ct_present"].tolist() == serial["ct_present"].tolist()
    assert not batch["ct_present"][[1, 2, 5]].any() and (batch["ct"][[1, 2, 5]] == 0).all()


def test_code15_hdf5_members_are_cached_each_under_its_own_key(tmp_path):
    from riskfm.data.cache import PreparedCache
    from tests.ecg.test_formats import write_code15_part

    h5 = tmp_path / "exams_part0.hdf5"
    write_code15_part(h5, [11, 42, 7], n_real=4000)
    keys = [f"{h5}::{e}" for e in (11, 42, 7)]
    assert len({source_fingerprint(k) for k in keys}) == 3
    spec = ECGInputSpec(fs=400, n_samples=4000)
    cache = PreparedCache(tmp_path / "c", ecg_pipeline(spec, checks=ECGPlausibility(enabled=False)))
    report = cache.fill(keys + [f"{h5}::99"])
    assert report.prepared == 3 and report.failed == 1
    assert "exam id 99" in cache.lookup(f"{h5}::99").reason
    direct = ecg_pipeline(spec, checks=ECGPlausibility(enabled=False))(keys[1])
    np.testing.assert_array_equal(cache.read(cache.lookup(keys[1])).array, direct.array)
    os.utime(h5, ns=(5, 5))  # the container rewritten: every member is prepared again
    assert PreparedCache(tmp_path / "c", cache.pipeline).missing(keys)[1] == 0


@pytest.mark.parametrize("augment", [False, True])
def test_windows_computed_on_the_batch_equal_those_of_each_sample(cohort_dir, tmp_path, augment):
    cohort = _cohort(cohort_dir)
    cohort.df.loc[3, "ct_path"] = ""
    prepared = prepare_cohort(cohort, ct_spec=CT, n_workers=1, cache_dir=tmp_path / "c")
    per_sample = RiskDataset(cohort, prepared, clinical=None, augment=augment, seed=4)
    per_batch = RiskDataset(cohort, prepared, clinical=None, augment=augment, seed=4, ct_windows="batch")
    a = collate_samples([per_sample[i] for i in range(len(cohort))])
    b = collate_samples([per_batch[i] for i in range(len(cohort))])
    assert b["ct_hu"].dtype == (torch.float32 if augment else torch.int16) and "ct" not in b
    b = per_batch.finish_batch(b)
    assert "ct_hu" not in b and b["ct"].dtype == torch.float32
    assert torch.equal(a["ct"], b["ct"])  # bit for bit: the same float32 arithmetic
    assert b["ct_present"].tolist() == a["ct_present"].tolist() and not b["ct_present"][3]
    with pytest.raises(ValueError, match="ct_windows"):
        RiskDataset(cohort, prepared, clinical=None, ct_windows="gpu")


def test_a_reused_window_buffer_gives_each_batch_its_own_values(cohort_dir, tmp_path):
    # prediction windows every batch into one buffer: a smaller last batch and an absent CT must
    # still get exactly their own values, never the previous batch's leftovers
    cohort = _cohort(cohort_dir)
    cohort.df.loc[7, "ct_path"] = ""
    prepared = prepare_cohort(cohort, ct_spec=CT, n_workers=1, cache_dir=tmp_path / "c")
    ds = RiskDataset(cohort, prepared, clinical=None, ct_windows="batch")
    workspace: dict = {}
    first = ds.finish_batch(collate_samples([ds[i] for i in range(6)]), workspace=workspace)
    kept = first["ct"].clone()
    buffer = workspace["ct"]
    last = ds.finish_batch(collate_samples([ds[i] for i in range(6, 9)]), workspace=workspace)
    assert workspace["ct"] is buffer and last["ct"].data_ptr() == buffer.data_ptr()  # no new allocation
    fresh = ds.finish_batch(collate_samples([ds[i] for i in range(6, 9)]))
    assert last["ct"].shape == fresh["ct"].shape == (3, *kept.shape[1:])
    assert torch.equal(last["ct"], fresh["ct"]) and not last["ct"][1].any()  # row 1 is patient 7: absent
    assert not torch.equal(first["ct"][:3], kept[:3])  # the buffer was overwritten, as documented


def test_a_fill_that_cannot_fit_is_refused_before_writing(cohort_dir, tmp_path, monkeypatch):
    import collections

    from riskfm.data.cache import CacheSpaceError

    usage = collections.namedtuple("usage", "total used free")
    monkeypatch.setattr("riskfm.data.cache.shutil.disk_usage", lambda p: usage(10**9, 10**9 - 1000, 1000))
    cohort = _cohort(cohort_dir, modalities=["ct"])
    with pytest.raises(CacheSpaceError, match=r"10 files need about .* GB .*data.cache_dir"):
        PreparedCache(tmp_path / "c", ct_pipeline(CT)).fill(list(cohort.df["ct_path"]))
    assert not (tmp_path / "c").exists()
