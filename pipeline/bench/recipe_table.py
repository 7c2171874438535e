"""The recipe trials' validation numbers as one table: reports/recipe/validation.csv -> validation.md; and the
earlier trials, which read test, as they were measured: reports/recipe/results.csv -> results.md.

    python -m pipeline.bench.recipe_table      # prints them, writes both .md files (README copies them)
    python -m pipeline.bench.recipe_table <records.csv> <baseline trial>
        # another records file (e.g. a setting's own trials): its table paired with that trial, and each trial's
        # non-inferiority verdicts against it; writes <records>.md
    python -m pipeline.bench.recipe_table <records.csv> <baseline trial> --steps a:b[,c:d...]
        # and a ladder: each trial a judged against the trial b it adds one thing to

A row per trial (its name and overrides, as `python -m pipeline.bench.recipe` ran it): each validation probe of
the target encoder as mean ± std over the seeds run, the context encoder's linear probe, the pretraining's
effective rank and time, and the paired difference to the baseline trial over the seeds both ran (95% t
interval; a trial with one seed has none, so it can only rank candidates for more seeds). Only validation is
read: these numbers choose recipes, test is read once per final configuration.
"""
from __future__ import annotations

import json
import math
from pathlib import Path

import pandas as pd

from pipeline.bench import take_option
from pipeline.config.params import load_params
from pipeline.core.atomic import atomic_path
from pipeline.core.errors import PipelineError
from pipeline.report.stats import Difference, paired_difference, spread
from pipeline.report.tables import fmt_difference, fmt_mean_std, fmt_points, markdown_table
from pipeline.runtime.cli import run_stage

CSV = Path("reports/recipe/validation.csv")
OUT = CSV.with_suffix(".md")
TEST_CSV = Path("reports/recipe/results.csv")  # the trials made before the validation protocol
TEST_OUT = TEST_CSV.with_suffix(".md")
DASH = "—"
BASELINE = "jepa"  # the trial every other is paired with
PROBES = (("target_val_top1", "linear"), ("target_knn_val_top1", "k-NN"),
          ("target_low_label_10_val_top1", "10 / class"), ("target_low_label_100_val_top1", "100 / class"),
          ("context_val_top1", "context linear"))
PAIRED = (("target_val_top1", "linear"), ("target_knn_val_top1", "k-NN"),
          ("target_low_label_10_val_top1", "10 / class"))
# Judged for "as good as the baseline": both encoders' full linear and k-NN probes.
JUDGED = (("target_val_top1", "target linear"), ("target_knn_val_top1", "target k-NN"),
          ("context_val_top1", "context linear"), ("context_knn_val_top1", "context k-NN"))


def overrides_of(overrides: str) -> dict:
    """A trial's overrides as the recipe harness records them (JSON; empty or missing: none)."""
    return json.loads(overrides) if isinstance(overrides, str) and overrides else {}


def items_text(found: dict) -> str:
    """Overrides as `key: value` items, or a dash."""
    return ", ".join(f"`{k}: {v}`" for k, v in found.items()) or DASH


def change_text(overrides: str) -> str:
    """A trial's overrides (JSON, as the recipe harness records them) as `key: value` items, or a dash."""
    return items_text(overrides_of(overrides))


def ratio(value: float | None, form: str = "{:.2f}") -> str:
    """A ratio (or any number) in `form`, two places by default, or a dash where there is none (NaN, None)."""
    return DASH if value is None or pd.isna(value) else form.format(value)


def _by_seed(rows: pd.DataFrame, column: str) -> dict[int, float]:
    return {int(s): float(v) for s, v in zip(rows["seed"], rows[column])}


def _cell(rows: pd.DataFrame, column: str, with_std: bool = True) -> str:
    values = [float(v) for v in rows[column]]
    if all(math.isnan(v) for v in values):
        return DASH  # a probe this row has not (the pixel control has no context encoder)
    s = spread(values)
    return fmt_mean_std(s.mean, s.std if with_std else math.nan)


def table_md(frame: pd.DataFrame, baseline: str = BASELINE) -> str:
    """Markdown: a row per (trial, method) in first-run order, paired with the baseline trial's seeds."""
    frame = frame.drop_duplicates(["trial", "method", "seed"], keep="last")  # a re-run seed: its latest row
    base = frame[frame["trial"] == baseline]
    head = ["trial", "method", "change", "seeds", *(name for _, name in PROBES),
            *(f"{name} − {baseline}" for _, name in PAIRED), "effective rank", "pretraining (wall, as run)"]
    lines = []
    for (trial, method), rows in frame.groupby(["trial", "method"], sort=False):
        rows = rows.sort_values("seed")
        paired = [DASH if trial == baseline or base.empty
                  else fmt_difference(paired_difference(_by_seed(rows, col), _by_seed(base, col)))
                  for col, _ in PAIRED]
        wall = float(rows["wall_s"].mean())
        cells = [trial, method, change_text(rows["overrides"].iloc[0]), ", ".join(str(s) for s in rows["seed"]),
                 *(_cell(rows, col) for col, _ in PROBES), *paired, _cell(rows, "effective_rank", with_std=False),
                 DASH if not wall or math.isnan(wall) else f"{wall:.0f} s"]
        lines.append(cells)
    return markdown_table(head, lines, align_right_from=3) + "\n"


def verdict_cell(d: Difference, margin: float, effect: float) -> str:
    """"-0.40 [-0.90, +0.10]: non-inferior (detectable ±0.80; 1 point: 3 seeds)"; a dash without an interval."""
    if math.isnan(d.low):
        return DASH
    need = d.seeds_to_detect(effect)
    verdict = d.non_inferiority(margin)
    return (f"{fmt_points(d.mean)} [{fmt_points(d.low)}, {fmt_points(d.high)}]: {verdict} "
            f"(detectable ±{d.detectable:.2f}; {effect:g} point: {need if need else 'no number of'} seeds)")


def _verdicts(rows: pd.DataFrame, base: pd.DataFrame, margin: float, effect: float) -> list[str] | None:
    """[paired seeds, a verdict cell per JUDGED probe] of rows against base; None under two paired seeds."""
    seeds = sorted(set(rows["seed"]) & set(base["seed"]))
    if len(seeds) < 2:
        return None
    return [", ".join(str(s) for s in seeds),
            *(verdict_cell(paired_difference(_by_seed(rows, col), _by_seed(base, col)), margin, effect)
              for col, _ in JUDGED)]


def _trial_rows(frame: pd.DataFrame, trial: str, role: str = "trial") -> pd.DataFrame:
    rows = frame[frame["trial"] == trial]
    if rows.empty:
        raise PipelineError(f"no rows of the {role} '{trial}'; name a trial the records file has")
    return rows


def noninferiority_md(frame: pd.DataFrame, baseline: str, margin: float, effect: float = 1.0) -> str:
    """Markdown: each trial against the baseline trial, probe by probe: the paired difference over the seeds both
    ran, its 95% interval, the verdict at `margin` (non-inferior: low end above -margin; worse: whole interval
    below 0; else undetermined), the smallest difference those seeds detect at 80% power, and how many seeds
    would detect `effect` points at this spread. A trial with fewer than two paired seeds has no interval and no
    row."""
    frame = frame.drop_duplicates(["trial", "method", "seed"], keep="last")
    base = _trial_rows(frame, baseline, "baseline trial")
    lines = []
    for (trial, method), rows in frame.groupby(["trial", "method"], sort=False):
        found = None if trial == baseline else _verdicts(rows, base, margin, effect)
        if found:
            lines.append([trial, method, *found])
    head = ["trial", "method", "paired seeds", *(f"{name} − {baseline}" for _, name in JUDGED)]
    return markdown_table(head, lines, align_right_from=3) + "\n"


def steps_md(frame: pd.DataFrame, steps: list[tuple[str, str]], margin: float, effect: float = 1.0) -> str:
    """Markdown: a row per (a, b) step of a ladder, a − b paired by seed with the verdicts of noninferiority_md,
    so a rung is judged against the rung below it (what one addition costs), not only against the baseline."""
    frame = frame.drop_duplicates(["trial", "method", "seed"], keep="last")
    lines = []
    for a, b in steps:
        found = _verdicts(_trial_rows(frame, a), _trial_rows(frame, b), margin, effect)
        if found is None:
            raise PipelineError(f"'{a}' and '{b}' share fewer than two seeds; run both on the same seeds")
        lines.append([a, b, *found])
    head = ["a", "b", "paired seeds", *(f"{name}, a − b" for _, name in JUDGED)]
    return markdown_table(head, lines, align_right_from=3) + "\n"


def parse_steps(text: str) -> list[tuple[str, str]]:
    """'a:b,c:d' -> [(a, b), (c, d)]."""
    steps = [tuple(part.split(":")) for part in text.split(",") if part]
    if not steps or any(len(step) != 2 or not all(step) for step in steps):
        raise PipelineError(f"--steps '{text}' is not a:b[,c:d...] (trial a judged against trial b)")
    return steps


def render(csv_path: Path = CSV, baseline: str = BASELINE, margin: float | None = None,
           steps: list[tuple[str, str]] = ()) -> str:
    """The validation table; with a margin, each trial's non-inferiority verdicts against the baseline after it,
    and then those of each ladder step a − b in `steps`."""
    frame = pd.read_csv(csv_path)
    text = (f"Validation top-1 on the pretraining data's held-out train split (`{csv_path}`; target encoder "
            f"unless named; mean ± std over the seeds run; the raw-pixel rows use the same seed-carved splits; "
            f"pretraining wall time is as run, often beside other jobs, so not a speed measurement):\n\n"
            + table_md(frame, baseline))
    if margin is None:
        return text
    text += (f"\nAgainst `{baseline}`, paired by seed, 95% t interval; *non-inferior*: the interval's low end "
             f"lies above -{margin:g} point (params.yaml `report.non_inferiority_margin`), and *better* too where it "
             f"lies above 0; *worse*: the whole interval lies below 0, else *undetermined*; *detectable*: the "
             f"smallest true difference these seeds catch at 80% power (trials with one seed have no interval and "
             f"are left out):\n\n"
             + noninferiority_md(frame, baseline, margin))
    if steps:
        text += ("\nStep by step: each trial a against the trial b it adds one thing to, paired by seed, the same "
                 "verdicts:\n\n" + steps_md(frame, steps, margin))
    return text


def earlier_trials_md(frame: pd.DataFrame) -> str:
    """Markdown: the earlier trials a row each, in the order run, with the test top-1 of both encoders and the
    target's EMA-init and position shares (seed 0 unless named)."""
    head = ["trial", "method", "seed", "change", "target test top-1", "context test top-1", "EMA init share",
            "position share"]
    rows = [[r.trial, r.method, str(r.seed), change_text(r.overrides), f"{r.target_top1:.2f}", f"{r.context_top1:.2f}",
             f"{r.ema_init_share:.1%}", f"{r.position_share:.1%}"] for r in frame.itertuples()]
    return markdown_table(head, rows, align_right_from=4) + "\n"


def render_earlier_trials(csv_path: Path = TEST_CSV) -> str:
    return (f"The earlier recipe trials (`{csv_path}`), on the quick setting as the code then was; **they read the "
            f"test split** (made before the validation protocol), so they are what was measured, not choices:\n\n"
            + earlier_trials_md(pd.read_csv(csv_path)))


def main(argv: list[str]) -> None:
    steps_text, argv = take_option(argv, "--steps", "--steps a:b[,c:d...]")
    if argv:
        if len(argv) != 2:
            raise PipelineError("usage: python -m pipeline.bench.recipe_table [<records.csv> <baseline trial> "
                                "[--steps a:b,...]]")
        records = Path(argv[0])
        if not records.is_file():
            raise PipelineError(f"{records} not found; name a records file python -m pipeline.bench.recipe wrote")
        margin = load_params(["report"]).report.non_inferiority_margin
        steps = parse_steps(steps_text) if steps_text else []
        outputs = ((render(records, argv[1], margin, steps), records.with_suffix(".md")),)
    elif steps_text:
        raise PipelineError("--steps needs a records file and its baseline trial before it")
    else:
        outputs = ((render(), OUT), (render_earlier_trials(), TEST_OUT))
    for text, out in outputs:
        print(text)
        with atomic_path(out) as tmp:
            tmp.write_text(text)
        print(f"wrote {out}")


if __name__ == "__main__":
    run_stage(main)
