"""DVC stage `prepare@<dataset>`: official files -> data/prepared/<dataset>/ (see pipeline/datasets.py).

Usage, from the repository root: python stages/prepare.py <dataset>
Set SPARSEJEPA_DATA_MIRROR to a folder holding the official files to skip the network.
An interrupted run resumes where it stopped when re-run.
"""
from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # this checkout's code, also in `dvc exp --temp`

from pipeline import sources  # noqa: E402
from pipeline.cli import run_stage  # noqa: E402
from pipeline.config import load_params  # noqa: E402
from pipeline.datasets import prepare, raw_root  # noqa: E402
from pipeline.download import mirror_from_env  # noqa: E402
from pipeline.errors import PipelineError  # noqa: E402


def main(argv: list[str]) -> None:
    if len(argv) != 1:
        raise PipelineError(f"usage: python stages/prepare.py <dataset>, with <dataset> one of "
                            f"{', '.join(sources.known())}")
    name = argv[0]
    params = load_params(["data", "subsets"])
    prepare(name, raw_root(), Path("data/prepared") / name, params.data.image_size,
            params.subsets.for_dataset(name), mirror_from_env())


if __name__ == "__main__":
    run_stage(main)
