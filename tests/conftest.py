"""Shared test settings: where the real offline data lives, and no test ever reaching the network."""
import os
import urllib.error
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


class Offline:
    """Stands in for the network: records each URL asked for, then fails like a machine without internet."""

    def __init__(self) -> None:
        self.urls: list[str] = []

    def __call__(self, url, *args, **kwargs):
        self.urls.append(url)
        raise urllib.error.URLError("network disabled in tests")


@pytest.fixture(autouse=True)
def offline(monkeypatch) -> Offline:
    import torchvision.datasets.utils as tv_utils

    from pipeline.data import download

    fake = Offline()
    monkeypatch.setattr(download, "fetch_url", fake)
    # Belt and braces: torchvision's own download path must never reach the network either.
    monkeypatch.setattr(tv_utils, "_urlretrieve", fake)
    monkeypatch.setattr(tv_utils, "_get_redirect_url", fake)
    return fake


def repo_params(overrides: dict | None = None, sections=None):
    """Params as a stage sees them for one run: the committed params.yaml plus `-S`-style overrides
    ({"sparsity.lambda": 0.1}); every block unless `sections` names some. The run's seed is the
    override "seed" if given, else the first of `seeds`."""
    from pipeline.config.params import BLOCKS, load_params, read_params_file

    overrides = dict(overrides or {})
    seed = overrides.pop("seed", None)
    params = load_params(BLOCKS if sections is None else sections, REPO / "params.yaml", overrides)
    return params.for_seed(read_params_file(REPO / "params.yaml")["seeds"][0] if seed is None else seed)
