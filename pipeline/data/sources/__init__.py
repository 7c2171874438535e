"""One module per dataset, named by its key in params.yaml (`data.probe`, `subsets`).

Each module defines SOURCE, a pipeline.data.catalog.DatasetSource: its official files and how to read
them, and NAME, its display name (recorded in meta.json, so every later artefact carries it). Adding
a dataset is adding a module here and its `subsets` entry in params.yaml; dvc.yaml's prepare stage
already depends on pipeline/data/sources/<dataset>.py.
"""
from __future__ import annotations

import importlib
import pkgutil
from typing import TYPE_CHECKING

from pipeline.core.errors import PipelineError

if TYPE_CHECKING:  # the dataset modules import torchvision; listing them must stay cheap
    from pipeline.data.catalog import DatasetSource


def known() -> list[str]:
    return sorted(m.name for m in pkgutil.iter_modules(__path__) if not m.name.startswith("_"))


def get(name: str) -> DatasetSource:
    if name not in known():
        raise PipelineError(f"unknown dataset '{name}'; known datasets: {', '.join(known())}")
    return importlib.import_module(f"{__name__}.{name}").SOURCE
