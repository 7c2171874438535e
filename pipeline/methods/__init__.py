"""The method registry: every fact about a method comes from registry.yaml beside this file.

A method is one model file here (a JEPA subclass overriding the hooks of pipeline/model/jepa.py)
plus one registry entry. dvc.yaml reads the same file, so the stages, the report, the gate and the
trainer can never disagree on which methods exist:

    from pipeline import methods
    method = methods.get("sparse_jepa")
    method.name, method.params, method.pretrained, method.encoders
    methods.baseline()                              # "jepa": what the report compares the others with
    methods.ladder_keys()                           # the ablation ladder's methods (ladder/dvc.yaml)
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

    @property
    def encoders(self) -> tuple[str, ...]:
        """The encoders a run of this method leaves to probe: a JEPA's EMA target encoder (I-JEPA's choice)
        and its context encoder (ahead at short budgets); an untrained reference, its one encoder."""
        return ("target", "context") if self.pretrained else ("target",)

    def build(self, params, image_size: int):
        """The model (a JEPA subclass) to pretrain, or the untrained reference's encoder."""
        module = importlib.import_module(f"{__name__}.{self.module}")
        return getattr(module, self.builder)(params, image_size)


@dataclass(frozen=True)
class Registry:
    baseline: str
    methods: dict[str, Method]         # the default pipeline's (dvc.yaml), in report order
    ladder: dict[str, Method]          # the ablation ladder's (ladder/dvc.yaml), in report order


def _entries(entries, path: Path, fix: str, section: str) -> dict[str, Method]:
    if not isinstance(entries, dict) or not entries:
        raise PipelineError(f"method registry {path} needs a non-empty `{section}:` mapping; {fix}")
    out = {}
    for key, entry in entries.items():
        where = f"method registry entry '{key}'"
        if not re.fullmatch(r"[a-z][a-z0-9_]*", str(key)):
            raise PipelineError(f"{where}: keys are lower-case identifiers (they name stages and folders); {fix}")
        if not isinstance(entry, dict) or set(entry) != set(FIELDS):
            raise PipelineError(f"{where} must have exactly the fields {', '.join(FIELDS)}; {fix}")
        params = entry["params"]
        if not isinstance(params, list) or "model" not in params or not set(params) <= set(BLOCKS):
            raise PipelineError(f"{where}: params must list params.yaml blocks including model "
                                f"(known: {', '.join(BLOCKS)}); {fix}")
        if not (path.parent / f"{entry['module']}.py").is_file():
            raise PipelineError(f"{where}: module '{entry['module']}' is not a file pipeline/methods/"
                                f"{entry['module']}.py; {fix}")
        if not isinstance(entry["pretrained"], bool):
            raise PipelineError(f"{where}: pretrained must be true or false; {fix}")
        out[key] = Method(key, str(entry["name"]), entry["module"], entry["build"], tuple(params), entry["pretrained"])
    return out


@lru_cache(maxsize=None)
def _load(path: Path) -> Registry:
    """The registry file, validated."""
    fix = f"fix {path} (its header says what each entry needs)"
    try:
        raw = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as e:
        raise PipelineError(f"method registry {path} is unreadable ({str(e).splitlines()[0]}); {fix}") from None
    raw = raw if isinstance(raw, dict) else {}
    out = _entries(raw.get("methods"), path, fix, "methods")
    if raw.get("baseline") not in out or not out[raw["baseline"]].pretrained:
        raise PipelineError(f"method registry {path}: `baseline` must name a pretrained method, got "
                            f"{raw.get('baseline')!r}; {fix}")
    ladder = _entries(raw["ladder"], path, fix, "ladder") if "ladder" in raw else {}
    for key in set(ladder) & set(out):
        if ladder[key] != out[key]:
            raise PipelineError(f"method registry {path}: ladder entry '{key}' differs from methods' (use a YAML "
                                f"alias, *{key}); {fix}")
    if ladder and raw["baseline"] not in ladder:
        raise PipelineError(f"method registry {path}: the ladder must include the baseline '{raw['baseline']}'; {fix}")
    return Registry(raw["baseline"], out, ladder)


def baseline(path: Path = REGISTRY) -> str:
    """The key of the method the others are compared with (registry `baseline`)."""
    return _load(path).baseline


def all_methods(path: Path = REGISTRY) -> list[Method]:
    """Every method of the default pipeline, in registry order (the report's row order)."""
    return list(_load(path).methods.values())


def keys(path: Path = REGISTRY) -> list[str]:
    return list(_load(path).methods)


def ladder(path: Path = REGISTRY) -> list[Method]:
    """Every method of the ablation ladder (ladder/dvc.yaml), in report order; empty without a ladder."""
    return list(_load(path).ladder.values())


def ladder_keys(path: Path = REGISTRY) -> list[str]:
    return list(_load(path).ladder)


def pipeline_keys(under: str | None, path: Path = REGISTRY) -> list[str]:
    """The methods of the pipeline whose stages run `--under <name>` (None: the default pipeline)."""
    if under is None:
        return keys(path)
    if under == "ladder":
        return ladder_keys(path)
    raise PipelineError(f"no pipeline '{under}' in the method registry (known: the default, ladder)")


def _known(path: Path) -> dict[str, Method]:
    registry = _load(path)
    return {**registry.methods, **registry.ladder}


def get(key: str, path: Path = REGISTRY) -> Method:
    methods = _known(path)
    if key not in methods:
        raise PipelineError(f"unknown method '{key}'; known: {', '.join(methods)} (pipeline/methods/registry.yaml)")
    return methods[key]


def display_name(key: str, path: Path = REGISTRY) -> str:
    """A method's display name; a key the registry no longer holds (an old record) shows as itself."""
    methods = _known(path)
    return methods[key].name if key in methods else key
