"""DVC stage `prepare@<dataset>`: official files -> data/prepared/<dataset>/ (see pipeline/datasets.py).

Usage, from the repository root: python stages/prepare.py <dataset>
Set SPARSEJEPA_DATA_MIRROR to a folder holding the official files to skip the network.
"""
from __future__ import annotations

import sys
from pathlib import Path

try:
    import pipeline  # noqa: F401  (installed in editable mode: pip install -e .)
except ModuleNotFoundError:
    # Run straight from a checkout without installing: the package sits in the repo root.
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pipeline.cli import run_stage
from pipeline.config import load_params
from pipeline.datasets import DATASETS, prepare
from pipeline.download import mirror_from_env
from pipeline.errors import PipelineError


def main(argv: list[str]) -> None:
    if len(argv) != 1:
        raise PipelineError(f"usage: python stages/prepare.py <dataset>, with <dataset> one of {', '.join(DATASETS)}")
    name = argv[0]
    params = load_params(["data", "subsets"])
    prepare(name, Path("data/raw"), Path("data/prepared") / name, params.data.image_size,
            params.subsets.for_dataset(name), mirror_from_env())


if __name__ == "__main__":
    run_stage(main)
