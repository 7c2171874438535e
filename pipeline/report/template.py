"""A Markdown template of named blocks (string.Template placeholders), filled block by block.

The file is a sequence of blocks, each opened by a line `%% <name>`; a line starting `%%#` is a comment.
Within a block, paragraphs are separated by blank lines and a paragraph's lines are one line of the
output (joined with spaces), so prose can be wrapped in the template. A placeholder ($name) alone in a
paragraph may fill several lines (a table, a list). `fill` renders each block with its values: a mapping
once, a list of mappings once per mapping, and None (or an empty list) leaves the block out; the blocks,
in the template's order, are joined by blank lines.
"""
from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path
from string import Template
from typing import Mapping, Sequence, Union

from pipeline.core.errors import PipelineError

Values = Union[Mapping[str, object], Sequence[Mapping[str, object]], None]
_OPEN = re.compile(r"%% ([a-z_]+)\s*")


@lru_cache(maxsize=None)
def load(path: Path) -> dict[str, Template]:
    """{block name: its template}, in the file's order."""
    blocks: dict[str, list[str]] = {}
    current = None
    for line in Path(path).read_text().splitlines():
        if line.startswith("%%#"):
            continue
        opened = _OPEN.fullmatch(line)
        if opened:
            current = opened.group(1)
            blocks[current] = []
        elif line.startswith("%%"):
            raise PipelineError(f"{path}: a block opens with `%% <name>` (lower case), got {line!r}")
        elif current is None:
            if line.strip():
                raise PipelineError(f"{path}: text before the first `%% <name>` block: {line!r}")
        else:
            blocks[current].append(line)
    return {name: Template(_unwrap(lines)) for name, lines in blocks.items()}


def _unwrap(lines: list[str]) -> str:
    paragraphs, current = [], []
    for line in [*lines, ""]:
        if line.strip():
            current.append(line.strip())
        elif current:
            paragraphs.append(" ".join(current))
            current = []
    return "\n\n".join(paragraphs)


def fill(path: Path, values: Mapping[str, Values]) -> str:
    """The filled template; every block needs an entry in `values` (None to leave it out)."""
    blocks = load(Path(path))
    if set(values) != set(blocks):
        raise PipelineError(f"{path}: blocks {sorted(blocks)} but values for {sorted(values)}")
    out = []
    for name, template in blocks.items():
        given = values[name]
        for mapping in ([] if given is None else [given] if isinstance(given, Mapping) else given):
            try:
                out.append(template.substitute({k: str(v) for k, v in mapping.items()}))
            except (KeyError, ValueError) as e:
                raise PipelineError(f"{path}: block '{name}' could not be filled ({type(e).__name__}: {e})") from None
    return "\n\n".join(out) + "\n"
