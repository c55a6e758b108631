"""riskfm.tables.read_table: the one reader of CSV / TSV / Parquet tables."""

import pandas as pd
import pytest

from riskfm.data.manifest import ManifestError, read_manifest_table
from riskfm.evaluate.run_metrics import PredictionsError, read_predictions
from riskfm.tables import TableError, read_table


def test_ids_stay_text_in_csv_tsv_and_parquet(tmp_path):
    (tmp_path / "m.csv").write_text("patient_id, age ,site\n007,61,01\n010,70,02\n")
    df = read_table(tmp_path / "m.csv", dtype={"site": str})
    assert df["patient_id"].tolist() == ["007", "010"] and df["site"].tolist() == ["01", "02"]
    assert list(df.columns) == ["patient_id", "age", "site"] and df["age"].dtype.kind == "i"
    (tmp_path / "m.TSV").write_text("patient_id\tage\n007\t61\n")
    assert read_table(tmp_path / "m.TSV")["patient_id"].tolist() == ["007"]
    pytest.importorskip("pyarrow")
    pd.DataFrame({"patient_id": [7, 8], "x": ["?", "a"]}).to_parquet(tmp_path / "m.parquet")
    df = read_table(tmp_path / "m.parquet", na_values=["?"])
    assert df["patient_id"].tolist() == ["7", "8"] and df["x"].isna().tolist() == [True, False]


def test_na_values(tmp_path):
    (tmp_path / "m.csv").write_text("patient_id,x\nA,?\nB,NA\nC,1\n")
    assert read_table(tmp_path / "m.csv", na_values=["?"])["x"].isna().tolist() == [True, True, False]


def test_errors_name_the_file(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"predictions file not found: .*nope\.csv"):
        read_table(tmp_path / "nope.csv", what="predictions file")
    (tmp_path / "m.xlsx").write_text("x")
    with pytest.raises(TableError, match=r"m\.xlsx: unknown manifest format '\.xlsx'"):
        read_table(tmp_path / "m.xlsx")
    (tmp_path / "empty.csv").write_text("")
    with pytest.raises(TableError, match=r"empty\.csv: cannot parse manifest"):
        read_table(tmp_path / "empty.csv")
    (tmp_path / "bad.csv").write_bytes(b'patient_id,x\n"A,1\n')
    with pytest.raises(TableError, match=r"bad\.csv: cannot parse"):
        read_table(tmp_path / "bad.csv")
    (tmp_path / "bad.parquet").write_text("not parquet")
    with pytest.raises(TableError, match=r"bad\.parquet: cannot parse"):
        read_table(tmp_path / "bad.parquet")


def test_callers_keep_their_own_errors(tmp_path):
    (tmp_path / "m.json").write_text("{}")
    with pytest.raises(ManifestError, match="unknown manifest format"):
        read_manifest_table(tmp_path / "m.json")
    with pytest.raises(PredictionsError, match="unknown predictions file format"):
        read_predictions(tmp_path / "m.json")
    (tmp_path / "empty.csv").write_text("")
    with pytest.raises(ManifestError, match="cannot parse manifest"):
        read_manifest_table(tmp_path / "empty.csv")


def test_ct_manifest_keeps_patient_ids_as_text(tmp_path):
    from riskfm.ct.cases import cases_from_manifest

    (tmp_path / "m.tsv").write_text("patient_id\tct_path\n007\tct/a.nii.gz\n008\t\n")
    cases = cases_from_manifest(tmp_path / "m.tsv")
    assert [c.patient_id for c in cases] == ["007"]
    assert cases[0].ct_path == (tmp_path / "ct" / "a.nii.gz").resolve()
    with pytest.raises(FileNotFoundError, match="manifest not found"):
        cases_from_manifest(tmp_path / "none.csv")
