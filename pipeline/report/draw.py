"""The report's figures under reports/figures/, each drawn from the read report (pipeline/report/read.py).

Each function draws one figure and returns it (its name, file and caption), a Skip when the reason it
drew nothing is worth printing, or None; a figure it does not draw is removed, so one left from an
earlier run with other methods or data cannot misdescribe this one. The per-method figures are those a
method's registry `figures` lists (PER_METHOD); the plotting itself is pipeline/report/figures.py.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from pipeline import artifacts
from pipeline.artifacts.prepared import load_prepared
from pipeline.methods import Method
from pipeline.model.regions import region_grid
from pipeline.report.figures import pick_latents, plot_column_norms, plot_groups, plot_pretrain_curves, plot_probe_seeds
from pipeline.report.read import Report
from pipeline.report.sweep_results import Sweep, plot_sweep, sweep_caption, sweep_name
from pipeline.report.tables import method_name, row_label

TOP_LATENTS = 8  # rows of the group figure


@dataclass(frozen=True)
class Figure:
    name: str
    path: Path
    caption: str  # what the Markdown says it shows


@dataclass(frozen=True)
class Skip:
    name: str
    reason: str


def _not_drawn(path: Path, skip: Skip | None = None) -> Skip | None:
    path.unlink(missing_ok=True)
    return skip


def probe_seeds(report: Report, figures: Path) -> Figure:
    path = figures / "probe_seeds.png"
    plot_probe_seeds(report.frame, [(row.method, row.encoder, row_label(row)) for row in report.rows], report.names,
                     path)
    return Figure("probe_seeds", path, "every probe run, seeds as dots")


def pretrain_curves(report: Report, figures: Path) -> Figure | Skip:
    path = figures / "pretrain_curves.png"
    if not report.histories:
        return _not_drawn(path, Skip("pretrain_curves", "no pretrained method has a history.csv"))
    plot_pretrain_curves(report.histories, path)
    return Figure("pretrain_curves", path, "pretraining curves, every seed")


def column_norms(report: Report, method: Method, figures: Path, data: Path) -> Figure | None:
    """The method's latent-to-group column-norm map of the first seed (its outputs.json)."""
    name = f"column_norms_{method.key}"
    path = figures / f"{name}.png"
    norms = report.outputs.get(method.key, {}).get("column_norms")
    if norms is None:
        return _not_drawn(path)
    plot_column_norms(norms, path, method.key)
    return Figure(name, path, f"{method_name(method.key)} column-norm map, seed {report.setting.seeds[0]}")


def groups(report: Report, method: Method, figures: Path, data: Path) -> Figure | Skip | None:
    """Its largest latents of the first seed: the regions each serves and the training images (of the
    pretraining dataset prepared under `data`) that activate it most."""
    name = f"groups_{method.key}"
    path = figures / f"{name}.png"
    outputs = report.outputs.get(method.key, {})
    norms = outputs.get("column_norms")
    if norms is None:
        return _not_drawn(path)
    latents = pick_latents(norms, TOP_LATENTS)
    if not len(latents):  # a map that cut every column leaves no latent to show
        return _not_drawn(path, Skip(name, "every latent-to-group column is zero"))
    if len(outputs.get("top_images", ())) != norms.shape[1]:  # a record from before it had a row per latent
        return _not_drawn(path)
    images = load_prepared(artifacts.prepared_dir(report.setting.pretrain_dataset, data), mmap=True).train_images
    plot_groups(norms, latents, outputs["top_images"][latents], images, region_grid(len(norms)), path, method.key,
                outputs.get("brightness_r"))
    bright = (", each with its pooled feature's correlation with image brightness (r)"
              if outputs.get("brightness_r") is not None else "")
    return Figure(name, path, f"{method_name(method.key)}: single-region and largest latents, the regions they serve "
                              f"and the images that activate them{bright}, seed {report.setting.seeds[0]}")


PER_METHOD = {"column_norms": column_norms, "groups": groups}  # registry `figures` -> what draws it


def sweep(report: Report, swept: Method, figures: Path) -> Figure | None:
    """A swept method's collected sweep, when it is reported and one was collected."""
    path = figures / f"{sweep_name(swept)}.png"
    found: Sweep | None = report.sweeps.get(swept.key)
    if found is None:
        return _not_drawn(path)
    pretrain = report.setting.pretrain_dataset
    plot_sweep(found, path, report.names.get(pretrain, pretrain))
    return Figure(sweep_name(swept), path, sweep_caption(found))


def remove_unreported(report: Report, figures: Path) -> None:
    """Per-method figures of methods no longer reported."""
    keys = {m.key for m in report.methods}
    for kind in PER_METHOD:
        for stale in figures.glob(f"{kind}_*.png"):
            if stale.stem.removeprefix(f"{kind}_") not in keys:
                stale.unlink(missing_ok=True)


def draw_figures(report: Report, figures: Path, data: Path, swept: list[Method]) -> list[Figure | Skip]:
    """Every figure of the report, in the order the Markdown lists them: the probe runs, the pretraining
    curves, each method's own figures (registry order), then the sweeps of `swept` methods."""
    remove_unreported(report, figures)
    out: list[Figure | Skip | None] = [probe_seeds(report, figures), pretrain_curves(report, figures)]
    for method in report.methods:
        for kind, draw in PER_METHOD.items():
            if kind in method.figures:
                out.append(draw(report, method, figures, data))
            else:
                _not_drawn(figures / f"{kind}_{method.key}.png")
    out += [sweep(report, m, figures) for m in swept]
    return [f for f in out if f is not None]
