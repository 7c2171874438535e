"""README sync: README.md shows reports/results.md between two markers, and each of SECTIONS' reports between
markers of its own name; a test keeps them identical.

    python -m pipeline.report --sync-readme    rewrite README's sections from their reports
    python -m pipeline.report --check          fail if one is out of date
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
# Other README sections copied from a committed report: {marker name: report}, each written by its own command.
SECTIONS = {
    "masks": Path("reports/benchmarks/masks.md"),  # python -m pipeline.bench.masks
    "validation": Path("reports/recipe/validation.md"),  # python -m pipeline.bench.recipe_table
}


def markers(name: str) -> tuple[str, str]:
    return f"<!-- {name}:start -->", f"<!-- {name}:end -->"


def _split_readme(text: str, readme: Path, section: str) -> tuple[str, str]:
    """Text up to and including the section's start marker, and from its end marker on."""
    start_marker, end_marker = markers(section)
    fix = f"add a line `{start_marker}` and, below it, a line `{end_marker}` to {readme}"
    if text.count(start_marker) != 1 or text.count(end_marker) != 1:
        raise PipelineError(f"{readme} needs exactly one {start_marker} and one {end_marker} marker; {fix}")
    start = text.index(start_marker) + len(start_marker)
    end = text.index(end_marker)
    if end < start:
        raise PipelineError(f"{readme} has {end_marker} before {start_marker}; {fix}")
    return text[:start], text[end:]


def _synced_text(readme: Path, report: Path, section: str = "results") -> tuple[str, str]:
    """(current README text, README text with the section replaced by the report)."""
    if not readme.exists():
        raise PipelineError(f"{readme} not found; run from the repository root or pass --readme")
    if not report.exists():
        made_by = "run `dvc repro report` first" if section == "results" else f"make it (see {__name__}.SECTIONS)"
        raise PipelineError(f"{report} not found; {made_by}")
    text = readme.read_text()
    head, tail = _split_readme(text, readme, section)
    return text, f"{head}\n{report.read_text().strip()}\n{tail}"


def sync_readme(readme: Path, results_md: Path, section: str = "results") -> bool:
    """Replace the README's section with the report `results_md`; True if the README changed."""
    readme, results_md = Path(readme), Path(results_md)
    old, new = _synced_text(readme, results_md, section)
    if new == old:
        return False
    with atomic_path(readme) as tmp:
        tmp.write_text(new)
    return True


def readme_in_sync(readme: Path, results_md: Path, section: str = "results") -> bool:
    """Whether the README's section already equals the report `results_md`."""
    old, new = _synced_text(Path(readme), Path(results_md), section)
    return old == new


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="python -m pipeline.report",
                                     description="Copy reports/results.md (and SECTIONS' reports) into the README.")
    action = parser.add_mutually_exclusive_group(required=True)
    action.add_argument("--sync-readme", action="store_true", help="rewrite the README section")
    action.add_argument("--check", action="store_true", help="fail if the README section is out of date")
    parser.add_argument("--readme", type=Path, default=DEFAULT_README)
    parser.add_argument("--results-md", type=Path, default=artifacts.results_md())
    args = parser.parse_args(argv)
    # The other sections only for the project's own README (a --readme elsewhere is a test's or a copy's).
    sections = {"results": args.results_md, **(SECTIONS if args.readme == DEFAULT_README else {})}
    for section, report in sections.items():
        if args.check:
            if not readme_in_sync(args.readme, report, section):
                raise PipelineError(f"{args.readme} {section} section differs from {report}; "
                                    f"run `python -m pipeline.report --sync-readme`")
            print(f"{args.readme} is in sync with {report}")
            continue
        changed = sync_readme(args.readme, report, section)
        print(f"{'updated' if changed else 'already up to date:'} {args.readme} from {report}")
