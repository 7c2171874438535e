"""Reading a YAML file of blocks (params.yaml) with one-line errors: the config loader and the launcher share it."""
from __future__ import annotations

from pathlib import Path

import yaml

from pipeline.core.errors import PipelineError


def read_mapping(path: str | Path) -> dict:
    """The file's top-level mapping; a missing file, invalid YAML or another top level is one line naming it."""
    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text()) or {}
    except FileNotFoundError:
        raise PipelineError(f"{path} not found; run stages from the repository root") from None
    except yaml.YAMLError as e:
        raise PipelineError(f"{path} is not valid YAML ({str(e).splitlines()[0]}); fix the file") from None
    if not isinstance(raw, dict):
        raise PipelineError(f"{path} must be a mapping of params blocks; see the committed params.yaml")
    return raw
