"""CI regression gate: pure compare() cases, load_results over the probe layout, main() exit codes, and one
real `python -m` run."""
from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest

from pipeline import artifacts
from pipeline.artifacts.records import ProbeRecord, write_probe
from pipeline.gate import Row, compare, gate_passed, load_results, main, means, probe_tolerance, updated_baseline

BASELINE = {
    "tolerance": 1.0,
    "probes": {
        "jepa/target/cifar100": {"top1": 40.0},
        "sparse_jepa/target/cifar100": {"top1": 45.0, "tolerance": 3.0},
    },
}
GOOD = {"jepa/target/cifar100": 40.0, "sparse_jepa/target/cifar100": 45.0}
# Two-sided 95% Student-t critical value for 4 degrees of freedom (two means of 3 seeds), from the tables.
T95_4DOF = 2.7764451051977987


def _statuses(rows: list[Row]) -> dict[str, str]:
    return {row.probe: row.status for row in rows}


# ------------------------------------------------------------------------------ compare()

def test_unchanged_passes() -> None:
    rows = compare(BASELINE, GOOD)
    assert gate_passed(rows) and set(_statuses(rows).values()) == {"ok"}


def test_drop_beyond_tolerance_fails() -> None:
    rows = compare(BASELINE, {**GOOD, "jepa/target/cifar100": 38.5})
    assert _statuses(rows)["jepa/target/cifar100"] == "DROP" and not gate_passed(rows)
    assert rows[0].difference == pytest.approx(-1.5)


def test_drop_within_tolerance_passes() -> None:
    assert gate_passed(compare(BASELINE, {**GOOD, "jepa/target/cifar100": 39.2}))
    # Exactly at the tolerance edge is still a pass, despite float rounding in 40.0 - 1.0.
    assert gate_passed(compare(BASELINE, {**GOOD, "jepa/target/cifar100": 39.0}))


def test_per_probe_tolerance_override_is_used() -> None:
    # 2.5 points down: beyond the global 1.0 but within sparse_jepa's own 3.0.
    rows = compare(BASELINE, {**GOOD, "sparse_jepa/target/cifar100": 42.5})
    assert gate_passed(rows)
    assert next(r for r in rows if r.probe == "sparse_jepa/target/cifar100").tolerance == 3.0
    assert not gate_passed(compare(BASELINE, {**GOOD, "sparse_jepa/target/cifar100": 41.9}))


def test_missing_probe_fails() -> None:
    rows = compare(BASELINE, {"jepa/target/cifar100": 40.0})
    assert _statuses(rows)["sparse_jepa/target/cifar100"] == "MISSING" and not gate_passed(rows)


def test_nan_fails() -> None:
    rows = compare(BASELINE, {**GOOD, "jepa/target/cifar100": math.nan})
    assert _statuses(rows)["jepa/target/cifar100"] == "NaN" and not gate_passed(rows)


def test_improvement_passes() -> None:
    rows = compare(BASELINE, {**GOOD, "jepa/target/cifar100": 55.0})
    assert _statuses(rows)["jepa/target/cifar100"] == "improved" and gate_passed(rows)


def test_probe_not_in_baseline_is_reported_but_not_gated() -> None:
    rows = compare(BASELINE, {**GOOD, "random/target/cifar100": 1.0, "pixels/raw/cifar100": 2.0})
    assert _statuses(rows)["random/target/cifar100"] == "new" and _statuses(rows)["pixels/raw/cifar100"] == "new"
    assert gate_passed(rows)


def test_the_context_encoder_and_the_pixels_are_gated_like_any_probe() -> None:
    baseline = {"tolerance": 1.0,
                "probes": {"jepa/context/cifar100": {"top1": 42.0}, "pixels/raw/cifar100": {"top1": 20.0}}}
    rows = compare(baseline, {"jepa/context/cifar100": 40.0, "pixels/raw/cifar100": 20.0})
    assert _statuses(rows) == {"jepa/context/cifar100": "DROP", "pixels/raw/cifar100": "ok"}


# ------------------------------------------------------------------------------ tolerance from the seed spread

def test_tolerance_is_the_half_width_of_a_difference_of_two_seed_means() -> None:
    entry = {"top1": 40.0, "std": 1.0, "seeds": 3}
    expected = T95_4DOF * 1.0 * math.sqrt(2 / 3)  # 2.27 points
    assert probe_tolerance(entry, floor=0.5) == pytest.approx(expected)
    baseline = {"tolerance": 0.5, "probes": {"jepa/target/cifar100": entry}}
    assert gate_passed(compare(baseline, {"jepa/target/cifar100": 40.0 - expected + 0.01}))
    rows = compare(baseline, {"jepa/target/cifar100": 40.0 - expected - 0.01})
    assert _statuses(rows) == {"jepa/target/cifar100": "DROP"}
    assert rows[0].tolerance == pytest.approx(expected)


@pytest.mark.parametrize("entry", [
    {"top1": 40.0},                              # no spread recorded (an older or hand-written entry)
    {"top1": 40.0, "seeds": 1},                  # one seed: no spread to learn from
    {"top1": 40.0, "std": 0.0, "seeds": 3},      # seeds that happened to agree
    {"top1": 40.0, "std": 0.1, "seeds": 3},      # a spread narrower than the floor
])
def test_tolerance_never_below_the_global_floor(entry: dict) -> None:
    assert probe_tolerance(entry, floor=0.75) == 0.75
    baseline = {"tolerance": 0.75, "probes": {"jepa/target/cifar100": entry}}
    assert gate_passed(compare(baseline, {"jepa/target/cifar100": 39.25}))
    assert not gate_passed(compare(baseline, {"jepa/target/cifar100": 39.2}))


def test_per_probe_override_beats_the_seed_spread() -> None:
    entry = {"top1": 40.0, "std": 2.0, "seeds": 3, "tolerance": 0.2}
    assert probe_tolerance(entry, floor=1.0) == 0.2
    assert not gate_passed(compare({"tolerance": 1.0, "probes": {"jepa/target/cifar100": entry}},
                                   {"jepa/target/cifar100": 39.7}))


# ------------------------------------------------------------------------------ min_gain_over_random

def test_pretrained_model_no_better_than_random_fails_when_a_gain_is_required():
    baseline = {"tolerance": 5.0, "min_gain_over_random": 3.0,
                "probes": {"random/target/fashion_mnist": {"top1": 64.0},
                           "jepa/target/fashion_mnist": {"top1": 72.0}}}
    healthy = compare(baseline, {"random/target/fashion_mnist": 64.0, "jepa/target/fashion_mnist": 72.0})
    assert gate_passed(healthy)
    assert any(r.probe == "jepa/target/fashion_mnist minus random/target" for r in healthy)
    # Within the 5-point tolerance of its baseline, but only 1 point above the random encoder.
    no_gain = compare(baseline, {"random/target/fashion_mnist": 66.0, "jepa/target/fashion_mnist": 67.0})
    assert not gate_passed(no_gain)
    assert [r.status for r in no_gain if " minus " in r.probe] == ["NO GAIN"]
    assert gate_passed(compare({**baseline, "min_gain_over_random": None},
                               {"random/target/fashion_mnist": 66.0, "jepa/target/fashion_mnist": 67.0}))


def test_min_gain_checks_every_pretrained_target_encoder_but_not_the_references():
    baseline = {"tolerance": 50.0, "min_gain_over_random": 3.0, "probes": {"jepa/target/fashion_mnist": {"top1": 70}}}
    rows = compare(baseline, {"random/target/fashion_mnist": 64.0, "jepa/target/fashion_mnist": 70.0,
                              "jepa/context/fashion_mnist": 65.0, "pixels/raw/fashion_mnist": 60.0})
    gains = {r.probe: r.status for r in rows if " minus " in r.probe}
    # The raw pixels and the context encoder are references, not the probed encoder: no gain over random
    # is asked of them (the context encoder, 1 point under random here, is reported, not gated).
    assert gains == {"jepa/target/fashion_mnist minus random/target": "ok"}


def test_min_gain_per_dataset_checks_only_the_datasets_named():
    # A gain is expected on the pretraining set, not on a 67-image transfer set such as CLEVR's mini subset.
    baseline = {"tolerance": 50.0, "min_gain_over_random": {"fashion_mnist": 3.0},
                "probes": {"random/target/fashion_mnist": {"top1": 64.0}, "jepa/target/fashion_mnist": {"top1": 72.0},
                           "random/target/clevr_count": {"top1": 30.0}, "jepa/target/clevr_count": {"top1": 28.0}}}
    rows = compare(baseline, {"random/target/fashion_mnist": 64.0, "jepa/target/fashion_mnist": 72.0,
                              "random/target/clevr_count": 30.0, "jepa/target/clevr_count": 25.0})
    assert gate_passed(rows)
    assert [r.probe for r in rows if " minus " in r.probe] == ["jepa/target/fashion_mnist minus random/target"]
    rows = compare(baseline, {"random/target/fashion_mnist": 64.0, "jepa/target/fashion_mnist": 65.0,
                              "random/target/clevr_count": 30.0, "jepa/target/clevr_count": 40.0})
    assert [r.status for r in rows if " minus " in r.probe] == ["NO GAIN"]


# ------------------------------------------------------------------------------ load_results()

def _write_runs(folder: Path, runs: dict[str, list[float]]) -> Path:
    """Probe records in artifacts.probe_path's layout: 'm/e/d' -> one record per seed, a pixel control drawn
    once ('pixels/raw/d') -> one."""
    for key, values in runs.items():
        method, encoder, dataset = key.split("/")
        seeds = artifacts.control_seeds(encoder, tuple(range(len(values)))) if method == artifacts.PIXELS \
            else range(len(values))
        for seed, top1 in zip(seeds, values):
            path = artifacts.probe_path(method, dataset, seed, encoder, folder.parent)
            path.parent.mkdir(parents=True, exist_ok=True)
            write_probe(path, ProbeRecord(method=method, seed=seed, encoder=encoder, dataset=dataset, top1=top1))
    return folder


def test_probe_layout_matches_artifacts() -> None:
    # The gate reads what the probe stages write: the folder it scans is artifacts' probe folder.
    root = artifacts.probe_dir(Path("r"))
    assert artifacts.probe_path("jepa", "cifar100", 2, "context", Path("r")).relative_to(root).parts == (
        "jepa", "seed2", "context", "cifar100.json")
    assert artifacts.probe_path(artifacts.PIXELS, "cifar100", encoder="raw", reports=Path("r")).relative_to(
        root).parts == ("pixels", "raw", "cifar100.json")
    assert artifacts.probe_path(artifacts.PIXELS, "cifar100", 1, "gaussian", Path("r")).relative_to(root).parts == (
        "pixels", "seed1", "gaussian", "cifar100.json")


def test_load_results_groups_seeds_per_probe(tmp_path: Path) -> None:
    results = _write_runs(tmp_path / "probe", {"jepa/target/cifar100": [40.0, 41.0, 42.0],
                                               "jepa/context/cifar100": [38.0, 39.0, 40.0],
                                               "random/target/cifar100": [12.0, 13.0, 14.0],
                                               "pixels/raw/cifar100": [20.0],
                                               "pixels/gaussian/cifar100": [18.0, 19.0, 20.0]})
    runs = load_results(results)
    assert {k: sorted(v) for k, v in runs.items()} == {"jepa/target/cifar100": [40.0, 41.0, 42.0],
                                                       "jepa/context/cifar100": [38.0, 39.0, 40.0],
                                                       "random/target/cifar100": [12.0, 13.0, 14.0],
                                                       "pixels/raw/cifar100": [20.0],
                                                       "pixels/gaussian/cifar100": [18.0, 19.0, 20.0]}
    assert means(runs) == {"jepa/target/cifar100": 41.0, "jepa/context/cifar100": 39.0,
                           "random/target/cifar100": 13.0, "pixels/raw/cifar100": 20.0,
                           "pixels/gaussian/cifar100": 19.0}


def test_load_results_reads_a_damaged_record_as_nan(tmp_path: Path) -> None:
    results = _write_runs(tmp_path / "probe", {"jepa/target/cifar100": [40.0, 41.0, 42.0], "pixels/raw/cifar100": [20.0]})
    (results / "jepa" / "seed1" / "target" / "cifar100.json").write_text("{not json")
    (results / "pixels" / "raw" / "cifar100.json").write_text('{"method": "pixels", "encoder": "raw", "dataset": "cifar100", '
                                                      '"top1": null}')
    runs = load_results(results)
    assert len(runs["jepa/target/cifar100"]) == 3 and sum(math.isnan(v) for v in runs["jepa/target/cifar100"]) == 1
    assert math.isnan(runs["pixels/raw/cifar100"][0])
    # One damaged seed fails its probe, not the whole check.
    assert {k: math.isnan(v) for k, v in means(runs).items()} == {"jepa/target/cifar100": True, "pixels/raw/cifar100": True}


def test_load_results_ignores_files_of_another_shape(tmp_path: Path) -> None:
    results = _write_runs(tmp_path / "probe", {"jepa/target/cifar100": [40.0]})
    for stray in ("jepa/cifar100.json",                  # the one-seed layout
                  "jepa/seed0/cifar100.json",            # no encoder folder
                  "jepa/run0/target/cifar100.json",      # not a seed folder
                  "notes.json", "pixels/extra/cifar100.json", "pixels/cifar100.json", "jepa/seed0/target/grid/cifar100.json"):
        path = results / stray
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text('{"top1": 99.0}')
    assert load_results(results) == {"jepa/target/cifar100": [40.0]}


# ------------------------------------------------------------------------------ updated_baseline()

def test_updated_baseline_writes_mean_std_and_seeds_and_keeps_overrides() -> None:
    old = {"tolerance": 0.5, "min_gain_over_random": {"fashion_mnist": 1.0},
           "probes": {"jepa/target/cifar100": {"top1": 40.0, "std": 9.0, "seeds": 3, "tolerance": 3.0},
                      "gone/target/cifar100": {"top1": 1.0}}}
    new = updated_baseline(old, {"jepa/target/cifar100": [41.0, 42.0, 43.0], "pixels/raw/cifar100": [20.0]}, None)
    assert new == {"tolerance": 0.5, "min_gain_over_random": {"fashion_mnist": 1.0}, "probes": {
        "jepa/target/cifar100": {"top1": 42.0, "seeds": 3, "std": 1.0, "tolerance": 3.0},
        "pixels/raw/cifar100": {"top1": 20.0, "seeds": 1},  # one run: no std to record
    }}


def test_updated_baseline_refuses_a_nan_seed() -> None:
    from pipeline.core.errors import PipelineError

    with pytest.raises(PipelineError, match="jepa/target/cifar100"):
        updated_baseline(None, {"jepa/target/cifar100": [41.0, math.nan, 43.0]}, 1.0)


# ------------------------------------------------------------------------------ main()

GOOD_RUNS = {"jepa/target/cifar100": [39.0, 40.0, 41.0], "sparse_jepa/target/cifar100": [44.0, 45.0, 46.0]}


@pytest.fixture
def files(tmp_path: Path) -> tuple[Path, Path]:
    baseline = tmp_path / "ci_baseline.json"
    baseline.write_text(json.dumps(BASELINE))
    return baseline, _write_runs(tmp_path / "probe", GOOD_RUNS)


def _main(baseline: Path, results: Path, *extra: str) -> int:
    return main(["--baseline", str(baseline), "--results", str(results), *extra])


def test_main_pass_and_fail(files, capsys) -> None:
    baseline, results = files
    assert _main(baseline, results) == 0
    assert "PASS" in capsys.readouterr().out
    _write_runs(results, {"jepa/target/cifar100": [30.0, 31.0, 32.0]})
    assert _main(baseline, results) == 1
    out = capsys.readouterr().out
    assert "DROP" in out and out.strip().splitlines()[-1].startswith("FAIL: 1 of 2")


def test_main_compares_seed_means_not_single_seeds(files) -> None:
    baseline, results = files
    # One seed 5 points under the baseline, the others above it: the mean (40.0) is what is gated.
    _write_runs(results, {"jepa/target/cifar100": [35.0, 42.5, 42.5]})
    assert _main(baseline, results) == 0
    _write_runs(results, {"jepa/target/cifar100": [38.0, 39.0, 39.5]})  # mean 38.83: 1.17 below, tolerance 1
    assert _main(baseline, results) == 1


def test_main_fails_a_probe_that_lost_a_seed(files, capsys) -> None:
    baseline, results = files
    baseline.write_text(json.dumps({"tolerance": 1.0, "probes": {"jepa/target/cifar100": {"top1": 40.0, "seeds": 3}}}))
    assert _main(baseline, results) == 0
    # Two of three seeds, both above the baseline mean: the mean looks fine, the count does not.
    (results / "jepa/seed2/target/cifar100.json").unlink()
    assert _main(baseline, results) == 1
    assert "SEEDS" in capsys.readouterr().out


def test_main_nan_result_fails(files) -> None:
    baseline, results = files
    (results / "jepa" / "seed1" / "target" / "cifar100.json").write_text('{"top1": NaN}')
    assert _main(baseline, results) == 1


def test_main_empty_results_fails(files, tmp_path: Path, capsys) -> None:
    baseline, _ = files
    assert _main(baseline, tmp_path / "nothing_here") == 1
    assert "no probe results" in capsys.readouterr().out


@pytest.mark.parametrize("content", [
    None,                                                           # file missing
    "{not json",                                                    # invalid JSON
    "[1, 2]",                                                       # wrong shape
    '{"tolerance": 1.0, "probes": {}}',                             # nothing to gate
    '{"tolerance": -1, "probes": {"a/target/b": {"top1": 1}}}',     # negative tolerance
    '{"tolerance": 1, "probes": {"a/target/b": {"top1": "x"}}}',    # non-numeric top1
    '{"tolerance": 1, "probes": {"ab": {"top1": 1.0}}}',            # key not method/encoder/dataset
    '{"tolerance": 1, "probes": {"jepa/cifar100": {"top1": 1.0}}}',  # the one-seed baseline's key
    '{"tolerance": 1, "probes": {"a/b/c/d": {"top1": 1.0}}}',       # too many parts
    '{"tolerance": 1, "probes": {"a/online/b": {"top1": 1.0}}}',    # not an encoder
    '{"tolerance": 1, "probes": {"a/target/b": {"top1": 1, "std": -1}}}',   # negative std
    '{"tolerance": 1, "probes": {"a/target/b": {"top1": 1, "std": "x"}}}',  # non-numeric std
    '{"tolerance": 1, "probes": {"a/target/b": {"top1": 1, "seeds": 0}}}',  # no seeds
    '{"tolerance": 1, "probes": {"a/target/b": {"top1": 1, "seeds": 2.5}}}',  # fractional seeds
    '{"tolerance": 1, "probes": {"a/target/b": {"top1": 1}}, "min_gain_over_random": {"b": -2}}',  # negative gain
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
    _write_runs(results, {"jepa/target/cifar100": [40.5, 41.5, 42.5], "random/target/cifar100": [4.0, 5.0, 6.0],
                          "pixels/raw/cifar100": [20.0]})
    assert _main(baseline, results, "--update", "--tolerance", "0.5") == 0
    out = capsys.readouterr().out
    assert "changed jepa/target/cifar100: 40.00 -> 41.50 (+1.50)" in out
    assert "added   random/target/cifar100: 5.00" in out and "added   pixels/raw/cifar100: 20.00" in out
    assert "tolerance" in out
    written = json.loads(baseline.read_text())
    assert written["tolerance"] == 0.5
    assert written["probes"]["jepa/target/cifar100"] == {"top1": 41.5, "seeds": 3, "std": 1.0}
    assert written["probes"]["pixels/raw/cifar100"] == {"top1": 20.0, "seeds": 1}
    # The override is kept; the spread is refreshed from the runs.
    assert written["probes"]["sparse_jepa/target/cifar100"] == {"top1": 45.0, "seeds": 3, "std": 1.0, "tolerance": 3.0}
    assert _main(baseline, results) == 0


def test_update_replaces_a_one_seed_baseline(files, capsys) -> None:
    baseline, results = files
    baseline.write_text(json.dumps({"tolerance": 2.0, "probes": {"jepa/cifar100": {"top1": 40.0}}}))
    assert _main(baseline, results) == 2  # unusable until regenerated
    assert _main(baseline, results, "--update") == 0
    assert "replacing unreadable baseline" in capsys.readouterr().out
    assert set(json.loads(baseline.read_text())["probes"]) == set(GOOD_RUNS)
    assert _main(baseline, results) == 0


def test_update_refuses_nan(files, capsys) -> None:
    baseline, results = files
    before = baseline.read_text()
    (results / "jepa" / "seed2" / "target" / "cifar100.json").write_text('{"top1": NaN}')
    assert _main(baseline, results, "--update") == 2
    assert "jepa/target/cifar100" in capsys.readouterr().err
    assert baseline.read_text() == before


def test_main_min_gain_over_seed_means(files) -> None:
    baseline, results = files
    _write_runs(results, {"random/target/cifar100": [37.0, 38.0, 39.0]})  # JEPA target mean 40: 2 above
    baseline.write_text(json.dumps({**BASELINE, "min_gain_over_random": 2.0}))
    assert _main(baseline, results) == 0
    baseline.write_text(json.dumps({**BASELINE, "min_gain_over_random": 2.5}))
    assert _main(baseline, results) == 1


# ------------------------------------------------------------------------------ real process

def test_python_m_gate_exit_codes(files) -> None:
    baseline, results = files
    root = Path(__file__).resolve().parents[1]
    cmd = [sys.executable, "-m", "pipeline.gate", "--baseline", str(baseline), "--results", str(results)]
    clean = subprocess.run(cmd, cwd=root, capture_output=True, text=True)
    assert clean.returncode == 0, clean.stdout + clean.stderr
    _write_runs(results, {"jepa/target/cifar100": [35.0, 35.0, 35.0]})  # planted drop of 5 points, tolerance 1
    dropped = subprocess.run(cmd, cwd=root, capture_output=True, text=True)
    assert dropped.returncode == 1
    assert "FAIL" in dropped.stdout and "jepa/target/cifar100" in dropped.stdout
    baseline.write_text("{not json")
    broken = subprocess.run(cmd, cwd=root, capture_output=True, text=True)
    assert broken.returncode == 2 and broken.stderr.startswith("error: ")
