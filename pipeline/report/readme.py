"""README sync: README.md shows reports/results.md between two markers, and each of SECTIONS' reports (or one
headed part of it) between markers of its own name; a test keeps them identical.

    python -m pipeline.report --sync-readme    rewrite README's sections from their reports
    python -m pipeline.report --check          fail if one is out of date
"""
from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path

from pipeline import artifacts
from pipeline.core.atomic import atomic_path
from pipeline.core.errors import PipelineError

MARKER_START = "<!-- results:start -->"
MARKER_END = "<!-- results:end -->"
DEFAULT_README = Path("README.md")


@dataclass(frozen=True)
class Section:
    """A README section's source: a committed report, whole, or only the lines under its heading `part` (up to
    the next heading of any level)."""
    report: Path
    part: str | None = None

    def __str__(self) -> str:
        return str(self.report) + (f" ({self.part})" if self.part else "")

    def text(self) -> str:
        if not self.report.exists():
            raise PipelineError(f"{self.report} not found; make it (see {__name__}.SECTIONS)")
        return report_part(self.report.read_text(), self.part, self.report)


# Other README sections copied from a committed report: {marker name: its source}, each written by its own command.
SECTIONS = {
    # python -m pipeline.bench.pretrain (--table <json>)
    "bench_cpu": Section(Path("reports/benchmarks/pretrain-amd-epyc-2-cores-2-torch-threads.md")),
    "bench_gpu": Section(Path("reports/benchmarks/pretrain-nvidia-h200.md")),
    "masks": Section(Path("reports/benchmarks/masks.md")),  # python -m pipeline.bench.masks
    "exp_columns": Section(Path("reports/benchmarks/exp_show_columns.md")),  # python -m pipeline.bench.exp_columns
    "validation": Section(Path("reports/recipe/validation.md")),  # python -m pipeline.bench.recipe_table
    "recipe_test": Section(Path("reports/recipe/results.md")),  # the same command
    # python -m pipeline.bench.groups_table reports/recipe/regions_control.csv centre_regions
    "regions_control": Section(Path("reports/recipe/regions_control_table.md")),
    # python -m pipeline.bench.groups_table reports/recipe/init_control.csv committed_init
    "init_control": Section(Path("reports/recipe/init_control_table.md")),
    # python -m pipeline.bench.groups_table reports/recipe/zero_init.csv zero_init_lambda_0.0225
    "zero_init": Section(Path("reports/recipe/zero_init_table.md")),
    # python -m pipeline.bench.groups_table reports/recipe/kl_beta.csv no_kl
    "kl_beta": Section(Path("reports/recipe/kl_beta_table.md")),
    # python -m pipeline.bench.support_stability sparse_jepa real_regions=. random_regions=<kept runs>
    "support_stability": Section(Path("reports/recipe/support_stability.md")),
    # the same two in the standard setting: groups_table reports/recipe/regions_control_standard.csv
    # std_sparse_jepa_da_0.02_warmup293, and support_stability ... --out reports/recipe/support_stability_standard
    "regions_control_standard": Section(Path("reports/recipe/regions_control_standard_table.md")),
    "support_stability_standard": Section(Path("reports/recipe/support_stability_standard.md")),
    # python -m pipeline.bench.settle --table
    "settle": Section(Path("reports/recipe/settle.md")),
    # python -m pipeline.bench.rest_table reports/recipe/dual_averaging_quick.csv (and _standard.csv)
    "dual_averaging_quick": Section(Path("reports/recipe/dual_averaging_quick_table.md")),
    "dual_averaging_standard": Section(Path("reports/recipe/dual_averaging_standard_table.md")),
    # the same for reports/recipe/support_rest_standard.csv (lambda 0.02 run longer; figure: pipeline.bench.rest_figure)
    "support_rest_standard": Section(Path("reports/recipe/support_rest_standard_table.md")),
    # python -m pipeline.bench.recipe_table reports/recipe/standard_validation.csv std_jepa --steps <README's>
    "standard_validation": Section(Path("reports/recipe/standard_validation.md")),
    # The longer setting's report (python -m pipeline.settings longer | xargs dvc exp run -n longer).
    "longer": Section(Path("reports/longer/results.md"), "Results"),
    # The ablation ladder's (dvc exp run ladder/dvc.yaml).
    "ladder": Section(Path("reports/ladder/results.md"), "Results"),
    # The standard setting's (python -m pipeline.settings standard | xargs dvc exp run standard/dvc.yaml ...).
    "standard": Section(Path("reports/standard/results.md"), "Results"),
}


def _heading(line: str) -> str | None:
    """A Markdown ATX heading's text, else None."""
    hashes = len(line) - len(line.lstrip("#"))
    return line[hashes:].strip() if 1 <= hashes <= 6 and line[hashes:hashes + 1] == " " else None


def report_part(text: str, part: str | None, source: Path | str = "the report") -> str:
    """`text` whole (part None), or the lines under the heading `part`, up to the next heading."""
    if part is None:
        return text.strip()
    lines = text.splitlines()
    starts = [i for i, line in enumerate(lines) if _heading(line) == part]
    if len(starts) != 1:
        raise PipelineError(f"{source} has {len(starts)} headings '{part}', not one; re-make it, or fix "
                            f"{__name__}.SECTIONS")
    end = next((i for i in range(starts[0] + 1, len(lines)) if _heading(lines[i]) is not None), len(lines))
    return "\n".join(lines[starts[0] + 1:end]).strip()


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


def _source(report: Path | Section, section: str) -> Section:
    if isinstance(report, Section):
        return report
    if section == "results" and not Path(report).exists():
        raise PipelineError(f"{report} not found; run `dvc repro report` first")
    return Section(Path(report))


def _synced_text(readme: Path, report: Path | Section, section: str = "results") -> tuple[str, str]:
    """(current README text, README text with the section replaced by the report's text)."""
    if not readme.exists():
        raise PipelineError(f"{readme} not found; run from the repository root or pass --readme")
    body = _source(report, section).text()
    text = readme.read_text()
    head, tail = _split_readme(text, readme, section)
    return text, f"{head}\n{body}\n{tail}"


def sync_readme(readme: Path, results_md: Path | Section, section: str = "results") -> bool:
    """Replace the README's section with the report `results_md` (a path: the whole file); True if it changed."""
    readme = Path(readme)
    old, new = _synced_text(readme, results_md, section)
    if new == old:
        return False
    with atomic_path(readme) as tmp:
        tmp.write_text(new)
    return True


def readme_in_sync(readme: Path, results_md: Path | Section, section: str = "results") -> bool:
    """Whether the README's section already equals the report `results_md` (or its part)."""
    old, new = _synced_text(Path(readme), results_md, section)
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
    for section, path_or_part in sections.items():
        report = _source(path_or_part, section)
        if args.check:
            if not readme_in_sync(args.readme, report, section):
                raise PipelineError(f"{args.readme} {section} section differs from {report}; "
                                    f"run `python -m pipeline.report --sync-readme`")
            print(f"{args.readme} is in sync with {report}")
            continue
        changed = sync_readme(args.readme, report, section)
        print(f"{'updated' if changed else 'already up to date:'} {args.readme} from {report}")
