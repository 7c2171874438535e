"""README stays true: its test command is what CI runs, and its results (and other generated) sections are the
reports'."""
import re

import pytest
from conftest import REPO

from pipeline.report.readme import SECTIONS, readme_in_sync


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
    assert readme_in_sync(REPO / "README.md", REPO / SECTIONS[section], section), (
        f"README's {section} section differs from {SECTIONS[section]}: run `python -m pipeline.report --sync-readme`")
