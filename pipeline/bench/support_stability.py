"""Is SparseJEPA's support the same across seeds (issue 18, control c)? For every pair of seeds of a set of runs,
latents are matched by their features and the regions each matched pair serves are compared with two baselines
(pipeline/eval/latent_match.py says how). A set is the pipeline's own runs of a method or runs the recipe
harness kept (`python -m pipeline.bench.recipe <trial> <method> <seed> ... --no-probe --keep DIR`):

    python -m pipeline.bench.support_stability <method> <trial>=<root> [<trial>=<root> ...] [--out PATH]
    e.g. python -m pipeline.bench.support_stability sparse_jepa real_regions=. random_regions=/tmp/kept/random
        # prints the table, writes reports/recipe/support_stability.{csv,md} (--out: PATH.{csv,md} instead)

A root holds data/models/<method>/seed<k>/target.pt and reports/pretrain/<method>/seed<k>/outputs.json (the
pipeline's layout; `.` is this repository's runs). Features: the target encoder's tokens on the fixed slice of
FashionMNIST training images the group figure searches ($RECIPE_DATA, as the recipe harness: data prepared for
the setting the runs were trained in), layer-normed without affine as the maps read them and mean-pooled.
Nothing here reads a probe.
"""
from __future__ import annotations

import csv
import itertools
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch

from pipeline import artifacts
from pipeline.artifacts.prepared import load_prepared
from pipeline.artifacts.records import read_outputs
from pipeline.bench import take_option
from pipeline.bench.recipe import data_dir
from pipeline.core.atomic import atomic_path
from pipeline.core.errors import PipelineError
from pipeline.eval.features import load_encoder
from pipeline.eval.latent_match import SupportAgreement, support_agreement
from pipeline.model.functional import fixed_slice, jepa_targets
from pipeline.model.vit import normalize
from pipeline.report.stats import spread
from pipeline.report.tables import fmt_mean_std, markdown_table
from pipeline.runtime.cli import run_stage

IMAGES = 2000  # the group figure's slice (SparseJEPA's TOP_POOL)
OUT = Path("reports/recipe/support_stability")
COLUMNS = (("matched_r", "matched \\|r\\|"), ("any_pair_r", "(any pair)"), ("used_both", "latents both use"),
           ("used_agree", "used/unused agree"), ("used_agree_chance", "(chance)"),
           ("jaccard", "region overlap of matched latents"), ("jaccard_random_pairs", "(random pairs)"),
           ("jaccard_random_regions", "(same count, random regions)"))


@torch.no_grad()
def map_features(target_path: Path, images: np.ndarray) -> torch.Tensor:
    """(N, K) the target encoder's tokens, layer-normed without affine (what the maps read), mean-pooled."""
    encoder, _ = load_encoder(target_path)
    tokens = [encoder(normalize(chunk)).float() for chunk in torch.from_numpy(np.array(images)).split(500)]
    return torch.cat([jepa_targets(t, "layer").mean(1) for t in tokens])


def runs(method: str, root: Path) -> dict[int, tuple[np.ndarray, Path]]:
    """{seed: (support (G, K), target encoder path)} of every seed under `root` that has both."""
    found = {}
    for outputs in sorted((root / "reports" / "pretrain" / method).glob("seed*/outputs.json")):
        seed = int(outputs.parent.name.removeprefix("seed"))
        target = artifacts.encoder_path(method, seed, "target", root / "data")
        norms = read_outputs(outputs).get("column_norms")
        if norms is not None and target.is_file():
            found[seed] = (norms > 0, target)
    if len(found) < 2:
        raise PipelineError(f"{root}: fewer than 2 seeds of {method} with outputs.json and target.pt; run them "
                            f"(dvc repro, or the recipe harness with --keep {root})")
    return found


def pairs(method: str, root: Path, images: np.ndarray) -> list[tuple[int, int, SupportAgreement]]:
    found = runs(method, root)
    features = {seed: map_features(path, images) for seed, (_, path) in found.items()}
    return [(a, b, support_agreement(found[a][0], found[b][0], features[a], features[b]))
            for a, b in itertools.combinations(sorted(found), 2)]


def table_md(results: dict[str, list[tuple[int, int, SupportAgreement]]]) -> str:
    header = ["trial", "seed pairs", *(label for _, label in COLUMNS)]
    rows = []
    for trial, found in results.items():
        cells = [trial, str(len(found))]
        for key, _ in COLUMNS:
            s = spread([float(getattr(agreement, key)) for *_, agreement in found])
            cells.append(fmt_mean_std(s.mean, s.std))
        rows.append(cells)
    return markdown_table(header, rows, align_right_from=1)


def main(argv: list[str]) -> None:
    out, argv = take_option(argv, "--out", "--out reports/recipe/support_stability_standard")
    out = Path(out) if out else OUT
    if len(argv) < 2 or any("=" not in a for a in argv[1:]):
        raise PipelineError("usage: python -m pipeline.bench.support_stability <method> <trial>=<root> ... "
                            "[--out PATH]")
    method, specs = argv[0], dict(a.split("=", 1) for a in argv[1:])
    data = load_prepared(data_dir())
    images = data.train_images[np.sort(fixed_slice(len(data.train_images), IMAGES).numpy())]
    results = {trial: pairs(method, Path(root), images) for trial, root in specs.items()}
    with atomic_path(out.with_suffix(".csv")) as tmp, tmp.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["trial", "seed_a", "seed_b", *asdict(results[next(iter(results))][0][2])])
        for trial, found in results.items():
            for a, b, agreement in found:
                writer.writerow([trial, a, b, *(f"{v:.6g}" for v in asdict(agreement).values())])
    md = table_md(results)
    with atomic_path(out.with_suffix(".md")) as tmp:
        tmp.write_text(md + "\n")
    print(md)


if __name__ == "__main__":
    run_stage(main)
