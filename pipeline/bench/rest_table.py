"""Is a method's group-map support at rest when pretraining ends? (issue 18, item 1; not a DVC stage.) From the
records `python -m pipeline.bench.recipe <trial> <method> <seed> ... pretrain.monitor_every=N --no-probe` wrote
(a records CSV and, beside it, history/<trial>_<method>_s<seed>.csv with every logged step), one row per run: the
zero fraction at a quarter, half, three quarters and the end of the run, how many columns changed between zero and
non-zero in its last quarter (0: the support stopped changing), how many distinct columns those changes were and
the share of the maps' norm they hold at the end (dashes for runs logged before these were; many changes from few
columns holding little of the norm: the maps at rest but for a band of columns at the threshold), the steps since
the last change, the selection rule's check at the end (the live columns' mean averaged-gradient norm over
lambda / (G*K), which sits at 1 at the fixed point, and the largest zero column's, at most 1 there), the JEPA loss
at half-way and at the end (a falling loss shrinks the gradients the rule reads), and from the record the groups
per latent and the correlation of a column's survival with its initial norm (the goals' facts; a dash where the
record has none).

    python -m pipeline.bench.rest_table reports/recipe/dual_averaging.csv
        # prints the table and writes it to reports/recipe/dual_averaging_table.md

Nothing here reads a probe.
"""
from __future__ import annotations

from pathlib import Path

import pandas as pd

from pipeline.bench.recipe_table import items_text, overrides_of, ratio
from pipeline.core.atomic import atomic_path
from pipeline.core.errors import PipelineError
from pipeline.report.tables import markdown_table
from pipeline.runtime.cli import run_stage

QUARTERS = (0.25, 0.5, 0.75)
HEADER = ["trial", "change", "seed", "steps", *(f"zero at {q:.0%} of steps" for q in QUARTERS), "zero at the end",
          "columns flipped in the last quarter", "distinct columns flipped in it", "their share of the maps' norm",
          "support unchanged (steps)", "live grad / threshold",
          "largest zero-column grad / threshold", "JEPA loss, half-way -> end", "groups per latent",
          "survival ~ init norm (r)"]


def history_path(records: Path, record: pd.Series) -> Path:
    return records.parent / "history" / f"{record['trial']}_{record['method']}_s{record['seed']}.csv"


def nearest(history: pd.DataFrame, step: float) -> pd.Series:
    """The logged row whose step is nearest `step`."""
    return history.iloc[(history["step"] - step).abs().argmin()]


def shared_overrides(frame: pd.DataFrame) -> dict:
    """The overrides every record has, with the same value: said once above the table, not in every row."""
    every = [overrides_of(o) for o in frame["overrides"]]
    return {k: v for k, v in every[0].items() if all(k in o and o[k] == v for o in every)} if every else {}


def run_row(record: pd.Series, history: pd.DataFrame, shared: dict) -> list[str]:
    last = history.iloc[-1]
    steps = int(last["step"])
    at = {q: nearest(history, q * steps) for q in QUARTERS}
    own = {k: v for k, v in overrides_of(record["overrides"]).items() if k not in shared}
    return [str(record["trial"]), items_text(own), str(record["seed"]), str(steps),
            *(f"{at[q]['zero_fraction']:.1%}" for q in QUARTERS), f"{last['zero_fraction']:.1%}",
            f"{int(last['support_flips'] - at[0.75]['support_flips']):,}",
            ratio(last.get("columns_moved_last_quarter"), "{:,.0f}"), ratio(last.get("moved_norm_share"), "{:.1%}"),
            str(int(last["support_stable_steps"])),
            ratio(last.get("kkt_live_mean")), ratio(last.get("kkt_zero_max")),
            f"{at[0.5]['loss_jepa']:.4f} -> {last['loss_jepa']:.4f}", ratio(record.get("groups_per_latent")),
            ratio(record.get("init_survival_r"), "{:+.2f}")]


def histories(records: Path, frame: pd.DataFrame):
    """(record, its logged history with the zero fraction, in step order) for each run of `frame`."""
    for _, record in frame.iterrows():
        path = history_path(records, record)
        if not path.is_file():
            raise PipelineError(f"{path} not found; re-run trial {record['trial']} with pretrain.monitor_every=N "
                                "(the recipe bench writes a run's history only then)")
        yield record, pd.read_csv(path).dropna(subset=["zero_fraction"]).sort_values("step")


def table_md(records: Path) -> str:
    frame = pd.read_csv(records)
    shared = shared_overrides(frame)
    rows = [run_row(record, history, shared) for record, history in histories(records, frame)]
    every = f"Every run: {items_text(shared)}.\n\n" if shared else ""
    return every + markdown_table(HEADER, rows, align_right_from=3)


def main(argv: list[str]) -> None:
    if len(argv) != 1:
        raise PipelineError("usage: python -m pipeline.bench.rest_table <records.csv>")
    path = Path(argv[0])
    if not path.is_file():
        raise PipelineError(f"{path} not found; write its rows with python -m pipeline.bench.recipe ... --no-probe")
    md = table_md(path)
    with atomic_path(path.with_name(f"{path.stem}_table.md")) as tmp:
        tmp.write_text(md + "\n")
    print(md)


if __name__ == "__main__":
    run_stage(main)
