"""One module per dataset, named by its key in params.yaml (`data.probe`, `subsets`).

Each module defines SOURCE, a pipeline.catalog.DatasetSource: its official files and how to read
them. Adding a dataset is adding a module here (and its display name in pipeline/names.py);
dvc.yaml's prepare stage already depends on pipeline/sources/<dataset>.py.
"""
from __future__ import annotations

import importlib
import pkgutil
from typing import TYPE_CHECKING

from pipeline.errors import PipelineError

if TYPE_CHECKING:  # the dataset modules import torchvision; listing them must stay cheap
    from pipeline.catalog import DatasetSource


def known() -> list[str]:
    return sorted(m.name for m in pkgutil.iter_modules(__path__) if not m.name.startswith("_"))


def get(name: str) -> DatasetSource:
    if name not in known():
        raise PipelineError(f"unknown dataset '{name}'; known datasets: {', '.join(known())}")
    return importlib.import_module(f"{__name__}.{name}").SOURCE
