"""The method registry: every fact about a method comes from registry.yaml beside this file.

A method is one file here (its modules and the hooks of pipeline/methods/jepa.py it overrides) plus one
registry entry; a variant that only fixes params is an entry alone. `python -m pipeline.dag` writes
dvc.yaml from the same file, so the stages, the report, the gate and the trainer can never disagree on
which methods exist:

    from pipeline import methods
    method = methods.get("sparse_jepa")
    method.name, method.params, method.pretrained, method.encoders, method.fixed, method.goals
    methods.baseline()                              # "jepa": what the report compares the others with
    methods.pipeline_keys("ladder")                 # the ablation ladder's methods (ladder/dvc.yaml)
    params = method.load_params()                   # its params blocks, with its fixed values set
    model = method.build(params, image_size)        # imports pipeline/methods/sparse_jepa.py
"""
from __future__ import annotations

import importlib
import re
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml

from pipeline.config.extract import ENCODERS
from pipeline.config.params import BLOCKS, PARAMS_FILE, Params, load_params
from pipeline.core.errors import PipelineError

REGISTRY = Path(__file__).with_name("registry.yaml")
REQUIRED = ("name", "module", "build", "params", "pretrained")
OPTIONAL = ("fixed", "paper_top1", "facts", "goals", "figures", "sweep")
FIGURES = ("column_norms", "groups")  # per-method figures the report can draw (pipeline/report/figures.py)
# The pipelines the registry describes: the default (dvc.yaml, section `methods`), the ablation ladder and the
# anti-collapse bases, and the standard CPU setting's.
PIPELINES = {None: "methods", "ladder": "ladder", "bases": "bases", "standard": "standard"}


@dataclass(frozen=True)
class Fact:
    """A scalar of the method's pretraining summary the report shows."""
    label: str
    format: str


@dataclass(frozen=True)
class Goal:
    """The bounds the report holds a summary fact to: at least one, at most another, or both (a range); each
    a params.yaml `report` key."""
    fact: str
    at_least: str | None  # e.g. "report.min_zero_fraction"
    at_most: str | None   # e.g. "report.max_zero_fraction"
    says: str          # the fact's text, with {value}
    bound: str         # the bounds' format, e.g. "{:.0%}"

    def met(self, value: float, low: float | None, high: float | None) -> bool:
        return (low is None or value >= low) and (high is None or value <= high)


@dataclass(frozen=True)
class Method:
    key: str
    name: str          # display name
    module: str        # pipeline/methods/<module>.py
    builder: str       # the class or function in that module that builds it
    params: tuple[str, ...]  # params.yaml blocks it reads
    pretrained: bool   # False: an untrained reference encoder
    fixed: dict[str, Any] = field(default_factory=dict)  # {"sparsity.lambda": 0.0}: set whatever params.yaml says
    paper_top1: dict[str, float] = field(default_factory=dict)
    facts: dict[str, Fact] = field(default_factory=dict)
    goals: tuple[Goal, ...] = ()
    figures: tuple[str, ...] = ()
    sweep: str | None = None

    @property
    def encoders(self) -> tuple[str, ...]:
        """The encoders a run of this method leaves to probe: a JEPA's EMA target encoder (I-JEPA's choice)
        and its context encoder (ahead at short budgets); an untrained reference, its one encoder."""
        return ENCODERS if self.pretrained else ENCODERS[:1]

    def load_params(self, path: str | Path = PARAMS_FILE, overrides: dict | None = None) -> Params:
        """`seeds` and the blocks this method reads, with its fixed values set (and validated with the rest)."""
        return load_params(["seeds", *self.params], path, {**(overrides or {}), **self.fixed})

    def build(self, params: Params, image_size: int):
        """The model (a JEPA subclass) to pretrain, or the untrained reference's encoder."""
        module = importlib.import_module(f"{__name__}.{self.module}")
        return getattr(module, self.builder)(params, image_size)


@dataclass(frozen=True)
class Registry:
    baseline: str
    pipelines: dict[str | None, dict[str, Method]]  # per pipeline (None: the default), its methods in report order


def _flatten(fixed: dict, prefix: str = "") -> dict[str, Any]:
    out = {}
    for key, value in fixed.items():
        dotted = f"{prefix}{key}"
        out.update(_flatten(value, f"{dotted}.") if isinstance(value, dict) else {dotted: value})
    return out


def _goal(raw, where: str, fix: str) -> Goal:
    bounds = [k for k in ("at_least", "at_most") if k in (raw if isinstance(raw, dict) else {})]
    if not isinstance(raw, dict) or not bounds or set(raw) != {"fact", *bounds, "says", "bound"}:
        raise PipelineError(f"{where}: each goal is {{fact, at_least and/or at_most, says, bound}}; {fix}")
    if not all(str(raw[b]).startswith("report.") for b in bounds):
        raise PipelineError(f"{where}: a goal's bound names a params.yaml `report` key (report.<name>); {fix}")
    return Goal(raw["fact"], raw.get("at_least"), raw.get("at_most"), raw["says"], raw["bound"])


def _method(key, entry, path: Path, fix: str) -> Method:
    where = f"method registry entry '{key}'"
    if not re.fullmatch(r"[a-z][a-z0-9_]*", str(key)):
        raise PipelineError(f"{where}: keys are lower-case identifiers (they name stages and folders); {fix}")
    if not isinstance(entry, dict) or not set(REQUIRED) <= set(entry) <= set(REQUIRED + OPTIONAL):
        raise PipelineError(f"{where} must have the fields {', '.join(REQUIRED)} and may have "
                            f"{', '.join(OPTIONAL)}; {fix}")
    params = entry["params"]
    if not isinstance(params, list) or "model" not in params or not set(params) <= set(BLOCKS):
        raise PipelineError(f"{where}: params must list params.yaml blocks including model "
                            f"(known: {', '.join(BLOCKS)}); {fix}")
    if not (path.parent / f"{entry['module']}.py").is_file():
        raise PipelineError(f"{where}: module '{entry['module']}' is not a file pipeline/methods/"
                            f"{entry['module']}.py; {fix}")
    if not isinstance(entry["pretrained"], bool):
        raise PipelineError(f"{where}: pretrained must be true or false; {fix}")
    fixed = _flatten(entry.get("fixed") or {})
    if any(k.split(".")[0] not in params for k in fixed):
        raise PipelineError(f"{where}: fixed values must be of blocks the method reads ({', '.join(params)}); {fix}")
    facts = {k: Fact(str(v["label"]), str(v["format"])) for k, v in (entry.get("facts") or {}).items()}
    figures = tuple(entry.get("figures") or ())
    if not set(figures) <= set(FIGURES):
        raise PipelineError(f"{where}: figures must be among {', '.join(FIGURES)}; {fix}")
    sweep = entry.get("sweep")
    if sweep is not None and (str(sweep).split(".")[0] not in params or str(sweep) in fixed):
        raise PipelineError(f"{where}: sweep must be a param of a block the method reads and does not fix; {fix}")
    return Method(key, str(entry["name"]), entry["module"], entry["build"], tuple(params), entry["pretrained"],
                  fixed, {str(d): float(v) for d, v in (entry.get("paper_top1") or {}).items()}, facts,
                  tuple(_goal(g, where, fix) for g in entry.get("goals") or ()), figures, sweep)


@lru_cache(maxsize=None)
def _load(path: Path) -> Registry:
    """The registry file, validated."""
    fix = f"fix {path} (its header says what each entry needs)"
    try:
        raw = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as e:
        raise PipelineError(f"method registry {path} is unreadable ({str(e).splitlines()[0]}); {fix}") from None
    raw = raw if isinstance(raw, dict) else {}
    pipelines = {}
    for under, section in PIPELINES.items():
        entries = raw.get(section)
        if entries is None and under is not None:
            continue
        if not isinstance(entries, dict) or not entries:
            raise PipelineError(f"method registry {path} needs a non-empty `{section}:` mapping; {fix}")
        pipelines[under] = {key: _method(key, entry, path, fix) for key, entry in entries.items()}
    default = pipelines[None]
    if raw.get("baseline") not in default or not default[raw["baseline"]].pretrained:
        raise PipelineError(f"method registry {path}: `baseline` must name a pretrained method, got "
                            f"{raw.get('baseline')!r}; {fix}")
    for under, found in pipelines.items():
        for key in set(found) & set(default):
            if found[key] != default[key]:
                raise PipelineError(f"method registry {path}: {PIPELINES[under]} entry '{key}' differs from "
                                    f"methods' (use a YAML alias, *{key}); {fix}")
        if raw["baseline"] not in found:
            raise PipelineError(f"method registry {path}: {PIPELINES[under]} must include the baseline "
                                f"'{raw['baseline']}'; {fix}")
    return Registry(raw["baseline"], pipelines)


def baseline(path: Path = REGISTRY) -> str:
    """The key of the method the others are compared with (registry `baseline`)."""
    return _load(path).baseline


def pipelines(path: Path = REGISTRY) -> list[str | None]:
    """The pipelines the registry describes: None (the default, dvc.yaml), then e.g. "ladder" (ladder/dvc.yaml)."""
    return list(_load(path).pipelines)


def section(under: str | None) -> str:
    """The registry section that lists a pipeline's methods."""
    return PIPELINES[under]


def pipeline_methods(under: str | None = None, path: Path = REGISTRY) -> list[Method]:
    """The methods of the pipeline whose stages run `--under <name>` (None: the default), in report order."""
    found = _load(path).pipelines
    if under not in found:
        raise PipelineError(f"no pipeline '{under}' in the method registry (known: the default, "
                            f"{', '.join(str(u) for u in found if u)})")
    return list(found[under].values())


def pipeline_keys(under: str | None = None, path: Path = REGISTRY) -> list[str]:
    return [m.key for m in pipeline_methods(under, path)]


def all_methods(path: Path = REGISTRY) -> list[Method]:
    """Every method of the default pipeline, in registry order (the report's row order)."""
    return pipeline_methods(None, path)


def keys(path: Path = REGISTRY) -> list[str]:
    return pipeline_keys(None, path)


def _known(path: Path) -> dict[str, Method]:
    out: dict[str, Method] = {}
    for found in _load(path).pipelines.values():
        out.update(found)
    return out


def get(key: str, path: Path = REGISTRY) -> Method:
    methods = _known(path)
    if key not in methods:
        raise PipelineError(f"unknown method '{key}'; known: {', '.join(methods)} (pipeline/methods/registry.yaml)")
    return methods[key]


def display_name(key: str, path: Path = REGISTRY) -> str:
    """A method's display name; a key the registry no longer holds (an old record) shows as itself."""
    methods = _known(path)
    return methods[key].name if key in methods else key


def swept(path: Path = REGISTRY) -> list[Method]:
    """The default pipeline's methods that name a param their sweep varies."""
    return [m for m in all_methods(path) if m.sweep]
