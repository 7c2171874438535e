"""The method registry: every fact about a method comes from registry.yaml beside this file.

A method is one model file here (a JEPA subclass overriding the hooks of pipeline/model/jepa.py)
plus one registry entry. dvc.yaml reads the same file, so the stages, the report, the gate and the
trainer can never disagree on which methods exist:

    from pipeline import methods
    method = methods.get("sparse_jepa")
    method.name, method.params, method.pretrained
    model = method.build(params, image_size)       # imports pipeline/methods/sparse_jepa.py
"""
from __future__ import annotations

import importlib
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import yaml

from pipeline.core.errors import PipelineError
from pipeline.core.params import BLOCKS

REGISTRY = Path(__file__).with_name("registry.yaml")
FIELDS = ("name", "module", "build", "params", "pretrained")


@dataclass(frozen=True)
class Method:
    key: str
    name: str          # display name
    module: str        # pipeline/methods/<module>.py
    builder: str       # the class or function in that module that builds it
    params: tuple[str, ...]  # params.yaml blocks it reads
    pretrained: bool   # False: an untrained reference encoder

    def build(self, params, image_size: int):
        """The model (a JEPA subclass) to pretrain, or the untrained reference's encoder."""
        module = importlib.import_module(f"{__name__}.{self.module}")
        return getattr(module, self.builder)(params, image_size)


@lru_cache(maxsize=None)
def _load(path: Path) -> dict[str, Method]:
    fix = f"fix {path} (its header says what each entry needs)"
    try:
        raw = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as e:
        raise PipelineError(f"method registry {path} is unreadable ({str(e).splitlines()[0]}); {fix}") from None
    entries = (raw or {}).get("methods") if isinstance(raw, dict) else None
    if not isinstance(entries, dict) or not entries:
        raise PipelineError(f"method registry {path} needs a non-empty `methods:` mapping; {fix}")
    out = {}
    for key, entry in entries.items():
        where = f"method registry entry '{key}'"
        if not re.fullmatch(r"[a-z][a-z0-9_]*", str(key)):
            raise PipelineError(f"{where}: keys are lower-case identifiers (they name stages and folders); {fix}")
        if not isinstance(entry, dict) or set(entry) != set(FIELDS):
            raise PipelineError(f"{where} must have exactly the fields {', '.join(FIELDS)}; {fix}")
        params = entry["params"]
        if not isinstance(params, list) or not {"seed", "model"} <= set(params) or not set(params) <= set(BLOCKS):
            raise PipelineError(f"{where}: params must list params.yaml blocks including seed and model "
                                f"(known: {', '.join(BLOCKS)}); {fix}")
        if not (path.parent / f"{entry['module']}.py").is_file():
            raise PipelineError(f"{where}: module '{entry['module']}' is not a file pipeline/methods/"
                                f"{entry['module']}.py; {fix}")
        if not isinstance(entry["pretrained"], bool):
            raise PipelineError(f"{where}: pretrained must be true or false; {fix}")
        out[key] = Method(key, str(entry["name"]), entry["module"], entry["build"], tuple(params), entry["pretrained"])
    return out


def all_methods(path: Path = REGISTRY) -> list[Method]:
    """Every method, in registry order (the report's row order)."""
    return list(_load(path).values())


def keys(path: Path = REGISTRY) -> list[str]:
    return list(_load(path))


def get(key: str, path: Path = REGISTRY) -> Method:
    methods = _load(path)
    if key not in methods:
        raise PipelineError(f"unknown method '{key}'; known: {', '.join(methods)} (pipeline/methods/registry.yaml)")
    return methods[key]


def display_name(key: str, path: Path = REGISTRY) -> str:
    """A method's display name; a key the registry no longer holds (an old record) shows as itself."""
    methods = _load(path)
    return methods[key].name if key in methods else key
