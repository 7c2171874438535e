"""params.yaml becomes typed, validated config here and nowhere else.

Each block of params.yaml is one dataclass in pipeline/config/<block>.py (its CONFIG), loaded by
name, so a stage runs the config code of exactly the blocks it declares in dvc.yaml. params.yaml is
the only home of values: the dataclasses hold none, so a missing key is a one-line error naming it,
never a hidden default. A stage loads only the blocks it declares, so a param it does not declare
cannot change its output.
"""
from __future__ import annotations

import copy
import dataclasses
import importlib
import typing
from pathlib import Path
from typing import TYPE_CHECKING

from pipeline.config.across import check_across
from pipeline.config.checks import coerce, require
from pipeline.core.errors import PipelineError
from pipeline.core.yamlfile import read_mapping

if TYPE_CHECKING:
    from pipeline.config.anticollapse import AntiCollapseConfig
    from pipeline.config.data import DataConfig
    from pipeline.config.extract import ExtractConfig
    from pipeline.config.masks import MaskConfig
    from pipeline.config.model import ModelConfig
    from pipeline.config.predictor import PredictorConfig
    from pipeline.config.pretrain import PretrainConfig
    from pipeline.config.probe import ProbeConfig
    from pipeline.config.report import ReportConfig
    from pipeline.config.sparsity import SparsityConfig
    from pipeline.config.subsets import Subsets

PARAMS_FILE = "params.yaml"

# params.yaml blocks held by a dataclass (pipeline/config/<block>.py); `seeds` is a plain list of ints at
# the top level, `subsets` a mapping of datasets.
SECTIONS = ("data", "model", "predictor", "masks", "pretrain", "sparsity", "anticollapse", "extract", "probe",
            "report")
BLOCKS = ("seeds", "subsets", *SECTIONS)


class Params:
    """The params blocks a stage loaded, as typed attributes: `params.sparsity.lambda_`.

    A block the stage did not load is an error on access, not a silent default: every stage loads
    exactly the blocks dvc.yaml declares for it, so it cannot read a param DVC does not track.
    `seed` is not a block but the one run a stage is doing now (`for_seed`), one of `seeds`.
    """
    seed: int
    seeds: tuple[int, ...]
    data: DataConfig
    model: ModelConfig
    predictor: PredictorConfig
    masks: MaskConfig
    pretrain: PretrainConfig
    sparsity: SparsityConfig
    anticollapse: AntiCollapseConfig
    extract: ExtractConfig
    probe: ProbeConfig
    report: ReportConfig
    subsets: Subsets

    def __init__(self, blocks: dict):
        self._blocks = dict(blocks)

    def __getattr__(self, name: str):
        blocks = self.__dict__.get("_blocks", {})
        if name in blocks:
            return blocks[name]
        if name == "seed":
            raise PipelineError("no run seed chosen: the stage must call Params.for_seed(seed) with one of `seeds`")
        if name in BLOCKS:
            raise PipelineError(f"params block '{name}' was not loaded by this stage; declare it in the stage's "
                                f"params in dvc.yaml (for a method: its `params` in pipeline/methods/registry.yaml)")
        raise AttributeError(name)

    @property
    def loaded(self) -> tuple[str, ...]:
        return tuple(k for k in self._blocks if k != "seed")

    def for_seed(self, seed: int) -> "Params":
        """These params for one run: `seed` set (the model init, data order, crops, masks, validation split)."""
        if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
            raise PipelineError(f"seed {seed!r} is invalid; seeds are integers >= 0 (params.yaml `seeds`)")
        return Params({**self._blocks, "seed": seed})

    def flat(self) -> dict:
        """Every loaded param as params.yaml and `-S` spell it ({'pretrain.lr': 0.0005, 'seed': 0}), for logging
        (the run's seed, not the list of seeds: a run's record must not change when a seed is added)."""
        out = {}
        for name, value in self._blocks.items():
            if name == "seed":
                out["seed"] = value
            elif name in SECTIONS:
                out.update({f"{name}.{k}": v for k, v in as_dict(value).items()})
        return out


def load_params(sections: typing.Iterable[str], path: str | Path = PARAMS_FILE,
                overrides: dict | None = None) -> Params:
    """Read the named blocks of params.yaml into validated config; `overrides` are `-S`-style
    {"sparsity.lambda": 0.1} values applied first (tests and benchmarks use them)."""
    return params_from_dict(with_overrides(read_params_file(path), overrides or {}), sections)


def read_params_file(path: str | Path = PARAMS_FILE) -> dict:
    return read_mapping(path)


def with_overrides(raw: dict, overrides: dict) -> dict:
    """A copy of `raw` with dotted keys set, as `dvc exp run -S key=value` does; the key must exist."""
    out = copy.deepcopy(raw)
    for dotted, value in overrides.items():
        *parents, leaf = dotted.split(".")
        node = out
        for i, part in enumerate(parents):
            if not isinstance(node.get(part), dict):
                raise PipelineError(f"cannot override '{dotted}': params.yaml has no block "
                                    f"'{'.'.join(parents[:i + 1])}'")
            node = node[part]
        if leaf not in node:
            raise PipelineError(f"cannot override '{dotted}': params.yaml has no such key")
        node[leaf] = value
    return out


def params_from_dict(raw: dict, sections: typing.Iterable[str]) -> Params:
    values = {}
    for name in sections:
        if name not in raw:
            raise PipelineError(f"params.yaml has no '{name}' block; add it (see the committed params.yaml)")
        if name == "seeds":
            values["seeds"] = seeds_from_raw(raw["seeds"])
        elif name == "subsets":
            values["subsets"] = importlib.import_module("pipeline.config.subsets").from_raw(raw["subsets"] or {})
        elif name in SECTIONS:
            values[name] = section_from_dict(name, raw[name])
        else:
            raise PipelineError(f"unknown params block '{name}'; known: {', '.join(BLOCKS)}")
    check_across(values)
    return Params(values)


def seeds_from_raw(value) -> tuple[int, ...]:
    seeds = coerce("seeds", value, tuple[int, ...])
    require(len(seeds) >= 1 and len(set(seeds)) == len(seeds) and min(seeds) >= 0, "seeds", list(seeds),
            "a non-empty list of distinct integers >= 0")
    return seeds


def config_class(name: str) -> type:
    """The dataclass of params block `name`, imported only when a stage loads that block."""
    return importlib.import_module(f"pipeline.config.{name}").CONFIG


def section_from_dict(name: str, block: dict | None):
    cls = config_class(name)
    block = block or {}
    if not isinstance(block, dict):
        raise PipelineError(f"params.yaml: '{name}' must be a mapping of keys to values")
    hints = typing.get_type_hints(cls)
    attr_of = {spelled(cls, f.name): f.name for f in dataclasses.fields(cls)}
    missing = sorted(set(attr_of) - set(block))
    if missing:
        raise PipelineError(f"params.yaml has no '{name}.{missing[0]}'; add it to the '{name}' block "
                            f"(see the committed params.yaml): code holds no defaults")
    kwargs = {}
    for key, value in block.items():
        if key not in attr_of:
            raise PipelineError(f"params.yaml: unknown key '{name}.{key}'; known keys: {', '.join(sorted(attr_of))}")
        kwargs[attr_of[key]] = coerce(f"{name}.{key}", value, hints[attr_of[key]])
    config = cls(**kwargs)
    config.validate()
    return config


def spelled(cls, attr: str) -> str:
    """An attribute's name as params.yaml spells it: a block whose key is a Python keyword maps it in its
    class's SPELLED ({"lambda_": "lambda"})."""
    return getattr(cls, "SPELLED", {}).get(attr, attr)


def as_dict(config) -> dict:
    """Config back to params.yaml spelling, for logging and fingerprints."""
    out = {}
    for f in dataclasses.fields(config):
        key = spelled(type(config), f.name)
        value = getattr(config, f.name)
        out[key] = list(value) if isinstance(value, tuple) else value
    return out
