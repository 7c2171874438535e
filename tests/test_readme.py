"""README stays true: its test command is what CI runs, and its results (and other generated) sections are the
reports'."""
import re

import pytest
from conftest import REPO

from pipeline.core.errors import PipelineError
from pipeline.report.readme import SECTIONS, Section, readme_in_sync, report_part, sync_readme


def readme_commands() -> list[str]:
    block = re.search(r"## Quick start.*?```bash\n(.*?)```", (REPO / "README.md").read_text(), re.S).group(1)
    return [line for line in block.splitlines() if line and not line.startswith("#")]


def test_readme_has_exactly_two_setup_commands_and_ci_runs_the_test_one():
    main_job, tests = readme_commands()
    assert main_job.endswith("dvc repro") and tests.endswith("pytest -q")
    assert tests in (REPO / ".ci" / "run").read_text()


def test_readme_results_section_is_the_generated_report():
    assert readme_in_sync(REPO / "README.md", REPO / "reports" / "results.md"), (
        "README's results section differs from reports/results.md: run `python -m pipeline.report --sync-readme`")


@pytest.mark.parametrize("section", sorted(SECTIONS))
def test_readme_sections_are_their_reports(section):
    source = Section(REPO / SECTIONS[section].report, SECTIONS[section].part)
    assert readme_in_sync(REPO / "README.md", source, section), (
        f"README's {section} section differs from {SECTIONS[section]}: run `python -m pipeline.report --sync-readme`")


REPORT = """### Results

Intro.

| a | b |
#### Pretraining

Loss.
"""


def test_a_report_part_is_the_lines_under_its_heading_up_to_the_next_one():
    assert report_part(REPORT, "Results") == "Intro.\n\n| a | b |"
    assert report_part(REPORT, "Pretraining") == "Loss."
    assert report_part(REPORT, None) == REPORT.strip()


def test_a_missing_or_repeated_part_is_a_clear_error():
    with pytest.raises(PipelineError, match="0 headings 'Figures'"):
        report_part(REPORT, "Figures", "reports/x.md")
    with pytest.raises(PipelineError, match="2 headings 'Results'"):
        report_part(REPORT + "\n### Results\n", "Results")


def test_a_section_of_a_part_syncs_only_that_part(tmp_path):
    report = tmp_path / "r.md"
    report.write_text(REPORT)
    readme = tmp_path / "README.md"
    readme.write_text("top\n<!-- ladder:start -->\nold\n<!-- ladder:end -->\nend\n")
    source = Section(report, "Pretraining")
    assert not readme_in_sync(readme, source, "ladder")
    assert sync_readme(readme, source, "ladder") and readme_in_sync(readme, source, "ladder")
    assert readme.read_text() == "top\n<!-- ladder:start -->\nLoss.\n<!-- ladder:end -->\nend\n"
