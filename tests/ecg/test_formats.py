"""GE MUSE XML, HL7 aECG and HDF5 readers on files written here in each format's layout, plus real fixtures."""

import base64

import numpy as np
import pytest

from riskfm.ecg import read_ecg
from riskfm.ecg.io import ECGFormatError, ECGReadError

LEADS8 = ["I", "II", "V1", "V2", "V3", "V4", "V5", "V6"]


def _signal(n=2500, n_leads=8, seed=0):
    rng = np.random.default_rng(seed)
    return np.round(rng.normal(0, 200, size=(n_leads, n))).astype(np.int16)  # integer ADC counts


def write_muse(path, counts, uv_per_bit=4.88, fs=500, extra=""):
    leads = "".join(
        f"<LeadData><LeadByteCountTotal>{counts.shape[1] * 2}</LeadByteCountTotal>"
        f"<LeadSampleCountTotal>{counts.shape[1]}</LeadSampleCountTotal>"
        f"<LeadAmplitudeUnitsPerBit>{uv_per_bit}</LeadAmplitudeUnitsPerBit>"
        f"<LeadAmplitudeUnits>MICROVOLTS</LeadAmplitudeUnits><LeadID>{name}</LeadID>"
        f"<WaveFormData>{base64.b64encode(row.astype('<i2').tobytes()).decode()}</WaveFormData></LeadData>"
        for name, row in zip(LEADS8, counts))
    path.write_text(
        '<?xml version="1.0" encoding="ISO-8859-1"?><RestingECG><PatientDemographics><PatientAge>63</PatientAge>'
        "<Gender>FEMALE</Gender></PatientDemographics>"
        f"<Waveform><WaveformType>Median</WaveformType><SampleBase>{fs}</SampleBase>{leads}</Waveform>"
        f"<Waveform><WaveformType>Rhythm</WaveformType><SampleBase>{fs}</SampleBase>"
        f"<SampleExponent>0</SampleExponent>{extra}{leads}</Waveform></RestingECG>")
    return path


def test_muse_xml_scales_and_derives_limb_leads(tmp_path):
    counts = _signal()
    ecg = read_ecg(write_muse(tmp_path / "muse.xml", counts))
    assert ecg.fs == 500 and ecg.leads == ("I", "II", "III", "aVR", "aVL", "aVF", "V1", "V2", "V3", "V4", "V5", "V6")
    mv = counts.astype(np.float64) * 4.88e-3
    np.testing.assert_allclose(ecg.lead("I"), mv[0], rtol=1e-6)
    np.testing.assert_allclose(ecg.lead("V6"), mv[7], rtol=1e-6)
    np.testing.assert_allclose(ecg.lead("III"), mv[1] - mv[0], atol=1e-5)
    np.testing.assert_allclose(ecg.lead("aVR"), -(mv[0] + mv[1]) / 2, atol=1e-5)
    np.testing.assert_allclose(ecg.lead("aVL"), mv[0] - mv[1] / 2, atol=1e-5)
    np.testing.assert_allclose(ecg.lead("aVF"), mv[1] - mv[0] / 2, atol=1e-5)
    assert ecg.meta["derived_leads"] == ["III", "aVR", "aVL", "aVF"]
    assert ecg.meta["age"] == 63 and ecg.meta["sex"] == "F"


def test_muse_bad_base64_names_file_and_lead(tmp_path):
    path = write_muse(tmp_path / "bad.xml", _signal(n=10))
    text = path.read_text()
    first = text.index("<WaveFormData>", text.index("Rhythm")) + len("<WaveFormData>")
    path.write_text(text[:first] + "QUJD" + text[first:])  # 3 extra bytes: not whole int16 samples
    with pytest.raises(ECGReadError, match=r"bad\.xml.*lead I"):
        read_ecg(path)


def write_hl7(path, digits, scale_uv=5.0, origin_uv=0.0, increment="0.002", unit="s"):
    seqs = "".join(
        f'<component><sequence><code code="MDC_ECG_LEAD_{name.upper()}" codeSystem="2.16.840.1.113883.6.24"/>'
        f'<value xsi:type="SLIST_PQ"><origin value="{origin_uv}" unit="uV"/><scale value="{scale_uv}" unit="uV"/>'
        f'<digits>{" ".join(map(str, row))}</digits></value></sequence></component>'
        for name, row in zip(LEADS8, digits))
    path.write_text(
        '<?xml version="1.0"?><AnnotatedECG xmlns="urn:hl7-org:v3" '
        'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"><component><series><component><sequenceSet>'
        '<component><sequence><code code="TIME_ABSOLUTE" codeSystem="2.16.840.1.113883.5.4"/>'
        f'<value xsi:type="GLIST_TS"><head value="20240101120000.000"/><increment value="{increment}" '
        f'unit="{unit}"/></value></sequence></component>{seqs}</sequenceSet></component></series></component>'
        "</AnnotatedECG>")
    return path


def test_hl7_aecg_origin_scale_digits(tmp_path):
    digits = _signal(n=1000)
    ecg = read_ecg(write_hl7(tmp_path / "a.xml", digits, scale_uv=5.0, origin_uv=10.0))
    assert ecg.fs == pytest.approx(500.0) and ecg.n_leads == 12
    np.testing.assert_allclose(ecg.lead("V1"), (10.0 + 5.0 * digits[2]) * 1e-3, rtol=1e-5)
    np.testing.assert_allclose(ecg.lead("aVF"), ecg.lead("II") - ecg.lead("I") / 2, atol=1e-5)
    ecg2 = read_ecg(write_hl7(tmp_path / "b.xml", digits, increment="4", unit="ms"))
    assert ecg2.fs == pytest.approx(250.0)


def test_hl7_without_time_sequence_is_an_error(tmp_path):
    path = write_hl7(tmp_path / "c.xml", _signal(n=20))
    path.write_text(path.read_text().replace("TIME_ABSOLUTE", "SOMETHING"))
    with pytest.raises(ECGReadError, match=r"c\.xml.*sampling interval"):
        read_ecg(path)


def write_code15_part(path, exam_ids, n_real=4000, seed=0):
    import h5py

    rng = np.random.default_rng(seed)
    tracings = np.zeros((len(exam_ids), 4096, 12), dtype=np.float32)
    pad = (4096 - n_real) // 2
    tracings[:, pad:pad + n_real] = rng.normal(0, 0.3, size=(len(exam_ids), n_real, 12))
    with h5py.File(path, "w") as h:
        h["tracings"] = tracings
        h["exam_id"] = np.asarray(exam_ids, dtype=np.int64)
    return tracings


def test_hdf5_code15_record_trims_padding_and_orders_leads(tmp_path):
    tracings = write_code15_part(tmp_path / "exams_part0.hdf5", [11, 42, 7], n_real=2920)
    ecg = read_ecg(f"{tmp_path / 'exams_part0.hdf5'}::42")
    assert ecg.fs == 400 and ecg.n_samples == 2920
    pad = (4096 - 2920) // 2
    # CODE order DI, DII, DIII, AVR, AVL, AVF: aVL is column 4
    np.testing.assert_array_equal(ecg.lead("aVL"), tracings[1, pad:pad + 2920, 4])
    with pytest.raises(ECGFormatError, match="exam id 99"):
        read_ecg(f"{tmp_path / 'exams_part0.hdf5'}::99")
    with pytest.raises(ECGFormatError, match="::<exam_id>"):
        read_ecg(tmp_path / "exams_part0.hdf5")


def test_unknown_xml_is_named(tmp_path):
    (tmp_path / "x.xml").write_text("<Something/>")
    with pytest.raises(ECGFormatError, match=r"x\.xml.*neither"):
        read_ecg(tmp_path / "x.xml")


def test_real_ptb_fixture(fixtures_dir):
    ecg = read_ecg(fixtures_dir / "ecg" / "ptb" / "s0010_re")
    assert ecg.fs == 1000 and ecg.n_leads == 12 and ecg.leads[3] == "aVR"
    assert sorted(ecg.meta["dropped_channels"]) == ["vx", "vy", "vz"]
    full = read_ecg(fixtures_dir / "ecg" / "ptb" / "s0010_re", leads="all")
    assert full.n_leads == 15


def test_real_pydicom_waveform():
    from pydicom.data import get_testdata_file

    ecg = read_ecg(get_testdata_file("waveform_ecg.dcm"))
    assert ecg.n_leads == 12 and ecg.fs == 1000 and ecg.duration_s == pytest.approx(10, abs=0.01)


# SCPECG code value -> canonical lead (DICOM CID 3001), typed here, not imported from riskfm.
SCPECG_CODE_TO_LEAD = {
    "5.6.3-9-1": "I", "5.6.3-9-2": "II", "5.6.3-9-61": "III",
    "5.6.3-9-62": "aVR", "5.6.3-9-63": "aVL", "5.6.3-9-64": "aVF",
    "5.6.3-9-3": "V1", "5.6.3-9-4": "V2", "5.6.3-9-5": "V3",
    "5.6.3-9-6": "V4", "5.6.3-9-7": "V5", "5.6.3-9-8": "V6",
}


def test_dicom_leads_come_from_code_values_when_meanings_are_absent(tmp_path):
    """Without any CodeMeaning (or ChannelLabel) riskfm must name every channel from its SCPECG code value."""
    import pydicom
    from pydicom.data import get_testdata_file

    original = get_testdata_file("waveform_ecg.dcm")
    ds = pydicom.dcmread(original)
    codes = []
    for group_index, group in enumerate(ds.WaveformSequence):
        for channel in group.ChannelDefinitionSequence:
            source = channel.ChannelSourceSequence[0]
            del source.CodeMeaning
            assert "ChannelLabel" not in channel
            if group_index == 0:
                codes.append(str(source.CodeValue))
    stripped = tmp_path / "codes_only.dcm"
    ds.save_as(stripped)
    assert "CodeMeaning" not in pydicom.dcmread(stripped).WaveformSequence[0].ChannelDefinitionSequence[0] \
        .ChannelSourceSequence[0]

    reference, ecg = read_ecg(original), read_ecg(stripped)
    assert ecg.leads == reference.leads and len(ecg.leads) == 12
    assert ecg.fs == reference.fs
    np.testing.assert_array_equal(ecg.signal, reference.signal)
    # And against the file itself, through this test's own code table: channel i of the file is
    # the lead its code value names (raw samples in uV -> mV).
    raw_uv = pydicom.dcmread(original).waveform_array(0)
    assert sorted(SCPECG_CODE_TO_LEAD[c] for c in codes) == sorted(ecg.leads)
    for i, code in enumerate(codes):
        np.testing.assert_allclose(ecg.lead(SCPECG_CODE_TO_LEAD[code]), raw_uv[:, i] / 1000.0, rtol=1e-6,
                                   err_msg=f"channel {i} ({code})")
