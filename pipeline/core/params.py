"""params.yaml becomes typed, validated config here and nowhere else.

Each dataclass is one block of params.yaml. params.yaml is the only home of values: the dataclasses
hold none, so a missing key is a one-line error naming it, never a hidden default. A stage loads
only the blocks it declares in dvc.yaml, so a param it does not declare cannot change its output.
"""
from __future__ import annotations

import copy
import dataclasses
import math
import types
import typing
from dataclasses import dataclass
from pathlib import Path

import yaml

from pipeline.core.errors import PipelineError
from pipeline.data import sources

PARAMS_FILE = "params.yaml"


@dataclass(frozen=True)
class DataConfig:
    pretrain: str
    probe: tuple[str, ...]
    image_size: int

    def validate(self) -> None:
        _require(self.image_size >= 8, "data.image_size", self.image_size, "at least 8 px")
        _require(len(self.probe) > 0, "data.probe", list(self.probe), "a non-empty list of datasets")
        _require(self.pretrain in self.probe, "data.pretrain", self.pretrain,
                 f"one of data.probe {list(self.probe)} (the pretraining set is also probed)")
        for name in self.probe:
            _require(name in sources.known(), "data.probe", list(self.probe),
                     f"a list of known datasets ({', '.join(sources.known())})")


@dataclass(frozen=True)
class ModelConfig:
    patch_size: int
    width: int
    depth: int
    heads: int
    mlp_ratio: float

    def validate(self) -> None:
        _require(self.patch_size >= 1, "model.patch_size", self.patch_size, ">= 1")
        _require(self.depth >= 1, "model.depth", self.depth, ">= 1")
        _require(self.heads >= 1 and self.width >= 1, "model.heads/width", (self.heads, self.width), ">= 1")
        _require(self.width % self.heads == 0, "model.width", self.width,
                 f"divisible by model.heads={self.heads}")
        _require(self.width % 4 == 0, "model.width", self.width, "divisible by 4 (2-D sin-cos positions)")


@dataclass(frozen=True)
class PredictorConfig:
    width: int
    depth: int
    heads: int

    def validate(self) -> None:
        _require(self.depth >= 1, "predictor.depth", self.depth, ">= 1")
        _require(self.heads >= 1 and self.width >= 1, "predictor.heads/width", (self.heads, self.width), ">= 1")
        _require(self.width % self.heads == 0, "predictor.width", self.width,
                 f"divisible by predictor.heads={self.heads}")
        _require(self.width % 4 == 0, "predictor.width", self.width, "divisible by 4 (2-D sin-cos positions)")


@dataclass(frozen=True)
class MaskConfig:
    num_targets: int
    target_scale: tuple[float, float]
    target_aspect: tuple[float, float]
    context_scale: tuple[float, float]
    min_context: int

    def validate(self) -> None:
        _require(self.num_targets >= 1, "masks.num_targets", self.num_targets, ">= 1")
        for name in ("target_scale", "target_aspect", "context_scale"):
            lo, hi = getattr(self, name)
            _require(0 < lo <= hi, f"masks.{name}", [lo, hi], "[low, high] with 0 < low <= high")
        _require(self.context_scale[1] <= 1.0, "masks.context_scale", list(self.context_scale), "at most 1.0")
        _require(self.min_context >= 1, "masks.min_context", self.min_context, ">= 1")


@dataclass(frozen=True)
class PretrainConfig:
    epochs: float
    batch_size: int
    lr: float
    start_lr: float
    final_lr: float
    warmup_epochs: float
    weight_decay: tuple[float, float]
    ema: tuple[float, float]
    loss: str
    crop_scale: tuple[float, float]
    hflip: bool
    device: str
    compile: str
    processes: int
    log_every: int
    checkpoint_every: int
    monitor_every: int
    keep_every_epochs: float

    def validate(self) -> None:
        _require(self.epochs > 0, "pretrain.epochs", self.epochs, "> 0")
        _require(self.batch_size >= 2, "pretrain.batch_size", self.batch_size, ">= 2")
        for name in ("lr", "start_lr", "final_lr"):
            _require(getattr(self, name) >= 0, f"pretrain.{name}", getattr(self, name), ">= 0")
        _require(0 <= self.warmup_epochs < self.epochs, "pretrain.warmup_epochs", self.warmup_epochs,
                 f"in [0, pretrain.epochs={self.epochs})")
        _require(all(w >= 0 for w in self.weight_decay), "pretrain.weight_decay", list(self.weight_decay),
                 "[start, end], both >= 0")
        _require(all(0 <= m <= 1 for m in self.ema), "pretrain.ema", list(self.ema),
                 "[start, end] momenta in [0, 1]")
        _require(self.loss in ("smooth_l1", "l2"), "pretrain.loss", self.loss, "'smooth_l1' or 'l2'")
        _require(0 < self.crop_scale[0] <= self.crop_scale[1] <= 1, "pretrain.crop_scale",
                 list(self.crop_scale), "[low, high] with 0 < low <= high <= 1")
        _require(self.device in ("auto", "cpu", "cuda") or self.device.startswith("cuda:"),
                 "pretrain.device", self.device, "'auto', 'cpu', 'cuda' or 'cuda:N'")
        _require(self.compile in ("auto", "on", "off"), "pretrain.compile", self.compile,
                 "'auto' (on CUDA only), 'on' or 'off'")
        _require(self.processes >= 1, "pretrain.processes", self.processes, ">= 1 (torchrun processes, one per GPU)")
        _require(self.processes == 1 or self.device in ("auto", "cuda", "cpu"), "pretrain.device", self.device,
                 "'auto', 'cuda' or 'cpu' when pretrain.processes > 1 (torchrun assigns each process its GPU)")
        for name in ("log_every", "checkpoint_every"):
            _require(getattr(self, name) >= 1, f"pretrain.{name}", getattr(self, name), ">= 1")
        _require(self.monitor_every >= 0, "pretrain.monitor_every", self.monitor_every, ">= 0 (0 = at the end only)")
        _require(self.keep_every_epochs >= 0, "pretrain.keep_every_epochs", self.keep_every_epochs, ">= 0 (0 = none)")


@dataclass(frozen=True)
class SparsityConfig:
    lambda_: float
    beta: float
    groups: int

    def validate(self) -> None:
        _require(self.lambda_ >= 0, "sparsity.lambda", self.lambda_, ">= 0")
        _require(self.beta >= 0, "sparsity.beta", self.beta, ">= 0")
        _require(self.groups >= 1, "sparsity.groups", self.groups, ">= 1")


@dataclass(frozen=True)
class ExtractConfig:
    batch_size: int
    layers: int

    def validate(self) -> None:
        _require(self.batch_size >= 1, "extract.batch_size", self.batch_size, ">= 1")
        _require(self.layers >= 1, "extract.layers", self.layers, ">= 1 (last N blocks, average-pooled)")


@dataclass(frozen=True)
class ProbeConfig:
    val_fraction: float
    epochs: int
    batch_size: int
    lrs: tuple[float, ...]
    weight_decays: tuple[float, ...]
    standardize: bool

    def validate(self) -> None:
        _require(0 < self.val_fraction < 1, "probe.val_fraction", self.val_fraction, "in (0, 1)")
        _require(self.epochs >= 1, "probe.epochs", self.epochs, ">= 1")
        _require(self.batch_size >= 1, "probe.batch_size", self.batch_size, ">= 1")
        _require(len(self.lrs) > 0 and all(v > 0 for v in self.lrs), "probe.lrs", list(self.lrs),
                 "a non-empty list of positive learning rates")
        _require(len(self.weight_decays) > 0 and all(v >= 0 for v in self.weight_decays),
                 "probe.weight_decays", list(self.weight_decays), "a non-empty list of values >= 0")


@dataclass(frozen=True)
class SubsetSpec:
    """Images kept per class of one dataset's splits (0 = all); a class with fewer keeps all it has."""
    train: int
    test: int


@dataclass(frozen=True)
class Subsets:
    """subsets.<dataset>.{train,test}, one entry per dataset."""
    per_dataset: dict[str, SubsetSpec]

    def for_dataset(self, name: str) -> SubsetSpec:
        if name not in self.per_dataset:
            raise PipelineError(f"params.yaml has no 'subsets.{name}' entry; add `{name}: {{train: 0, test: 0}}` "
                                f"under subsets (0 keeps every image)")
        return self.per_dataset[name]


def _subsets_from_dict(block) -> Subsets:
    if not isinstance(block, dict):
        raise PipelineError("params.yaml: 'subsets' must map dataset names to {train: N, test: M}")
    per_dataset = {}
    for name, spec in block.items():
        if not isinstance(spec, dict) or set(spec) != {"train", "test"}:
            raise PipelineError(f"params.yaml: subsets.{name} must be a mapping with keys train and test "
                                f"(images per class, 0 = all), got {spec!r}")
        counts = {split: _coerce(f"subsets.{name}.{split}", n, int) for split, n in spec.items()}
        for split, n in counts.items():
            _require(n >= 0, f"subsets.{name}.{split}", n, "an integer >= 0 (0 keeps all)")
        per_dataset[name] = SubsetSpec(**counts)
    return Subsets(per_dataset)


# params.yaml block name -> dataclass. `seed` is a plain int at the top level, `subsets` a mapping.
SECTIONS: dict[str, type] = {
    "data": DataConfig,
    "model": ModelConfig,
    "predictor": PredictorConfig,
    "masks": MaskConfig,
    "pretrain": PretrainConfig,
    "sparsity": SparsityConfig,
    "extract": ExtractConfig,
    "probe": ProbeConfig,
}
BLOCKS = ("seed", "subsets", *SECTIONS)
# params.yaml spells `lambda`, a Python keyword.
_RENAMES = {"lambda": "lambda_"}


class Params:
    """The params blocks a stage loaded, as typed attributes: `params.sparsity.lambda_`.

    A block the stage did not load is an error on access, not a silent default: every stage loads
    exactly the blocks dvc.yaml declares for it, so it cannot read a param DVC does not track.
    """
    seed: int
    data: DataConfig
    model: ModelConfig
    predictor: PredictorConfig
    masks: MaskConfig
    pretrain: PretrainConfig
    sparsity: SparsityConfig
    extract: ExtractConfig
    probe: ProbeConfig
    subsets: Subsets

    def __init__(self, blocks: dict):
        self._blocks = dict(blocks)

    def __getattr__(self, name: str):
        blocks = self.__dict__.get("_blocks", {})
        if name in blocks:
            return blocks[name]
        if name in BLOCKS:
            raise PipelineError(f"params block '{name}' was not loaded by this stage; declare it in the stage's "
                                f"params in dvc.yaml (for a method: its `params` in pipeline/methods/registry.yaml)")
        raise AttributeError(name)

    @property
    def loaded(self) -> tuple[str, ...]:
        return tuple(self._blocks)

    def flat(self) -> dict:
        """Every loaded param as params.yaml and `-S` spell it ({'pretrain.lr': 0.0005, 'seed': 0}), for logging."""
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
        if name == "seed":
            values["seed"] = _coerce("seed", raw["seed"], int)
        elif name == "subsets":
            values["subsets"] = _subsets_from_dict(raw["subsets"] or {})
        elif name in SECTIONS:
            values[name] = section_from_dict(name, raw[name])
        else:
            raise PipelineError(f"unknown params block '{name}'; known: {', '.join(BLOCKS)}")
    return Params(values)


def section_from_dict(name: str, block: dict | None):
    cls = SECTIONS[name]
    block = block or {}
    if not isinstance(block, dict):
        raise PipelineError(f"params.yaml: '{name}' must be a mapping of keys to values")
    hints = typing.get_type_hints(cls)
    known = {f.name for f in dataclasses.fields(cls)}
    missing = sorted(_spelled(k) for k in known - {_RENAMES.get(k, k) for k in block})
    if missing:
        raise PipelineError(f"params.yaml has no '{name}.{missing[0]}'; add it to the '{name}' block "
                            f"(see the committed params.yaml): code holds no defaults")
    kwargs = {}
    for key, value in block.items():
        attr = _RENAMES.get(key, key)
        if attr not in known:
            spelled = sorted(_spelled(k) for k in known)
            raise PipelineError(f"params.yaml: unknown key '{name}.{key}'; known keys: {', '.join(spelled)}")
        kwargs[attr] = _coerce(f"{name}.{key}", value, hints[attr])
    config = cls(**kwargs)
    config.validate()
    return config


def _spelled(attr: str) -> str:
    """An attribute's name as params.yaml spells it."""
    return {v: k for k, v in _RENAMES.items()}.get(attr, attr)


def as_dict(config) -> dict:
    """Config back to params.yaml spelling, for logging and fingerprints."""
    out = {}
    for f in dataclasses.fields(config):
        key = _spelled(f.name)
        value = getattr(config, f.name)
        out[key] = list(value) if isinstance(value, tuple) else value
    return out


def _coerce(key: str, value, hint):
    origin = typing.get_origin(hint)
    if origin is tuple:
        args = typing.get_args(hint)
        if not isinstance(value, (list, tuple)):
            raise PipelineError(f"params.yaml: {key} must be a list, got {value!r}")
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_coerce(key, v, args[0]) for v in value)
        if len(value) != len(args):
            raise PipelineError(f"params.yaml: {key} must be a list of {len(args)} values, got {value!r}")
        return tuple(_coerce(key, v, a) for v, a in zip(value, args))
    if origin in (typing.Union, types.UnionType):
        hint = next(a for a in typing.get_args(hint) if a is not type(None))
    if hint is bool:
        if not isinstance(value, bool):
            raise PipelineError(f"params.yaml: {key} must be true or false, got {value!r}")
        return value
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise PipelineError(f"params.yaml: {key} must be an integer, got {value!r}")
        return value
    if hint is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise PipelineError(f"params.yaml: {key} must be a number, got {value!r}")
        if not math.isfinite(value):
            raise PipelineError(f"params.yaml: {key} must be finite, got {value!r}")
        return float(value)
    if hint is str:
        if not isinstance(value, str):
            raise PipelineError(f"params.yaml: {key} must be a string, got {value!r}")
        return value
    return value


def _require(ok: bool, key: str, value, expected: str) -> None:
    if not ok:
        raise PipelineError(f"params.yaml: {key} = {value!r} is invalid; it must be {expected}")
