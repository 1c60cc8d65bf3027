import os
from pathlib import Path

import pytest

from dsassist import examples

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data" / "dev"


@pytest.fixture(scope="session")
def example():
    """Path of a shipped example dataset by name."""
    return examples.path


@pytest.fixture(scope="session")
def shared_data() -> Path:
    if not SHARED.is_dir():
        pytest.skip(f"shared evaluation data not found at {SHARED}")
    return SHARED


@pytest.fixture(scope="session", autouse=True)
def project_store(tmp_path_factory) -> Path:
    """Runs also write to a project store: the tests' own, not .dsassist/ in the checkout."""
    path = tmp_path_factory.mktemp("project") / "provenance.db"
    os.environ["DSASSIST_STORE"] = str(path)
    return path
