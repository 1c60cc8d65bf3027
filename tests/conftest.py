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
