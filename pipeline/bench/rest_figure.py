"""Does the support come to rest as a run gets longer? (issue 18, item 1; not a DVC stage.) For each run of a
records CSV that `python -m pipeline.bench.recipe ... pretrain.monitor_every=N --no-probe` wrote (its history
beside it, as pipeline.bench.rest_table reads), one line per run in three panels against the map step: the zero
fraction, the columns that changed between zero and non-zero per 100 steps over a window of `WINDOW` steps, and
(for runs that logged it) how many distinct columns changed in the last quarter of the steps so far. A support at
rest has a flat first line and a second that falls to 0; a non-zero second line over a small third is a band of
columns at the threshold that never settles while the rest hold.

    python -m pipeline.bench.rest_figure reports/recipe/support_rest_standard.csv \
        reports/recipe/support_rest_standard.png
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from pipeline.bench.rest_table import histories
from pipeline.core.errors import PipelineError
from pipeline.report.figures import pyplot, save
from pipeline.runtime.cli import run_stage

WINDOW = 100  # steps per flip-rate window: wide enough to average a few logged rows, short against any run


def flip_rate(steps: np.ndarray, flips: np.ndarray, window: int = WINDOW) -> tuple[np.ndarray, np.ndarray]:
    """Changes per 100 steps over the `window` steps before each logged step, from the cumulative change count
    (`flips`) at increasing `steps`; the first rows, with less than a window behind them, are left out."""
    steps, flips = np.asarray(steps, dtype=float), np.asarray(flips, dtype=float)
    keep = steps - window >= steps[0]
    before = np.interp(steps[keep] - window, steps, flips)
    return steps[keep], (flips[keep] - before) * 100.0 / window


def label(record: pd.Series) -> str:
    return f"{record['trial']} s{record['seed']}"


def draw(records: Path, out: Path) -> None:
    frame = pd.read_csv(records)
    if frame.empty:
        raise PipelineError(f"{records} has no runs; write them with python -m pipeline.bench.recipe ... --no-probe")
    plt = pyplot()
    fig, (top, middle, bottom) = plt.subplots(3, 1, figsize=(8, 9), sharex=True)
    try:
        for i, (record, history) in enumerate(histories(records, frame)):
            top.plot(history["step"], 100 * history["zero_fraction"], color=f"C{i}", label=label(record))
            x, rate = flip_rate(history["step"].to_numpy(), history["support_flips"].to_numpy())
            middle.plot(x, rate, color=f"C{i}", linewidth=1)
            if "columns_moved_last_quarter" in history:
                bottom.plot(history["step"], history["columns_moved_last_quarter"], color=f"C{i}")
        top.set_ylabel("zero columns (%)")
        top.legend(fontsize=8)
        middle.set_ylabel(f"columns changed per 100 steps\n(over the last {WINDOW})")
        bottom.set_ylabel("distinct columns changed\nin the last quarter of steps")
        bottom.set_xlabel("step")
        top.set_title("The maps' support: zero fraction and churn as the run goes on")
        for ax in (top, middle, bottom):
            ax.grid(alpha=0.3)
        save(fig, out)
    finally:
        plt.close(fig)


def main(argv: list[str]) -> None:
    if len(argv) != 2:
        raise PipelineError("usage: python -m pipeline.bench.rest_figure <records.csv> <figure.png>")
    records, out = Path(argv[0]), Path(argv[1])
    if not records.is_file():
        raise PipelineError(f"{records} not found; write its rows with python -m pipeline.bench.recipe ... --no-probe")
    draw(records, out)
    print(f"wrote {out}")


if __name__ == "__main__":
    run_stage(main)
