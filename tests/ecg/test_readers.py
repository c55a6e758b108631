"""The ECG reader registry (riskfm.ecg.readers) and the import graph of riskfm.ecg (no cycles)."""

from __future__ import annotations

import ast
import shutil
from pathlib import Path

import numpy as np
import pytest

from riskfm.ecg import ECG, STANDARD_LEADS, read_ecg, register_ecg_reader
from riskfm.ecg.io import (
    ECGFileNotFoundError,
    ECGFormatError,
    ecg_readers,
    ecg_source_problem,
    unregister_ecg_reader,
)
from riskfm.ecg.readers import BUILTIN_READERS, find_ecg_reader
from riskfm.ecg.wfdb_write import write_wfdb
from tests.ecg.test_formats import _signal, write_code15_part, write_hl7, write_muse

RISKFM = Path(__file__).resolve().parents[2] / "riskfm"


# ---------------------------------------------------------------------------------------------
# One file of every built-in format
# ---------------------------------------------------------------------------------------------


@pytest.fixture
def builtin_sources(tmp_path) -> dict[str, tuple[object, str]]:
    """reader name -> (path to pass to read_ecg, meta["format"] the reader writes)."""
    rng = np.random.default_rng(1)
    write_wfdb(tmp_path / "rec", rng.normal(0, 0.5, size=(12, 1000)), 500.0, list(STANDARD_LEADS))
    write_code15_part(tmp_path / "exams_part0.hdf5", [11, 42], n_real=1000)
    pydicom_data = pytest.importorskip("pydicom.data")
    dcm = tmp_path / "wave.dcm"
    shutil.copyfile(pydicom_data.get_testdata_file("waveform_ecg.dcm"), dcm)
    return {
        "hdf5": (f"{tmp_path / 'exams_part0.hdf5'}::42", "hdf5"),
        "wfdb": (tmp_path / "rec", "wfdb"),
        "dicom": (dcm, "dicom"),
        "muse": (write_muse(tmp_path / "muse.xml", _signal(n=500)), "muse_xml"),
        "hl7_aecg": (write_hl7(tmp_path / "aecg.xml", _signal(n=500)), "hl7_aecg"),
    }


def test_builtin_readers_in_order():
    assert [r.name for r in BUILTIN_READERS] == ["hdf5", "wfdb", "dicom", "muse", "hl7_aecg"]
    assert ecg_readers()[: len(BUILTIN_READERS)] == BUILTIN_READERS
    assert all(r.description for r in BUILTIN_READERS)


@pytest.mark.parametrize("name", ["hdf5", "wfdb", "dicom", "muse", "hl7_aecg"])
def test_read_ecg_dispatches_each_builtin_format_through_the_registry(builtin_sources, name):
    path, fmt = builtin_sources[name]
    assert find_ecg_reader(path).name == name
    original = next(r for r in ecg_readers() if r.name == name)
    reference = read_ecg(path)
    assert reference.meta["format"] == fmt and set(reference.leads) <= set(STANDARD_LEADS)

    # Swap the registered reader for a spy: read_ecg must call it (and nothing else) for this file.
    calls = []

    def spy(p, leads):
        calls.append((p, leads))
        return original.read(p, leads)

    register_ecg_reader(name, original.sniff, spy, replace=True)
    try:
        ecg = read_ecg(path, leads="all")
    finally:
        assert unregister_ecg_reader(name).read is spy
    assert calls == [(path, "all")]
    assert ecg.meta["format"] == fmt
    assert next(r for r in ecg_readers() if r.name == name) is original  # built-in restored
    np.testing.assert_array_equal(read_ecg(path).signal, reference.signal)


def test_wfdb_sniffed_from_header_signal_file_and_record_path(builtin_sources):
    record = builtin_sources["wfdb"][0]
    for path in (record, record.with_suffix(".hea"), record.with_suffix(".dat"), str(record)):
        assert find_ecg_reader(path).name == "wfdb", path


def test_dicom_sniffed_by_preamble_without_suffix(tmp_path, builtin_sources):
    plain = tmp_path / "waveform_without_suffix"
    shutil.copyfile(builtin_sources["dicom"][0], plain)
    assert find_ecg_reader(plain).name == "dicom"
    assert read_ecg(plain).meta["format"] == "dicom"


# ---------------------------------------------------------------------------------------------
# .xml: MUSE or HL7 aECG by content, not by name
# ---------------------------------------------------------------------------------------------


def test_xml_sniffing_picks_muse_or_hl7_by_content(tmp_path):
    counts = _signal(n=300)
    muse = write_muse(tmp_path / "aecg_export.xml", counts)           # MUSE content, misleading name
    hl7 = write_hl7(tmp_path / "RestingECG.xml", counts)              # HL7 content, misleading name
    muse_txt = write_muse(tmp_path / "muse_export.txt", counts)       # content decides, not the suffix
    assert find_ecg_reader(muse).name == "muse"
    assert find_ecg_reader(hl7).name == "hl7_aecg"
    assert find_ecg_reader(muse_txt).name == "muse"
    assert read_ecg(muse).meta["format"] == "muse_xml"
    assert read_ecg(hl7).meta["format"] == "hl7_aecg"
    np.testing.assert_allclose(read_ecg(muse_txt).signal, read_ecg(muse).signal)


def test_unknown_format_gives_the_clear_error_naming_the_file(tmp_path):
    junk = tmp_path / "tracing.xyz"
    junk.write_bytes(b"\x01" * 300)
    unknown_xml = tmp_path / "philips.xml"
    unknown_xml.write_text('<?xml version="1.0"?><restingecgdata/>')
    assert find_ecg_reader(junk) is None and find_ecg_reader(unknown_xml) is None
    with pytest.raises(ECGFormatError, match=r"tracing\.xyz: unrecognised ECG file format \(suffix '\.xyz'\); "
                                             r"supported: WFDB record .* HDF5 \('<file>\.hdf5::<exam_id>'\)$"):
        read_ecg(junk)
    with pytest.raises(ECGFormatError, match=r"philips\.xml: XML file is neither a GE MUSE <RestingECG> nor an "
                                             r"HL7 aECG <AnnotatedECG>$"):
        read_ecg(unknown_xml)


# ---------------------------------------------------------------------------------------------
# A user-registered reader
# ---------------------------------------------------------------------------------------------


def _write_fake(path: Path, signal: np.ndarray, fs: float) -> Path:
    """The ".fakeecg" format of these tests: a magic line, then an .npy of [fs, *signal rows]."""
    with path.open("wb") as handle:
        handle.write(b"FAKEECG\n")
        np.save(handle, np.vstack([np.full((1, signal.shape[1]), fs), signal]))
    return path


def _sniff_fake(path) -> bool:
    return str(path).lower().endswith(".fakeecg")


def _read_fake(path, leads) -> ECG:
    with Path(path).open("rb") as handle:
        assert handle.readline() == b"FAKEECG\n"
        data = np.load(handle)
    names = STANDARD_LEADS if leads == "standard" else (*STANDARD_LEADS[:-1], "vx")
    return ECG(signal=data[1:], fs=float(data[0, 0]), leads=names, meta={"source": str(path), "format": "fake"})


@pytest.fixture
def fake_reader():
    reader = register_ecg_reader("fake", _sniff_fake, _read_fake, description="test format")
    yield reader
    unregister_ecg_reader("fake")


def test_user_registered_reader_round_trips(tmp_path, fake_reader):
    truth = np.random.default_rng(3).normal(0, 0.4, size=(12, 750)).astype(np.float32)
    path = _write_fake(tmp_path / "exam.FakeECG", truth, 250.0)
    assert ecg_readers()[-1] is fake_reader and find_ecg_reader(path) is fake_reader
    assert ecg_source_problem(path) is None

    for p in (path, str(path)):
        ecg = read_ecg(p)
        assert ecg.leads == STANDARD_LEADS and ecg.fs == 250.0 and ecg.meta["format"] == "fake"
        np.testing.assert_array_equal(ecg.signal, truth)
    assert read_ecg(path, leads="all").leads[-1] == "vx"  # `leads` reaches the reader

    # The path rules still come first: a missing file is reported as such, not handed to the reader.
    with pytest.raises(ECGFileNotFoundError, match=r"missing\.fakeecg: no such file"):
        read_ecg(tmp_path / "missing.fakeecg")
    # ... and an unknown format's message lists the extra reader.
    (tmp_path / "x.bin").write_bytes(b"\x00" * 10)
    with pytest.raises(ECGFormatError, match=r"x\.bin: unrecognised ECG file format .*; also registered: fake$"):
        read_ecg(tmp_path / "x.bin")


def test_unregistered_reader_no_longer_reads(tmp_path):
    path = _write_fake(tmp_path / "exam.fakeecg", np.zeros((12, 10)), 100.0)
    register_ecg_reader("fake", _sniff_fake, _read_fake)
    assert read_ecg(path).n_samples == 10
    unregister_ecg_reader("fake")
    assert "fake" not in [r.name for r in ecg_readers()]
    with pytest.raises(ECGFormatError, match=r"exam\.fakeecg: unrecognised ECG file format \(suffix '\.fakeecg'\)"):
        read_ecg(path)


def test_user_readers_come_after_the_builtin_ones(tmp_path, builtin_sources):
    register_ecg_reader("greedy", lambda path: True, lambda path, leads: pytest.fail("greedy reader called"))
    try:
        for name, (path, fmt) in builtin_sources.items():
            assert find_ecg_reader(path).name == name
            assert read_ecg(path).meta["format"] == fmt
    finally:
        unregister_ecg_reader("greedy")


def test_registration_errors(tmp_path):
    with pytest.raises(ValueError, match="already registered"):
        register_ecg_reader("muse", _sniff_fake, _read_fake)
    with pytest.raises(ValueError, match="no reader named 'nope' to replace"):
        register_ecg_reader("nope", _sniff_fake, _read_fake, replace=True)
    with pytest.raises(ValueError, match="non-empty string"):
        register_ecg_reader("", _sniff_fake, _read_fake)
    with pytest.raises(TypeError, match="read must be callable"):
        register_ecg_reader("fake", _sniff_fake, "not a function")
    with pytest.raises(ValueError, match="built-in ECG reader"):
        unregister_ecg_reader("wfdb")
    with pytest.raises(KeyError, match="no ECG reader named 'nope'"):
        unregister_ecg_reader("nope")
    assert ecg_readers() == BUILTIN_READERS


def test_a_reader_returning_no_ecg_is_a_type_error(tmp_path):
    path = tmp_path / "exam.fakeecg"
    path.write_bytes(b"x")
    register_ecg_reader("fake", _sniff_fake, lambda p, leads: np.zeros((12, 10)))
    try:
        with pytest.raises(TypeError, match=r"reader 'fake' returned ndarray for .*exam\.fakeecg"):
            read_ecg(path)
    finally:
        unregister_ecg_reader("fake")


# ---------------------------------------------------------------------------------------------
# Import graph: no cycle among riskfm.ecg modules
# ---------------------------------------------------------------------------------------------


def _modules(package_dir: Path) -> dict[str, tuple[Path, bool]]:
    """Dotted module name -> (file, is a package ``__init__``) for every .py file under the package."""
    found = {}
    for file in sorted(package_dir.rglob("*.py")):
        parts = list(file.relative_to(package_dir.parent).with_suffix("").parts)
        is_package = parts[-1] == "__init__"
        found[".".join(parts[:-1] if is_package else parts)] = (file, is_package)
    return found


def import_graph(package_dir: Path) -> dict[str, set[str]]:
    """Module -> the modules of the same package it imports, from the source (``ast``), not by importing.

    Every ``import`` statement counts, wherever it is (module level, inside functions, under
    ``if TYPE_CHECKING``). ``from a.b import c`` is an edge to module ``a.b.c`` when that module
    exists, else to ``a.b`` (``c`` is a name defined there); relative imports are resolved. The
    implicit import of a parent package when a submodule is imported is not an edge (otherwise
    every package whose ``__init__`` re-exports a submodule would be a cycle).
    """
    modules = _modules(package_dir)
    graph: dict[str, set[str]] = {}
    for name, (file, is_package) in modules.items():
        package = name if is_package else name.rpartition(".")[0]
        edges: set[str] = set()
        for node in ast.walk(ast.parse(file.read_text(encoding="utf-8"), filename=str(file))):
            if isinstance(node, ast.Import):
                edges.update(alias.name for alias in node.names if alias.name in modules)
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    base = package.split(".")[: len(package.split(".")) - node.level + 1]
                    target = ".".join(base + ([node.module] if node.module else []))
                else:
                    target = node.module or ""
                for alias in node.names:
                    if f"{target}.{alias.name}" in modules:
                        edges.add(f"{target}.{alias.name}")
                    elif target in modules:
                        edges.add(target)
        graph[name] = edges - {name}
    return graph


def import_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (each holds at least one cycle)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[list[str]] = []

    def visit(node: str) -> None:  # Tarjan; the package graph is shallow enough for recursion
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(graph.get(node, ())):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                components.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return components


def _reachable(graph: dict[str, set[str]], start: str) -> set[str]:
    seen, todo = set(), [start]
    while todo:
        for nxt in graph.get(todo.pop(), ()):
            if nxt not in seen:
                seen.add(nxt)
                todo.append(nxt)
    return seen


def test_import_graph_builder_sees_lazy_and_relative_imports_and_finds_cycles(tmp_path):
    pkg = tmp_path / "pkg"
    (pkg / "sub").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "sub" / "__init__.py").write_text("from pkg.sub.b import thing\n")
    (pkg / "sub" / "a.py").write_text("def f():\n    from . import b\n    return b\n")
    (pkg / "sub" / "b.py").write_text("import pkg.c\nthing = 1\n")
    (pkg / "c.py").write_text("def g():\n    from .sub.a import f\n")
    graph = import_graph(pkg)
    assert graph == {"pkg": set(), "pkg.sub": {"pkg.sub.b"}, "pkg.sub.a": {"pkg.sub.b"},
                     "pkg.sub.b": {"pkg.c"}, "pkg.c": {"pkg.sub.a"}}
    assert import_cycles(graph) == [["pkg.c", "pkg.sub.a", "pkg.sub.b"]]


def test_no_import_cycle_among_riskfm_ecg_modules():
    graph = import_graph(RISKFM)
    assert "riskfm.ecg.preprocess" in graph["riskfm.ecg.assembly"]  # a lazy, in-function import is seen
    ecg_cycles = [c for c in import_cycles(graph) if any(m == "riskfm.ecg" or m.startswith("riskfm.ecg.") for m in c)]
    assert ecg_cycles == [], f"import cycles through riskfm.ecg: {ecg_cycles}"
    # Cycles elsewhere in riskfm (outside this test's scope) are not asserted on here.

    # The layering behind it: readers -> assembly/errors; registry -> readers; io -> registry.
    readers = ["riskfm.ecg.wfdb_read", "riskfm.ecg.dicom", "riskfm.ecg.muse", "riskfm.ecg.hl7", "riskfm.ecg.hdf5"]
    for reader in readers:
        assert "riskfm.ecg.assembly" in graph[reader], reader
        assert not {"riskfm.ecg.io", "riskfm.ecg.readers", "riskfm.ecg"} & _reachable(graph, reader), reader
    assert set(readers) <= graph["riskfm.ecg.readers"]
    assert "riskfm.ecg.readers" in graph["riskfm.ecg.io"]
    shared = _reachable(graph, "riskfm.ecg.assembly") | _reachable(graph, "riskfm.ecg.errors")
    assert not shared & {*readers, "riskfm.ecg.io", "riskfm.ecg.readers", "riskfm.ecg"}
