import os
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
# Under `pytest -n 2` on 2 cores each worker's torch would start one thread per core: 4 busy threads
# on 2 cores, and OpenMP's spin-waiting makes small ops many times slower. One thread per worker
# (set before torch is imported) keeps the cores busy without oversubscribing them.
if os.environ.get("PYTEST_XDIST_WORKER"):
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    os.environ.setdefault("MKL_NUM_THREADS", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

REPO = Path(__file__).resolve().parents[1]
FIXTURES = REPO.parent / "shared" / "fixtures"


@pytest.fixture(scope="session")
def fixtures_dir() -> Path:
    if not FIXTURES.is_dir():
        pytest.skip(f"shared fixtures not found at {FIXTURES} (a fresh clone has none)")
    return FIXTURES


@pytest.fixture(scope="session")
def tiny_cohort(tmp_path_factory):
    """A small synthetic cohort on disk, written once per test session (per xdist worker)."""
    from riskfm.synthetic import make_cohort

    return make_cohort(n=80, seed=3, out_dir=tmp_path_factory.mktemp("cohort"), n_workers=1)


@pytest.fixture(scope="session", autouse=True)
def _prepared_cache_in_tmp(tmp_path_factory):
    """Runs write their prepared cache under the session's tmp folder, never to ~/.cache."""
    old = os.environ.get("RISKFM_CACHE_DIR")
    os.environ["RISKFM_CACHE_DIR"] = str(tmp_path_factory.mktemp("prepared-cache"))
    yield
    if old is None:
        os.environ.pop("RISKFM_CACHE_DIR", None)
    else:
        os.environ["RISKFM_CACHE_DIR"] = old


@pytest.fixture(autouse=True)
def _progress_not_quiet():
    """Each test starts with progress output on: `riskfm --quiet ...` (CliRunner) silences the process."""
    from riskfm.progress import set_quiet

    set_quiet(False)
    yield
    set_quiet(False)
