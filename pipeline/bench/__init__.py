"""Benchmarks that print figures: `python -m pipeline.bench.prepare`, `.pretrain`, `.probe`, `.masks`, `.recipe`."""
from __future__ import annotations

import re
from pathlib import Path

import yaml

from pipeline.core.atomic import atomic_path, write_json
from pipeline.core.errors import PipelineError


def key_values(pairs: list[str]) -> dict:
    """`key=value` arguments as -S-style overrides, each value read as YAML (so `0.1`, `[1, 2]`, `off` are typed)."""
    out = {}
    for pair in pairs:
        if "=" not in pair:
            raise PipelineError(f"'{pair}' is not key=value (a params.yaml key, e.g. sparsity.lambda=0.1)")
        key, value = pair.split("=", 1)
        out[key] = yaml.safe_load(value)
    return out


def take_option(argv: list[str], flag: str, example: str) -> tuple[str | None, list[str]]:
    """(the value after `flag` or None, argv without the two): `example` is how the flag is meant, for the error."""
    if flag not in argv:
        return None, argv
    at = argv.index(flag)
    if at + 1 >= len(argv):
        raise PipelineError(f"{flag} needs a value: {example}")
    return argv[at + 1], argv[:at] + argv[at + 2:]


def write_report(out_dir: Path, kind: str, report: dict, markdown: str, suffix: str = "") -> Path:
    """<out_dir>/<kind>-<machine><suffix>.json (the machine from report["device"], before any parenthesis) and
    the same name's .md (the table the README copies); the JSON's path."""
    slug = re.sub(r"[^a-z0-9]+", "-", report["device"].split("(")[0].lower()).strip("-")
    out = out_dir / f"{kind}-{slug}{suffix}.json"
    write_json(out, report)
    with atomic_path(out.with_suffix(".md")) as tmp:
        tmp.write_text(markdown)
    return out
