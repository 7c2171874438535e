"""Shared test settings: where the real offline data lives, and a repo-root fixture."""
import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
# The real FashionMNIST / CLEVR subset sits in ../shared/data beside a checkout (also beside CI's clone).
SHARED_DATA = Path(os.environ.get("SPARSEJEPA_DATA_MIRROR") or REPO.parent / "shared" / "data")


@pytest.fixture
def shared_data() -> Path:
    if not (SHARED_DATA / "FashionMNIST" / "raw").is_dir():
        pytest.skip(f"real FashionMNIST mirror not found at {SHARED_DATA}")
    return SHARED_DATA
