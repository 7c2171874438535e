"""The report's figures (matplotlib, imported lazily: it costs about a second at start-up) and the pure
helpers they use. Every pretrained method is drawn; a panel appears for what some method logs."""
from __future__ import annotations

from pathlib import Path
from typing import Mapping

import numpy as np
import pandas as pd

from pipeline.artifacts import CONTROLS, PIXELS
from pipeline.core.atomic import atomic_path
from pipeline.report.tables import method_name


def zero_fraction(norms: np.ndarray) -> float:
    """Fraction of latent-to-group columns whose norm is exactly zero (pruned, not merely small)."""
    return float(np.mean(norms == 0.0))


def sort_latents_by_group(norms: np.ndarray) -> np.ndarray:
    """Column order that groups latent dims by their dominant group, strongest first within a group.

    All-zero latents go last: argmax would otherwise file them under group 0 and blur its block.
    """
    dominant = np.argmax(norms, axis=0)
    strength = norms.max(axis=0)
    dominant = np.where(strength > 0, dominant, norms.shape[0])
    return np.lexsort((-strength, dominant))


def pick_latents(norms: np.ndarray, count: int) -> np.ndarray:
    """Latents for the group figure: for each group, the strongest latent that serves it alone (the
    specialists, if the lasso made any), then the largest total column norms; never an unused latent."""
    alive = norms > 0
    specialists = alive.sum(axis=0) == 1
    chosen = []
    for g in range(norms.shape[0]):
        candidates = np.flatnonzero(specialists & alive[g])
        if len(candidates):
            chosen.append(int(candidates[np.argmax(norms[g, candidates])]))
    for j in np.argsort(-norms.sum(axis=0), kind="stable"):
        if len(chosen) >= count or not alive[:, j].any():
            break
        if int(j) not in chosen:
            chosen.append(int(j))
    return np.array(chosen[:count], dtype=int)


def _smooth(values: np.ndarray, points: int = 60) -> np.ndarray:
    """Rolling mean so the trend shows through per-step noise; window scales with run length."""
    window = max(1, len(values) // points)
    return pd.Series(values).rolling(window, min_periods=1).mean().to_numpy()


def _series(history: pd.DataFrame, column: str) -> tuple[np.ndarray, np.ndarray] | None:
    if column not in history:
        return None
    x_col = "step" if "step" in history else None
    frame = history[[c for c in (x_col, column) if c]].dropna()
    if frame.empty:
        return None
    x = frame[x_col].to_numpy() if x_col else frame.index.to_numpy()
    return x, frame[column].to_numpy()


# ---------------------------------------------------------------------------------------------
# Plotting (matplotlib imported lazily: it costs about a second at startup)
# ---------------------------------------------------------------------------------------------

def pyplot():
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


def save(fig, path: Path) -> None:
    with atomic_path(path) as tmp:
        # The temporary name ends in .tmp, so the format must be given explicitly.
        fig.savefig(tmp, format="png", dpi=120, bbox_inches="tight")


def plot_probe_seeds(frame: pd.DataFrame, rows: list[tuple[str, str, str]], dataset_names: Mapping[str, str],
                     path: Path) -> None:
    """One panel per dataset: every probe run's top-1 as a dot (one per seed), each row's mean as a short
    horizontal line, the raw pixels as a dashed line, so the seed spread is seen beside the gaps between rows.
    A failed (NaN) run is counted under its row, and its row gets no mean, as in the table.
    `rows`: (method, encoder, label) in the table's order."""
    plt = pyplot()
    datasets = list(dict.fromkeys(frame["dataset"]))
    fig, axes = plt.subplots(1, max(1, len(datasets)), figsize=(1.2 + 1.1 * len(rows) * max(1, len(datasets)), 4.2),
                             squeeze=False)
    try:
        for ax, dataset in zip(axes[0], datasets):
            part = frame[frame["dataset"] == dataset]
            for i, (method, encoder, _) in enumerate(rows):
                runs = part[(part["method"] == method) & (part["encoder"] == encoder)]["top1"].to_numpy(dtype=float)
                if not len(runs):
                    continue
                failed = int(np.isnan(runs).sum())
                if not failed:
                    if (method, encoder) == (PIXELS, CONTROLS[0]):  # the raw pixels
                        ax.axhline(runs.mean(), color="grey", linestyle="--", linewidth=1)
                    # A mark, not a bar: the axis is zoomed to the runs, and a bar cut at its floor would
                    # draw the gaps between rows as ratios of height.
                    ax.hlines(runs.mean(), i - 0.3, i + 0.3, color=f"C{i}", linewidth=2.5)
                else:
                    ax.text(i, 0.02, f"{failed} failed", transform=ax.get_xaxis_transform(), ha="center",
                            va="bottom", fontsize=8, color="red")
                ax.plot(np.full(len(runs), i) + np.linspace(-0.15, 0.15, len(runs)), runs, "o", color=f"C{i}",
                        markersize=5, alpha=0.8)
            ax.set_xticks(range(len(rows)))
            ax.set_xticklabels([label for _, _, label in rows], rotation=30, ha="right", fontsize=8)
            values = part["top1"].to_numpy(dtype=float)
            finite = values[np.isfinite(values)]
            if len(finite):
                low, high = finite.min(), finite.max()
                margin = max(1.0, 0.15 * (high - low))
                ax.set_ylim(max(0.0, low - margin), min(100.0, high + margin))
            ax.set_title(f"{dataset_names.get(dataset, dataset)}: linear-probe top-1")
            ax.set_ylabel("top-1 (%)")
            ax.grid(axis="y", alpha=0.3)
        fig.tight_layout()
        save(fig, path)
    finally:
        plt.close(fig)


def plot_pretrain_curves(histories: Mapping[tuple[str, int], pd.DataFrame], path: Path) -> None:
    """Every pretrained method's prediction loss, one line per seed in the method's colour; beside it, the
    regularisers and the zero-column fraction of the methods that log them (penalty, kl, zero_fraction)."""
    plt = pyplot()
    methods_drawn = list(dict.fromkeys(m for m, _ in histories))
    colours = {m: f"C{i}" for i, m in enumerate(methods_drawn)}
    with_terms = {k: h for k, h in histories.items() if any(_series(h, c) for c in ("penalty", "kl"))}
    with_zero = {k: h for k, h in histories.items() if _series(h, "zero_fraction") is not None}
    n_panels = 1 + bool(with_terms) + bool(with_zero)
    fig, axes = plt.subplots(1, n_panels, figsize=(5.5 * n_panels, 4), squeeze=False)
    axes = list(axes[0])
    try:
        _plot_prediction_loss(axes.pop(0), histories, colours)
        if with_terms:
            _plot_regularisers(axes.pop(0), with_terms, colours)
        if with_zero:
            _plot_zero_fraction(axes.pop(0), with_zero, colours)
        fig.tight_layout()
        save(fig, path)
    finally:
        plt.close(fig)


def _label_once(seen: set, text: str) -> str:
    """A legend label the first time (one entry per method, not per seed)."""
    if text in seen:
        return "_nolegend_"
    seen.add(text)
    return text


def _plot_prediction_loss(ax, histories: Mapping[tuple[str, int], pd.DataFrame], colours: Mapping[str, str]) -> None:
    # Only loss_jepa compares across methods: a method's total loss adds its own regularisers.
    seen: set = set()
    for (method, _), history in histories.items():
        column = "loss_jepa" if _series(history, "loss_jepa") is not None else "loss"  # an older log
        series = _series(history, column)
        if series is None:
            continue
        x, y = series
        ax.plot(x, y, color=colours[method], alpha=0.15, linewidth=0.8)
        ax.plot(x, _smooth(y), color=colours[method], linewidth=1.5,
                label=_label_once(seen, f"{method_name(method)} ({column})"))
    ax.set_title("Prediction loss (one line per seed)")
    ax.set_xlabel("step")
    ax.set_ylabel("loss")
    ax.grid(alpha=0.3)
    if ax.get_legend_handles_labels()[0]:
        ax.legend()


def _plot_regularisers(ax, histories: Mapping[tuple[str, int], pd.DataFrame], colours: Mapping[str, str]) -> None:
    # Penalty (solid, left axis) and KL (dashed, right axis) live on different scales.
    handles = []
    seen: set = set()
    right = ax.twinx()
    for axis, column, style in ((ax, "penalty", "-"), (right, "kl", "--")):
        axis.set_ylabel(f"{column} ({'solid' if style == '-' else 'dashed'})")
        for (method, _), history in histories.items():
            series = _series(history, column)
            if series is not None:
                x, y = series
                handles += axis.plot(x, _smooth(y), style, color=colours[method], linewidth=1.5,
                                     label=_label_once(seen, f"{method_name(method)} {column}"))
    ax.set_title("Regularisers")
    ax.set_xlabel("step")
    ax.grid(alpha=0.3)
    ax.legend(handles=[h for h in handles if not h.get_label().startswith("_")], loc="best")


def _plot_zero_fraction(ax, histories: Mapping[tuple[str, int], pd.DataFrame], colours: Mapping[str, str]) -> None:
    seen: set = set()
    for (method, _), history in histories.items():
        x, y = _series(history, "zero_fraction")
        ax.plot(x, y, color=colours[method], linewidth=1.5, label=_label_once(seen, method_name(method)))
    ax.legend()
    ax.set_ylim(0, 1)
    ax.set_title("Zero latent-to-group columns")
    ax.set_xlabel("step")
    ax.set_ylabel("fraction exactly zero")
    ax.grid(alpha=0.3)


def plot_column_norms(norms: np.ndarray, path: Path, method: str) -> None:
    """Heatmap of the G x K column-norm map, latents sorted by dominant group; exact zeros in white."""
    plt = pyplot()
    ordered = norms[:, sort_latents_by_group(norms)]
    groups, latents = norms.shape
    cmap = plt.get_cmap("viridis").with_extremes(bad="white")
    fig, ax = plt.subplots(figsize=(10, min(8.0, 2.5 + 0.25 * groups)))
    try:
        image = ax.imshow(np.ma.masked_equal(ordered, 0.0), aspect="auto", interpolation="nearest",
                          cmap=cmap, vmin=0.0, vmax=max(float(norms.max()), 1e-12))
        fig.colorbar(image, ax=ax, label=r"$\|W^{(g)}[:, j]\|_2$")
        ax.set_xlabel(f"latent dimension j (sorted by dominant group; K = {latents})")
        ax.set_ylabel(f"group g (G = {groups})")
        ax.set_yticks(range(groups))
        ax.set_title(f"{method_name(method)} latent-to-group column norms — exact zeros (white): "
                     f"{zero_fraction(norms):.1%}")
        fig.tight_layout()
        save(fig, path)
    finally:
        plt.close(fig)


def plot_groups(norms: np.ndarray, latents: np.ndarray, top_images: np.ndarray, images: np.ndarray,
                region_grid: tuple[int, int], path: Path, method: str, brightness_r: np.ndarray | None = None) -> None:
    """What the groups are: one row per latent of `latents` (see `pick_latents`), its column norms laid out on
    the image's region grid (which regions it serves; an exact zero is a cut link, white) and the training
    images that activate it most (`top_images`, one row per latent shown: indices into `images`, uint8 NHWC).
    With `brightness_r` (one per latent), each row also says how much the latent tracks image brightness."""
    plt = pyplot()
    rows, shown = len(latents), top_images.shape[1]
    cmap = plt.get_cmap("viridis").with_extremes(bad="white")
    fig, axes = plt.subplots(rows, shown + 1, figsize=(1.1 * (shown + 1) + 0.6, 1.15 * rows + 0.6), squeeze=False)
    try:
        vmax = max(float(norms.max()), 1e-12)
        for r, (latent, picks) in enumerate(zip(latents.astype(int), top_images.astype(int))):
            served = norms[:, latent].reshape(region_grid)
            axes[r, 0].imshow(np.ma.masked_equal(served, 0.0), cmap=cmap, vmin=0.0, vmax=vmax, interpolation="nearest")
            bright = "" if brightness_r is None else f"\nbrightness r {brightness_r[latent]:+.2f}"
            axes[r, 0].set_ylabel(f"latent {latent}\n{int((served > 0).sum())}/{served.size} regions{bright}", fontsize=7)
            for c, index in enumerate(picks, start=1):
                image = images[index]
                axes[r, c].imshow(image[..., 0] if image.shape[-1] == 1 or np.ptp(image, axis=-1).max() == 0
                                  else image, cmap="gray", vmin=0, vmax=255)
        for ax in axes.flat:
            ax.set_xticks([])
            ax.set_yticks([])
        axes[0, 0].set_title("regions served", fontsize=8)
        axes[0, 1 + shown // 2].set_title("training images that activate the latent most", fontsize=8)
        fig.suptitle(f"{method_name(method)}: each region's strongest single-region latent, then the largest maps; "
                     "what they serve and respond to",
                     fontsize=9)
        fig.tight_layout()
        save(fig, path)
    finally:
        plt.close(fig)
