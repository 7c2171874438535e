"""Type coercion and range checks for params values: each failure is one line naming the key and the fix."""
from __future__ import annotations

import math
import types
import typing

from pipeline.core.errors import PipelineError


def coerce(key: str, value, hint):
    origin = typing.get_origin(hint)
    if origin is tuple:
        args = typing.get_args(hint)
        if not isinstance(value, (list, tuple)):
            raise PipelineError(f"params.yaml: {key} must be a list, got {value!r}")
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(coerce(key, v, args[0]) for v in value)
        if len(value) != len(args):
            raise PipelineError(f"params.yaml: {key} must be a list of {len(args)} values, got {value!r}")
        return tuple(coerce(key, v, a) for v, a in zip(value, args))
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
        if isinstance(value, bool):
            # `dvc exp run -S pretrain.compile=off` writes `off` unquoted (DVC's YAML 1.2), which PyYAML (YAML 1.1)
            # reads back as a bool: a word-valued param takes it as the word it was.
            return "on" if value else "off"
        if not isinstance(value, str):
            raise PipelineError(f"params.yaml: {key} must be a string, got {value!r}")
        return value
    return value


def require(ok: bool, key: str, value, expected: str) -> None:
    if not ok:
        raise PipelineError(f"params.yaml: {key} = {value!r} is invalid; it must be {expected}")
