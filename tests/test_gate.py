"""CI regression gate: pure compare() cases, main() exit codes, and one real `python -m` run."""
from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest

from pipeline.gate import Row, compare, gate_passed, main

BASELINE = {
    "tolerance": 1.0,
    "probes": {
        "jepa/cifar100": {"top1": 40.0},
        "sparse_jepa/cifar100": {"top1": 45.0, "tolerance": 3.0},
    },
}
GOOD = {"jepa/cifar100": 40.0, "sparse_jepa/cifar100": 45.0}


def _statuses(rows: list[Row]) -> dict[str, str]:
    return {row.probe: row.status for row in rows}


# ------------------------------------------------------------------------------ compare()

def test_unchanged_passes() -> None:
    rows = compare(BASELINE, GOOD)
    assert gate_passed(rows) and set(_statuses(rows).values()) == {"ok"}


def test_drop_beyond_tolerance_fails() -> None:
    rows = compare(BASELINE, {**GOOD, "jepa/cifar100": 38.5})
    assert _statuses(rows)["jepa/cifar100"] == "DROP" and not gate_passed(rows)
    assert rows[0].difference == pytest.approx(-1.5)


def test_drop_within_tolerance_passes() -> None:
    assert gate_passed(compare(BASELINE, {**GOOD, "jepa/cifar100": 39.2}))
    # Exactly at the tolerance edge is still a pass, despite float rounding in 40.0 - 1.0.
    assert gate_passed(compare(BASELINE, {**GOOD, "jepa/cifar100": 39.0}))


def test_per_probe_tolerance_override_is_used() -> None:
    # 2.5 points down: beyond the global 1.0 but within sparse_jepa's own 3.0.
    rows = compare(BASELINE, {**GOOD, "sparse_jepa/cifar100": 42.5})
    assert gate_passed(rows)
    assert next(r for r in rows if r.probe == "sparse_jepa/cifar100").tolerance == 3.0
    assert not gate_passed(compare(BASELINE, {**GOOD, "sparse_jepa/cifar100": 41.9}))


def test_missing_probe_fails() -> None:
    rows = compare(BASELINE, {"jepa/cifar100": 40.0})
    assert _statuses(rows)["sparse_jepa/cifar100"] == "MISSING" and not gate_passed(rows)


def test_nan_fails() -> None:
    rows = compare(BASELINE, {**GOOD, "jepa/cifar100": math.nan})
    assert _statuses(rows)["jepa/cifar100"] == "NaN" and not gate_passed(rows)


def test_improvement_passes() -> None:
    rows = compare(BASELINE, {**GOOD, "jepa/cifar100": 55.0})
    assert _statuses(rows)["jepa/cifar100"] == "improved" and gate_passed(rows)


def test_probe_not_in_baseline_is_reported_but_not_gated() -> None:
    rows = compare(BASELINE, {**GOOD, "random/cifar100": 1.0})
    assert _statuses(rows)["random/cifar100"] == "new" and gate_passed(rows)


# ------------------------------------------------------------------------------ main()

def _write_results(folder: Path, top1s: dict[str, float]) -> Path:
    for key, top1 in top1s.items():
        path = folder / f"{key}.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps({"top1": top1}))
    return folder


@pytest.fixture
def files(tmp_path: Path) -> tuple[Path, Path]:
    baseline = tmp_path / "ci_baseline.json"
    baseline.write_text(json.dumps(BASELINE))
    return baseline, _write_results(tmp_path / "probe", GOOD)


def _main(baseline: Path, results: Path, *extra: str) -> int:
    return main(["--baseline", str(baseline), "--results", str(results), *extra])


def test_main_pass_and_fail(files, capsys) -> None:
    baseline, results = files
    assert _main(baseline, results) == 0
    assert "PASS" in capsys.readouterr().out
    _write_results(results, {"jepa/cifar100": 30.0})
    assert _main(baseline, results) == 1
    out = capsys.readouterr().out
    assert "DROP" in out and out.strip().splitlines()[-1].startswith("FAIL: 1 of 2")


def test_main_nan_result_fails(files) -> None:
    baseline, results = files
    (results / "jepa" / "cifar100.json").write_text('{"top1": NaN}')
    assert _main(baseline, results) == 1


def test_main_empty_results_fails(files, tmp_path: Path, capsys) -> None:
    baseline, _ = files
    assert _main(baseline, tmp_path / "nothing_here") == 1
    assert "no probe results" in capsys.readouterr().out


@pytest.mark.parametrize("content", [
    None,                                                   # file missing
    "{not json",                                            # invalid JSON
    "[1, 2]",                                               # wrong shape
    '{"tolerance": 1.0, "probes": {}}',                     # nothing to gate
    '{"tolerance": -1, "probes": {"a/b": {"top1": 1}}}',    # negative tolerance
    '{"tolerance": 1, "probes": {"a/b": {"top1": "x"}}}',   # non-numeric top1
    '{"tolerance": 1, "probes": {"ab": {"top1": 1.0}}}',    # key not model/dataset
    '{"tolerance": 1, "probes": {"a/b": {"top1": 1}}, "min_gain_over_random": {"b": -2}}',  # negative gain
])
def test_bad_baseline_exits_2_with_one_line(files, content, capsys) -> None:
    baseline, results = files
    if content is None:
        baseline.unlink()
    else:
        baseline.write_text(content)
    assert _main(baseline, results) == 2
    captured = capsys.readouterr()
    assert captured.err.startswith("error: ") and captured.err.count("\n") == 1
    assert "--update" in captured.err  # the message names the fix


def test_update_writes_baseline_and_reports_changes(files, capsys) -> None:
    baseline, results = files
    _write_results(results, {"jepa/cifar100": 41.5, "random/cifar100": 5.0})
    assert _main(baseline, results, "--update", "--tolerance", "0.5") == 0
    out = capsys.readouterr().out
    assert "changed jepa/cifar100: 40.00 -> 41.50 (+1.50)" in out
    assert "added   random/cifar100: 5.00" in out and "tolerance" in out
    written = json.loads(baseline.read_text())
    assert written["tolerance"] == 0.5
    assert written["probes"]["jepa/cifar100"] == {"top1": 41.5}
    assert written["probes"]["sparse_jepa/cifar100"] == {"top1": 45.0, "tolerance": 3.0}  # override kept
    assert _main(baseline, results) == 0


def test_update_refuses_nan(files, capsys) -> None:
    baseline, results = files
    before = baseline.read_text()
    (results / "jepa" / "cifar100.json").write_text('{"top1": NaN}')
    assert _main(baseline, results, "--update") == 2
    assert "jepa/cifar100" in capsys.readouterr().err
    assert baseline.read_text() == before


# ------------------------------------------------------------------------------ real process

def test_python_m_gate_exit_codes(files) -> None:
    baseline, results = files
    root = Path(__file__).resolve().parents[1]
    cmd = [sys.executable, "-m", "pipeline.gate", "--baseline", str(baseline), "--results", str(results)]
    clean = subprocess.run(cmd, cwd=root, capture_output=True, text=True)
    assert clean.returncode == 0, clean.stdout + clean.stderr
    _write_results(results, {"jepa/cifar100": 35.0})  # planted drop of 5 points, tolerance 1
    dropped = subprocess.run(cmd, cwd=root, capture_output=True, text=True)
    assert dropped.returncode == 1
    assert "FAIL" in dropped.stdout and "jepa/cifar100" in dropped.stdout


def test_pretrained_model_no_better_than_random_fails_when_a_gain_is_required():
    baseline = {"tolerance": 5.0, "min_gain_over_random": 3.0,
                "probes": {"random/fashion_mnist": {"top1": 64.0}, "jepa/fashion_mnist": {"top1": 72.0}}}
    healthy = compare(baseline, {"random/fashion_mnist": 64.0, "jepa/fashion_mnist": 72.0})
    assert gate_passed(healthy) and any(r.probe == "jepa/fashion_mnist minus random" for r in healthy)
    # Within the 5-point tolerance of its baseline, but only 1 point above the random encoder.
    no_gain = compare(baseline, {"random/fashion_mnist": 66.0, "jepa/fashion_mnist": 67.0})
    assert not gate_passed(no_gain)
    assert [r.status for r in no_gain if r.probe.endswith("minus random")] == ["NO GAIN"]
    assert gate_passed(compare({**baseline, "min_gain_over_random": None},
                               {"random/fashion_mnist": 66.0, "jepa/fashion_mnist": 67.0}))


def test_min_gain_per_dataset_checks_only_the_datasets_named():
    # A gain is expected on the pretraining set, not on a 67-image transfer set such as CLEVR's mini subset.
    baseline = {"tolerance": 50.0, "min_gain_over_random": {"fashion_mnist": 3.0},
                "probes": {"random/fashion_mnist": {"top1": 64.0}, "jepa/fashion_mnist": {"top1": 72.0},
                           "random/clevr_count": {"top1": 30.0}, "jepa/clevr_count": {"top1": 28.0}}}
    rows = compare(baseline, {"random/fashion_mnist": 64.0, "jepa/fashion_mnist": 72.0,
                              "random/clevr_count": 30.0, "jepa/clevr_count": 25.0})
    assert gate_passed(rows)
    assert [r.probe for r in rows if r.probe.endswith("minus random")] == ["jepa/fashion_mnist minus random"]
    rows = compare(baseline, {"random/fashion_mnist": 64.0, "jepa/fashion_mnist": 65.0,
                              "random/clevr_count": 30.0, "jepa/clevr_count": 40.0})
    assert [r.status for r in rows if r.probe.endswith("minus random")] == ["NO GAIN"]
