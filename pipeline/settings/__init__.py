"""Named settings: sets of params.yaml overrides kept beside the default (quick) setting.

    python -m pipeline.settings longer     prints `-S key=value` arguments for `dvc exp run`, quoted for
                                           xargs: `python -m pipeline.settings longer | xargs dvc exp run -n longer`

A setting is `pipeline/settings/<name>.yaml`, a flat mapping of dotted params.yaml keys (as
`dvc exp run -S` spells them) to values; `overrides(name)` checks every key against params.yaml and
the overridden params against their validation, so a setting that would fail does so before DVC runs.
"""
from __future__ import annotations

import json
import shlex
from pathlib import Path

import yaml

from pipeline.core.errors import PipelineError
from pipeline.config.params import BLOCKS, PARAMS_FILE, params_from_dict, read_params_file, with_overrides

FOLDER = Path(__file__).parent


def known() -> list[str]:
    return sorted(p.stem for p in FOLDER.glob("*.yaml"))


def overrides(name: str, params_file: str | Path = PARAMS_FILE) -> dict:
    """The setting's {dotted key: value}, validated against params.yaml."""
    path = FOLDER / f"{name}.yaml"
    if not path.is_file():
        raise PipelineError(f"unknown setting '{name}'; known: {', '.join(known())} (pipeline/settings/)")
    values = yaml.safe_load(path.read_text()) or {}
    if not isinstance(values, dict):
        raise PipelineError(f"{path} must map dotted params.yaml keys to values")
    raw = with_overrides(read_params_file(params_file), values)  # fails on a key params.yaml lacks
    params_from_dict(raw, [b for b in BLOCKS if b in raw])
    return values


def cli_args(values: dict) -> list[str]:
    """`-S key=value` pairs; numbers, booleans, lists and mappings as JSON (YAML flow style, as DVC parses
    them), strings as they are."""
    out = []
    for key, value in values.items():
        out += ["-S", f"{key}={value if isinstance(value, str) else json.dumps(value)}"]
    return out


def main(argv: list[str]) -> None:
    if len(argv) != 1:
        raise PipelineError(f"usage: python -m pipeline.settings <name>   (known: {', '.join(known())})")
    print(" ".join(shlex.quote(a) for a in cli_args(overrides(argv[0]))))

