"""COCA adapter on files the test writes in the COCA layout (COCA itself is never committed)."""

import plistlib

import numpy as np
import pandas as pd
import pytest

from data_adapters import AdapterError
from data_adapters.coca import coca_gated_manifest, rasterise_polygon, read_coca_xml, read_nongated_scores

ROWS = COLS = 32
PIXEL_MM = 0.5


def write_series(folder, hu, z_positions):
    """Minimal CT DICOM series; files written in shuffled order with decreasing InstanceNumber."""
    from pydicom.dataset import FileDataset, FileMetaDataset
    from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian, generate_uid

    folder.mkdir(parents=True)
    series = generate_uid()
    for k in np.random.default_rng(0).permutation(len(z_positions)):
        meta = FileMetaDataset()
        meta.MediaStorageSOPClassUID = CTImageStorage
        meta.MediaStorageSOPInstanceUID = generate_uid()
        meta.TransferSyntaxUID = ExplicitVRLittleEndian
        ds = FileDataset(str(folder / f"IM{k:03d}.dcm"), {}, file_meta=meta, preamble=b"\0" * 128)
        ds.SOPClassUID = CTImageStorage
        ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
        ds.Modality = "CT"
        ds.SeriesInstanceUID = series
        ds.StudyInstanceUID = series
        ds.InstanceNumber = len(z_positions) - k  # deliberately not the z order
        ds.ImagePositionPatient = [0.0, 0.0, float(z_positions[k])]
        ds.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
        ds.PixelSpacing = [PIXEL_MM, PIXEL_MM]
        ds.SliceThickness = 3.0
        ds.Rows, ds.Columns = ROWS, COLS
        ds.BitsAllocated, ds.BitsStored, ds.HighBit = 16, 16, 15
        ds.PixelRepresentation = 1
        ds.SamplesPerPixel = 1
        ds.PhotometricInterpretation = "MONOCHROME2"
        ds.RescaleIntercept, ds.RescaleSlope = -1024, 1
        ds.PixelData = (hu[k] + 1024).astype(np.int16).tobytes()
        ds.save_as(folder / f"IM{k:03d}.dcm", enforce_file_format=True)


def roi(name, x0, y0, x1, y1, area_cm2=None):
    pts = [f"({x0 - 0.5}, {y0 - 0.5})", f"({x1 + 0.5}, {y0 - 0.5})", f"({x1 + 0.5}, {y1 + 0.5})", f"({x0 - 0.5}, {y1 + 0.5})"]
    n = (x1 - x0 + 1) * (y1 - y0 + 1)
    return {"Name": name, "Area": area_cm2 if area_cm2 is not None else n * PIXEL_MM ** 2 / 100, "Point_px": pts,
            "NumberOfPoints": 4}


@pytest.fixture
def coca(tmp_path):
    z = np.array([30.0, 33.0, 36.0, 39.0])  # ascending z = ImageIndex 0..3
    hu = np.full((4, ROWS, COLS), 0, np.int16)
    hu[1, 5:9, 20:26] = 400     # LAD lesion: rows 5-8, columns 20-25
    hu[3, 12:14, 3:5] = 250     # RCA lesion
    write_series(tmp_path / "gated" / "p001" / "series", hu, z)
    doc = {"Images": [
        {"ImageIndex": 1, "NumberOfROIs": 1, "ROIs": [roi("Left Anterior Descending Artery", 20, 5, 25, 8)]},
        {"ImageIndex": 3, "NumberOfROIs": 1, "ROIs": [roi("Right Coronary Artery", 3, 12, 4, 13)]},
    ]}
    (tmp_path / "xml").mkdir()
    with open(tmp_path / "xml" / "p001.xml", "wb") as fh:
        plistlib.dump(doc, fh)
    return tmp_path, hu


def test_round_trip_labels_and_scores(coca):
    import nibabel as nib

    root, hu = coca
    df = coca_gated_manifest(root / "gated", root / "xml", root / "out")
    row = df.iloc[0]
    assert row.patient_id == "p001" and row.n_rois == 2
    labels = np.asarray(nib.load(root / "out" / row.calcium_labels_path).dataobj).transpose(2, 1, 0)
    assert labels.shape == hu.shape
    assert np.array_equal(labels == 2, hu == 400) and np.array_equal(labels == 4, hu == 250)
    assert row.agatston_LAD == pytest.approx(24 * 0.25 * 4) and row.agatston_RCA == pytest.approx(4 * 0.25 * 2)
    assert (root / "out" / "manifest.csv").is_file()
    from riskfm.ct import read_ct

    assert np.array_equal(read_ct(root / "out" / row.ct_path).array, hu)


def test_area_disagreement_is_a_clear_error(coca):
    root, _ = coca
    doc = {"Images": [{"ImageIndex": 1, "ROIs": [roi("Left Circumflex Artery", 20, 5, 25, 8, area_cm2=0.5)]}]}
    with open(root / "xml" / "p001.xml", "wb") as fh:
        plistlib.dump(doc, fh)
    with pytest.raises(AdapterError, match=r"p001.xml: ImageIndex 1, ROI 'Left Circumflex Artery'.*Area is 0.5000"):
        coca_gated_manifest(root / "gated", root / "xml", root / "out")


def test_bad_xml_and_index_errors(tmp_path, coca):
    root, _ = coca
    bad = tmp_path / "bad.xml"
    with open(bad, "wb") as fh:
        plistlib.dump({"Images": [{"ImageIndex": 0, "ROIs": [{"Name": "Aorta", "Area": 0.1, "Point_px": ["(1, 1)"]}]}]}, fh)
    with pytest.raises(AdapterError, match="unknown ROI Name 'Aorta'"):
        read_coca_xml(bad)
    with open(root / "xml" / "p001.xml", "wb") as fh:
        plistlib.dump({"Images": [{"ImageIndex": 9, "ROIs": [roi("Right Coronary Artery", 3, 12, 4, 13)]}]}, fh)
    with pytest.raises(AdapterError, match="ImageIndex 9 .* outside the series of 4 slices"):
        coca_gated_manifest(root / "gated", root / "xml", root / "out")


def test_float_polygon_rasterises_by_pixel_centres():
    m = rasterise_polygon(np.array([[1.2, 1.2], [4.8, 1.2], [4.8, 3.6], [1.2, 3.6]]), (8, 8))
    assert m.sum() == 3 * 2 and m[2:4, 2:5].all()  # x 1.2..4.8 holds centres 2, 3, 4; y 1.2..3.6 rows 2, 3


def test_nongated_scores_xlsx(tmp_path):
    df = pd.DataFrame({"filename": ["a", "b"], "LCA": [0, 10], "LAD": [5, 20], "LCX": [0, 0], "RCA": [1, 70],
                       "total": [6, 100]})
    df.to_excel(tmp_path / "scores.xlsx", index=False)
    out = read_nongated_scores(tmp_path / "scores.xlsx")
    assert out["agatston"].tolist() == [6, 100] and out["agatston_LM"].tolist() == [0, 10]
    df.loc[1, "total"] = 50
    df.to_csv(tmp_path / "scores.csv", index=False)
    with pytest.raises(AdapterError, match="row 3 \\(b\\): total 50"):
        read_nongated_scores(tmp_path / "scores.csv")
