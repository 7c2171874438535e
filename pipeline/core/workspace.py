"""Where the real repository is while a stage runs: the one place that knows about `dvc exp run --temp`."""
from __future__ import annotations

import os
from pathlib import Path


def repo_root() -> Path:
    """The real repository: DVC_ROOT inside `dvc exp run --temp`/`--queue` (which run in a copy), else the
    working directory (stages run from the repository root)."""
    return Path(os.environ.get("DVC_ROOT") or os.getcwd())
