"""SparseJEPA's groups from pretraining records (rows `python -m pipeline.bench.recipe ... --no-probe` wrote), as
a table: per trial, its pretraining facts as mean ± std over the seeds run, and each fact's paired difference
to a reference trial over the seeds both ran (95% t interval), e.g. real regions against random ones. Beside
groups per used latent, what links cut independently at the run's zero fraction would give (`independent_groups`):
more than that means latents are kept or cut whole, fewer that each keeps links to only some regions.

    python -m pipeline.bench.groups_table reports/recipe/regions_control.csv centre_regions
        # prints the table and writes it to reports/recipe/regions_control_table.md

Nothing here reads a probe: a table of how the maps ended, not of how good the features are.
"""
from __future__ import annotations

from pathlib import Path

import pandas as pd

from pipeline.bench.recipe_table import change_text
from pipeline.config.params import load_params
from pipeline.core.atomic import atomic_path
from pipeline.core.errors import PipelineError
from pipeline.report.stats import paired_difference, spread
from pipeline.report.tables import fmt_difference, fmt_mean_std, markdown_table
from pipeline.runtime.cli import run_stage

FACTS = (("zero_fraction", "zero columns (%)", 100.0), ("groups_per_latent", "groups per latent", 1.0),
         ("groups_per_used_latent", "groups per used latent", 1.0),
         ("independent_groups", "the same, links cut independently", 1.0),
         ("support_stable_steps", "support unchanged (steps)", 1.0),
         ("init_survival_r", "survival ~ init norm (r)", 1.0))
PAIRED = ("zero_fraction", "groups_per_used_latent")


def independent_groups(zero_fraction: float, groups: int) -> float:
    """Groups per used latent if each of a latent's `groups` links were kept with probability 1 - zero_fraction,
    independently: E[count | count >= 1] = G p / (1 - (1 - p)^G)."""
    kept = 1.0 - zero_fraction
    return groups * kept / (1.0 - zero_fraction ** groups) if kept > 0 else 0.0


def by_seed(frame: pd.DataFrame, trial: str, fact: str, scale: float) -> dict[int, float]:
    rows = frame[frame["trial"] == trial]
    return {int(s): float(v) * scale for s, v in zip(rows["seed"], rows[fact])}


def table_md(frame: pd.DataFrame, reference: str, groups: int) -> str:
    frame = frame.assign(independent_groups=[independent_groups(z, groups) for z in frame["zero_fraction"]])
    if reference not in set(frame["trial"]):
        raise PipelineError(f"no trial '{reference}' in the records; name one of: {', '.join(frame['trial'].unique())}")
    facts = [f for f in FACTS if f[0] in frame and frame[f[0]].notna().any()]  # older records lack newer facts
    header = ["trial", "change", "seeds", *(label for _, label, _ in facts),
              *(f"{label} − {reference}" for fact, label, _ in facts if fact in PAIRED)]
    rows = []
    for trial, group in frame.groupby("trial", sort=False):
        cells = [trial, change_text(group["overrides"].iloc[0]), str(len(group))]
        for fact, _, scale in facts:
            s = spread(list(by_seed(frame, trial, fact, scale).values()))
            cells.append(fmt_mean_std(s.mean, s.std))
        for fact, _, scale in facts:
            if fact in PAIRED:
                cells.append("—" if trial == reference else fmt_difference(paired_difference(
                    by_seed(frame, trial, fact, scale), by_seed(frame, reference, fact, scale))))
        rows.append(cells)
    return markdown_table(header, rows, align_right_from=2)


def main(argv: list[str]) -> None:
    if len(argv) != 2:
        raise PipelineError("usage: python -m pipeline.bench.groups_table <records.csv> <reference trial>")
    groups = load_params(["sparsity"]).sparsity.groups  # the records' own: their overrides leave it
    path = Path(argv[0])
    if not path.is_file():
        raise PipelineError(f"{path} not found; write its rows with python -m pipeline.bench.recipe ... --no-probe")
    md = table_md(pd.read_csv(path), argv[1], groups)
    out = path.with_name(f"{path.stem}_table.md")
    with atomic_path(out) as tmp:
        tmp.write_text(md + "\n")
    print(md)


if __name__ == "__main__":
    run_stage(main)
