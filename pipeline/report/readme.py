"""README sync: README.md shows reports/results.md between two markers; a test keeps them identical.

    python -m pipeline.report --sync-readme    rewrite README's results section from reports/results.md
    python -m pipeline.report --check          fail if it is out of date
"""
from __future__ import annotations

import argparse
from pathlib import Path

from pipeline import artifacts
from pipeline.core.atomic import atomic_path
from pipeline.core.errors import PipelineError

MARKER_START = "<!-- results:start -->"
MARKER_END = "<!-- results:end -->"
DEFAULT_README = Path("README.md")


def _split_readme(text: str, readme: Path) -> tuple[str, str]:
    """Text up to and including the start marker, and from the end marker on."""
    fix = f"add a line `{MARKER_START}` and, below it, a line `{MARKER_END}` to {readme}"
    if text.count(MARKER_START) != 1 or text.count(MARKER_END) != 1:
        raise PipelineError(f"{readme} needs exactly one {MARKER_START} and one {MARKER_END} marker; {fix}")
    start = text.index(MARKER_START) + len(MARKER_START)
    end = text.index(MARKER_END)
    if end < start:
        raise PipelineError(f"{readme} has {MARKER_END} before {MARKER_START}; {fix}")
    return text[:start], text[end:]


def _synced_text(readme: Path, results_md: Path) -> tuple[str, str]:
    """(current README text, README text with the results section replaced)."""
    if not readme.exists():
        raise PipelineError(f"{readme} not found; run from the repository root or pass --readme")
    if not results_md.exists():
        raise PipelineError(f"{results_md} not found; run `dvc repro report` first")
    text = readme.read_text()
    head, tail = _split_readme(text, readme)
    return text, f"{head}\n{results_md.read_text().strip()}\n{tail}"


def sync_readme(readme: Path, results_md: Path) -> bool:
    """Replace the README's results section with `results_md`; True if the README changed."""
    readme, results_md = Path(readme), Path(results_md)
    old, new = _synced_text(readme, results_md)
    if new == old:
        return False
    with atomic_path(readme) as tmp:
        tmp.write_text(new)
    return True


def readme_in_sync(readme: Path, results_md: Path) -> bool:
    """Whether the README's results section already equals `results_md`."""
    old, new = _synced_text(Path(readme), Path(results_md))
    return old == new


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="python -m pipeline.report",
                                     description="Copy reports/results.md into the README results section.")
    action = parser.add_mutually_exclusive_group(required=True)
    action.add_argument("--sync-readme", action="store_true", help="rewrite the README section")
    action.add_argument("--check", action="store_true", help="fail if the README section is out of date")
    parser.add_argument("--readme", type=Path, default=DEFAULT_README)
    parser.add_argument("--results-md", type=Path, default=artifacts.results_md())
    args = parser.parse_args(argv)
    if args.check:
        if not readme_in_sync(args.readme, args.results_md):
            raise PipelineError(f"{args.readme} results section differs from {args.results_md}; "
                                f"run `python -m pipeline.report --sync-readme`")
        print(f"{args.readme} is in sync with {args.results_md}")
        return
    changed = sync_readme(args.readme, args.results_md)
    print(f"{'updated' if changed else 'already up to date:'} {args.readme} from {args.results_md}")
