"""The report's figures (matplotlib, imported lazily: it costs about a second at start-up) and the pure
helpers they use. Every pretrained method is drawn; a panel appears for what some method logs."""
from __future__ import annotations

from pathlib import Path
from typing import Mapping

import numpy as np
import pandas as pd

from pipeline.core.atomic import atomic_path
from pipeline.report.tables import model_name


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

def _pyplot():
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


def _save(fig, path: Path) -> None:
    with atomic_path(path) as tmp:
        # The temporary name ends in .tmp, so the format must be given explicitly.
        fig.savefig(tmp, format="png", dpi=120, bbox_inches="tight")


def plot_pretrain_curves(histories: Mapping[str, pd.DataFrame], path: Path) -> None:
    """Every pretrained method's prediction loss; beside it, the regularisers and the zero-column fraction
    of the methods that log them (penalty, kl, zero_fraction)."""
    plt = _pyplot()
    colours = {m: f"C{i}" for i, m in enumerate(histories)}
    with_terms = {m: h for m, h in histories.items() if any(_series(h, c) for c in ("penalty", "kl"))}
    with_zero = {m: h for m, h in histories.items() if _series(h, "zero_fraction") is not None}
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
        _save(fig, path)
    finally:
        plt.close(fig)


def _plot_prediction_loss(ax, histories: Mapping[str, pd.DataFrame], colours: Mapping[str, str]) -> None:
    # Only loss_jepa compares across methods: a method's total loss adds its own regularisers.
    for model, history in histories.items():
        column = "loss_jepa" if _series(history, "loss_jepa") is not None else "loss"  # an older log
        series = _series(history, column)
        if series is None:
            continue
        x, y = series
        ax.plot(x, y, color=colours[model], alpha=0.25, linewidth=0.8)
        ax.plot(x, _smooth(y), color=colours[model], linewidth=1.8, label=f"{model_name(model)} ({column})")
    ax.set_title("Prediction loss")
    ax.set_xlabel("step")
    ax.set_ylabel("loss")
    ax.grid(alpha=0.3)
    if ax.get_legend_handles_labels()[0]:
        ax.legend()


def _plot_regularisers(ax, histories: Mapping[str, pd.DataFrame], colours: Mapping[str, str]) -> None:
    # Penalty (solid, left axis) and KL (dashed, right axis) live on different scales.
    handles = []
    right = ax.twinx()
    for axis, column, style in ((ax, "penalty", "-"), (right, "kl", "--")):
        axis.set_ylabel(f"{column} ({'solid' if style == '-' else 'dashed'})")
        for model, history in histories.items():
            series = _series(history, column)
            if series is not None:
                x, y = series
                handles += axis.plot(x, _smooth(y), style, color=colours[model], linewidth=1.8,
                                     label=f"{model_name(model)} {column}")
    ax.set_title("Regularisers")
    ax.set_xlabel("step")
    ax.grid(alpha=0.3)
    ax.legend(handles=handles, loc="best")


def _plot_zero_fraction(ax, histories: Mapping[str, pd.DataFrame], colours: Mapping[str, str]) -> None:
    for model, history in histories.items():
        x, y = _series(history, "zero_fraction")
        ax.plot(x, y, color=colours[model], linewidth=1.8, label=model_name(model))
    ax.legend()
    ax.set_ylim(0, 1)
    ax.set_title("Zero latent-to-group columns")
    ax.set_xlabel("step")
    ax.set_ylabel("fraction exactly zero")
    ax.grid(alpha=0.3)


def plot_column_norms(norms: np.ndarray, path: Path, model: str) -> None:
    """Heatmap of the G x K column-norm map, latents sorted by dominant group; exact zeros in white."""
    plt = _pyplot()
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
        ax.set_title(f"{model_name(model)} latent-to-group column norms — exact zeros (white): "
                     f"{zero_fraction(norms):.1%}")
        fig.tight_layout()
        _save(fig, path)
    finally:
        plt.close(fig)
