"""Benchmarks that print figures: `python -m pipeline.bench.prepare`, `.pretrain`, `.probe`, `.masks`, `.recipe`."""
from __future__ import annotations

import re
from pathlib import Path

from pipeline.core.atomic import atomic_path, write_json


def write_report(out_dir: Path, kind: str, report: dict, markdown: str, suffix: str = "") -> Path:
    """<out_dir>/<kind>-<machine><suffix>.json (the machine from report["device"], before any parenthesis) and
    the same name's .md (the table the README copies); the JSON's path."""
    slug = re.sub(r"[^a-z0-9]+", "-", report["device"].split("(")[0].lower()).strip("-")
    out = out_dir / f"{kind}-{slug}{suffix}.json"
    write_json(out, report)
    with atomic_path(out.with_suffix(".md")) as tmp:
        tmp.write_text(markdown)
    return out
