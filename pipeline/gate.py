"""CI regression gate: every probe's seed-mean top-1 must stay within tolerance of a committed baseline.

    python -m pipeline.gate                      # exit 0 pass, 1 regression, 2 unusable baseline/args
    python -m pipeline.gate --update [--tolerance T]   # refresh the baseline after an intended change

A probe is a cell of the results table: `<method>/<encoder>/<dataset>` (its seeds averaged) or a pixel
control's `pixels/<control>/<dataset>`. The baseline (reports/ci_baseline.json) looks like
    {"tolerance": 0.5, "probes": {"<method>/target/fashion_mnist": {"top1": 80.2, "std": 0.4, "seeds": 3}, ...}}
A probe fails when it is missing, NaN, or its mean falls more than its tolerance below the baseline
mean; improvements pass. The tolerance comes from the committed seed spread: the 95% t half-width of
the difference of two means of `seeds` runs with per-seed std `std` (pipeline/report/stats.py), never
below the global "tolerance"; a probe's own "tolerance" overrides both. An optional
"min_gain_over_random": G also fails any pretrained target encoder whose mean is not at least G points above
each untrained reference encoder's mean on the same dataset (pretraining that no longer helps); G is one
number for every dataset, or {"<dataset>": G, ...} for the datasets where a gain is expected.
"""
from __future__ import annotations

import argparse
import json
import math
import sys
from dataclasses import dataclass
from pathlib import Path

from pipeline import artifacts, methods
from pipeline.artifacts.records import read_probe
from pipeline.core.atomic import write_json
from pipeline.core.errors import PipelineError
from pipeline.report.stats import mean_drop_tolerance, spread

DEFAULT_BASELINE = artifacts.ci_baseline()
DEFAULT_RESULTS = artifacts.probe_dir()
DEFAULT_TOLERANCE = 1.0

# Floats such as 40.0 - 0.3 are not exact; without slack a drop of exactly the tolerance could fail.
_SLACK = 1e-9

EXIT_PASS, EXIT_FAIL, EXIT_ERROR = 0, 1, 2


@dataclass(frozen=True)
class Row:
    """One probe's verdict. `now` is NaN when the probe is missing or produced NaN."""
    probe: str
    baseline: float
    now: float
    tolerance: float
    status: str  # "ok", "improved", "DROP", "MISSING", "NaN", "NO GAIN", "SEEDS" or "new" (not in the baseline)

    @property
    def difference(self) -> float:
        return self.now - self.baseline

    @property
    def passed(self) -> bool:
        return self.status in ("ok", "improved", "new")


# ---------------------------------------------------------------------------------------------
# Pure core
# ---------------------------------------------------------------------------------------------

def _number(value, allow_nan: bool = False) -> bool:
    ok = isinstance(value, (int, float)) and not isinstance(value, bool)
    return ok and (allow_nan or math.isfinite(value))


def validate_baseline(obj, source: str = "baseline") -> dict:
    """Return `obj` if it has the baseline shape, else raise PipelineError saying what is wrong."""
    fix = "fix it by hand or regenerate it with `python -m pipeline.gate --update`"
    if not isinstance(obj, dict):
        raise PipelineError(f"{source} must be a JSON object with 'tolerance' and 'probes'; {fix}")
    tolerance = obj.get("tolerance")
    if not _number(tolerance) or tolerance < 0:
        raise PipelineError(f"{source} 'tolerance' must be a number >= 0, got {tolerance!r}; {fix}")
    probes = obj.get("probes")
    if not isinstance(probes, dict) or not probes:
        raise PipelineError(f"{source} 'probes' must be a non-empty object of "
                            f"'<method>/<encoder>/<dataset>': {{'top1': ...}}; {fix}")
    for key, entry in probes.items():
        if not _probe_key_ok(key) or not isinstance(entry, dict):
            # An older one-seed baseline ('<method>/<dataset>') lands here: every probe would read as
            # MISSING beside a 'new' twin, a misleading regression report instead of this one line.
            raise PipelineError(f"{source} probe {key!r} must be named '<method>/<encoder>/<dataset>' "
                                f"(encoder {' or '.join(artifacts.ENCODERS)}) or '{artifacts.PIXELS}/<control>/<dataset>' "
                                f"(control {' or '.join(artifacts.CONTROLS)}) "
                                f"and map to {{'top1': ...}}; {fix}")
        if not _number(entry.get("top1")):
            raise PipelineError(f"{source} probe {key!r} needs a finite 'top1', got {entry.get('top1')!r}; {fix}")
        override = entry.get("tolerance")
        if override is not None and (not _number(override) or override < 0):
            raise PipelineError(f"{source} probe {key!r} 'tolerance' must be a number >= 0, "
                                f"got {override!r}; {fix}")
        std, seeds = entry.get("std"), entry.get("seeds", 1)
        if std is not None and (not _number(std) or std < 0):
            raise PipelineError(f"{source} probe {key!r} 'std' must be a number >= 0, got {std!r}; {fix}")
        if not isinstance(seeds, int) or isinstance(seeds, bool) or seeds < 1:
            raise PipelineError(f"{source} probe {key!r} 'seeds' must be an integer >= 1, got {seeds!r}; {fix}")
    gain = obj.get("min_gain_over_random")
    gains = gain.values() if isinstance(gain, dict) else [gain]
    if gain is not None and not all(_number(g) and g >= 0 for g in gains):
        raise PipelineError(f"{source} 'min_gain_over_random' must be a number >= 0 or an object of "
                            f"'<dataset>': number >= 0, got {gain!r}; {fix}")
    return obj


def _probe_key_ok(key: str) -> bool:
    """The names probe_key gives: '<method>/<encoder>/<dataset>' or 'pixels/<control>/<dataset>'."""
    parts = key.split("/")
    if len(parts) != 3 or not all(parts):
        return False
    return parts[1] in (artifacts.CONTROLS if parts[0] == artifacts.PIXELS else artifacts.ENCODERS)


def probe_tolerance(entry: dict, floor: float) -> float:
    """A baseline probe's allowed drop: its own override, else from its committed seed spread (see module doc)."""
    if entry.get("tolerance") is not None:
        return float(entry["tolerance"])
    std = entry.get("std")
    return mean_drop_tolerance(math.nan if std is None else float(std), int(entry.get("seeds", 1)), floor)


def compare(baseline: dict, current: dict[str, float], seeds: dict[str, int] | None = None) -> list[Row]:
    """One Row per baseline probe (sorted), then one 'new' Row per probe the baseline lacks. With `seeds`
    (runs per probe now), a mean over another number of seeds than the baseline's fails as SEEDS: a
    lost seed would otherwise shift the mean unnoticed."""
    rows = []
    for probe, entry in sorted(baseline["probes"].items()):
        base = float(entry["top1"])
        tolerance = probe_tolerance(entry, float(baseline["tolerance"]))
        now = current.get(probe, math.nan)
        status = _status(probe in current, base, now, tolerance)
        if seeds is not None and probe in seeds and "seeds" in entry and seeds[probe] != entry["seeds"]:
            status = "SEEDS"
        rows.append(Row(probe, base, now, tolerance, status))
    for probe in sorted(set(current) - set(baseline["probes"])):
        rows.append(Row(probe, math.nan, current[probe], math.nan, "new"))
    if baseline.get("min_gain_over_random") is not None:
        rows += gain_rows(current, baseline["min_gain_over_random"])
    return rows


def gain_rows(current: dict[str, float], min_gain: float | dict[str, float]) -> list[Row]:
    """Per pretrained method's target encoder (the encoder the paper probes; the context encoder is a
    reference, reported but not gated): its gain over each untrained reference encoder (the registry's
    methods with `pretrained: false`) on the same dataset, against the minimum.

    `min_gain` is one minimum for every dataset or {dataset: minimum}; other datasets are not checked.
    """
    references = [f"{m.key}/target" for m in methods.all_methods() if not m.pretrained]
    rows = []
    for probe, now in sorted(current.items()):
        method, dataset = probe.rsplit("/", 1)
        wanted = min_gain.get(dataset) if isinstance(min_gain, dict) else min_gain
        if method in references or not method.endswith("/target") or wanted is None:
            continue
        for reference in references:
            if f"{reference}/{dataset}" not in current:
                continue
            gain = now - current[f"{reference}/{dataset}"]
            status = "NaN" if math.isnan(gain) else ("ok" if gain >= wanted - _SLACK else "NO GAIN")
            rows.append(Row(f"{probe} minus {reference}", float(wanted), gain, 0.0, status))
    return rows


def _status(present: bool, base: float, now: float, tolerance: float) -> str:
    if not present:
        return "MISSING"
    if math.isnan(now):
        return "NaN"
    if now - base < -tolerance - _SLACK:
        return "DROP"
    # Baselines are stored rounded to 4 decimals: count only a visible gain as an improvement.
    return "improved" if now - base >= 0.005 else "ok"


def gate_passed(rows: list[Row]) -> bool:
    # No rows means no baseline probe was checked, which must never count as a pass.
    return bool(rows) and all(row.passed for row in rows)


def updated_baseline(old: dict | None, runs: dict[str, list[float]], tolerance: float | None) -> dict:
    """The baseline `--update` writes: current seed means and spreads, keeping per-probe overrides."""
    current = means(runs)
    bad = sorted(k for k, v in current.items() if not math.isfinite(v))
    if bad:
        raise PipelineError(f"refusing to write a baseline with NaN top-1 for {', '.join(bad)}; "
                            f"fix those probe runs first")
    if not current:
        raise PipelineError("no probe results to write a baseline from; run `dvc repro` first")
    old_probes = (old or {}).get("probes", {})
    if tolerance is None:
        tolerance = (old or {}).get("tolerance", DEFAULT_TOLERANCE)
    probes = {}
    for key in sorted(current):
        s = spread(runs[key])
        entry = {"top1": round(s.mean, 4), "seeds": s.n}
        if s.n > 1:
            entry["std"] = round(s.std, 4)
        if "tolerance" in old_probes.get(key, {}):
            entry["tolerance"] = old_probes[key]["tolerance"]
        probes[key] = entry
    new = {"tolerance": tolerance, "probes": probes}
    if (old or {}).get("min_gain_over_random") is not None:
        new["min_gain_over_random"] = old["min_gain_over_random"]
    return new


def baseline_changes(old: dict | None, new: dict) -> list[str]:
    """Human-readable lines saying what `--update` changed."""
    old_probes = (old or {}).get("probes", {})
    lines = []
    if old is None:
        lines.append(f"new baseline with tolerance {new['tolerance']:g}")
    elif old.get("tolerance") != new["tolerance"]:
        lines.append(f"tolerance: {old.get('tolerance')!r} -> {new['tolerance']:g}")
    for key in sorted(set(old_probes) | set(new["probes"])):
        before = old_probes.get(key, {}).get("top1")
        after = new["probes"].get(key, {}).get("top1")
        if before is None:
            lines.append(f"added   {key}: {after:.2f}")
        elif after is None:
            lines.append(f"removed {key} (was {before:.2f})")
        elif before != after:
            lines.append(f"changed {key}: {before:.2f} -> {after:.2f} ({after - before:+.2f})")
    return lines or ["no changes"]


# ---------------------------------------------------------------------------------------------
# Files
# ---------------------------------------------------------------------------------------------

def load_baseline(path: Path) -> dict:
    if not path.exists():
        raise PipelineError(f"baseline {path} not found; create it with `python -m pipeline.gate --update` "
                            f"or pass --baseline PATH")
    try:
        obj = json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise PipelineError(f"baseline {path} is not valid JSON ({e.msg} at line {e.lineno}); "
                            f"fix it or regenerate it with `python -m pipeline.gate --update`") from None
    return validate_baseline(obj, source=f"baseline {path}")


def probe_key(relative: Path) -> str | None:
    """The table cell a record belongs to: <method>/seed<k>/<encoder>/<dataset>.json -> '<method>/<encoder>/<dataset>'
    (a pixel control drawn per seed alike), pixels/<control>/<dataset>.json -> 'pixels/<control>/<dataset>'; None
    for a file of another shape."""
    parts = relative.with_suffix("").parts
    if len(parts) == 4 and parts[1].startswith("seed"):
        return f"{parts[0]}/{parts[2]}/{parts[3]}"
    if len(parts) == 3 and parts[0] == artifacts.PIXELS and parts[1] in artifacts.CONTROLS:
        return "/".join(parts)
    return None


def load_results(results_dir: Path) -> dict[str, list[float]]:
    """{probe: [top1 per seed]} for every probe record under results_dir (artifacts.probe_path's layout).

    An unreadable record or a missing/null top1 reads as NaN so it fails the gate as that probe,
    rather than aborting the whole check.
    """
    runs: dict[str, list[float]] = {}
    for path in sorted(results_dir.rglob("*.json")):
        key = probe_key(path.relative_to(results_dir))
        if key is None:
            continue
        try:
            top1 = read_probe(path).top1
        except PipelineError:
            top1 = math.nan
        runs.setdefault(key, []).append(top1)
    return runs


def means(runs: dict[str, list[float]]) -> dict[str, float]:
    """Each probe's mean over its seeds (NaN if any seed failed)."""
    return {key: spread(values).mean for key, values in runs.items()}


# ---------------------------------------------------------------------------------------------
# Output
# ---------------------------------------------------------------------------------------------

_STYLE = {"ok": "green", "improved": "green", "new": "cyan", "DROP": "bold red", "MISSING": "bold red",
          "SEEDS": "bold red", "NaN": "bold red", "NO GAIN": "bold red"}


def _fmt(value: float, spec: str = ".2f") -> str:
    return "—" if math.isnan(value) else format(value, spec)


def print_rows(rows: list[Row], console) -> None:
    from rich.table import Table

    table = Table(title="Probe top-1, mean over seeds, vs CI baseline (points)")
    for name in ("probe", "baseline", "now", "difference", "tolerance", "status"):
        table.add_column(name, justify="left" if name in ("probe", "status") else "right")
    for row in rows:
        now = "NaN" if row.status == "NaN" else _fmt(row.now)
        table.add_row(row.probe, _fmt(row.baseline), now, _fmt(row.difference, "+.2f"),
                      _fmt(row.tolerance), f"[{_STYLE[row.status]}]{row.status}[/]")
    console.print(table)


def verdict(rows: list[Row]) -> str:
    failed = [row.probe for row in rows if not row.passed]
    checked = sum(row.status != "new" for row in rows)
    if failed:
        return f"FAIL: {len(failed)} of {checked} checks regressed, missing, NaN or without gain: {', '.join(failed)}"
    return f"PASS: {checked} checks within tolerance"


# ---------------------------------------------------------------------------------------------
# CLI
# ---------------------------------------------------------------------------------------------

def _parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m pipeline.gate",
                                     description="Fail CI when a probe top-1 drops below the committed baseline.")
    parser.add_argument("--baseline", type=Path, default=DEFAULT_BASELINE, help="baseline JSON (default: %(default)s)")
    parser.add_argument("--results", type=Path, default=DEFAULT_RESULTS,
                        help="folder of probe records, as the probe stages write them (default: %(default)s)")
    parser.add_argument("--update", action="store_true", help="rewrite the baseline from the current results")
    parser.add_argument("--tolerance", type=float, help="with --update: the global tolerance in points")
    args = parser.parse_args(argv)
    if args.tolerance is not None and not args.update:
        parser.error("--tolerance only applies with --update")
    if args.tolerance is not None and not (math.isfinite(args.tolerance) and args.tolerance >= 0):
        parser.error("--tolerance must be a number >= 0")
    return args


def _update(args: argparse.Namespace, runs: dict[str, list[float]], console) -> int:
    old = None
    if args.baseline.exists():
        try:
            old = load_baseline(args.baseline)
        except PipelineError as e:
            # --update exists precisely to replace a baseline, so a broken one is overwritten, not fatal.
            console.print(f"note: replacing unreadable baseline ({e})", soft_wrap=True)
    new = updated_baseline(old, runs, args.tolerance)
    write_json(args.baseline, new)
    for line in baseline_changes(old, new):
        console.print(line, soft_wrap=True, highlight=False)
    console.print(f"wrote {args.baseline}; commit it with the change that moved the numbers", soft_wrap=True)
    return EXIT_PASS


def main(argv: list[str] | None = None) -> int:
    from rich.console import Console

    console = Console()
    args = _parse(sys.argv[1:] if argv is None else argv)
    runs = load_results(args.results)
    current = means(runs)
    try:
        if args.update:
            return _update(args, runs, console)
        baseline = load_baseline(args.baseline)
    except PipelineError as e:
        print(f"error: {e}", file=sys.stderr)
        return EXIT_ERROR
    if not current:
        print(f"FAIL: no probe results under {args.results}; run `dvc repro` first "
              f"or pass --results DIR")
        return EXIT_FAIL
    rows = compare(baseline, current, {key: len(values) for key, values in runs.items()})
    print_rows(rows, console)
    passed = gate_passed(rows)
    console.print(verdict(rows), style="bold green" if passed else "bold red", soft_wrap=True, highlight=False)
    return EXIT_PASS if passed else EXIT_FAIL


if __name__ == "__main__":
    sys.exit(main())
