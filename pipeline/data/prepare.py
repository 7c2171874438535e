"""`prepare`: a dataset's official files -> verified raw folder -> prepared arrays (pipeline/artifacts/prepared.py).

Each dataset is a module in sources/ named by its key (see catalog.py for what it provides). The
steps shared by all of them live here and in the modules they call:

  1. find or fetch the official files: raw folder, then the mirror, then the official URL, each
     md5-checked (download.py); an extracted official tree is used in place where one exists;
  2. read the small files (lists, annotations) into a Catalog and check it;
  3. keep a per-class subset of each split (subsets.py);
  4. stream, decode, resize and write the kept images, resumably (convert.py).
"""
from __future__ import annotations

import time
from pathlib import Path

from pipeline.artifacts import checkpoint_root
from pipeline.artifacts.prepared import PreparedDataset
from pipeline.config.subsets import SubsetSpec
from pipeline.core.errors import PipelineError
from pipeline.data import sources
from pipeline.data.catalog import SPLITS, Catalog, DatasetSource
from pipeline.data.convert import convert, fingerprint, make_plan
from pipeline.data.download import check_mirror, ensure_file
from pipeline.data.subsets import SUBSET_SEED, short_classes


def prepare(name: str, raw: Path, out_dir: Path, image_size: int, subset: SubsetSpec,
            mirror: Path | None = None, work_root: Path | None = None) -> PreparedDataset:
    """Fetch and verify `name`'s official files under raw/name, convert them, write out_dir atomically.

    Half-done conversions live in work_root/name/<fingerprint> (default: checkpoints/prepare) and resume.
    """
    src = sources.get(name)
    for split in SPLITS:
        if getattr(subset, split) < 0:
            raise PipelineError(f"subsets.{name}.{split} = {getattr(subset, split)} is invalid; use an integer >= 0 "
                                f"(0 keeps all)")
    check_mirror(mirror)
    root = Path(raw) / name
    location, provenance = locate(src, root, mirror)

    _step(f"reading {src.name}'s lists and labels")
    catalog = src.catalog(location)
    check_catalog(src.name, name, catalog)
    per_class = {split: getattr(subset, split) for split in SPLITS}
    plan = make_plan(catalog, per_class)
    meta = {
        "display_name": src.name,
        "train_per_class": subset.train,
        "test_per_class": subset.test,
        "subset_seed": SUBSET_SEED,
        # Classes with fewer images than the per-class number keep all they have.
        "short_classes": {split: short_classes(catalog.splits[split].labels, per_class[split], len(catalog.classes))
                          for split in SPLITS},
        "listed": {split: len(catalog.splits[split].keys) for split in SPLITS},
        "fit": catalog.fit,
        "source": provenance,
        **catalog.notes,
    }
    work = (work_root or checkpoint_root() / "prepare") / name / fingerprint(plan, image_size, catalog.fit, provenance)
    _step(f"converting {len(plan.keys['train'])} train / {len(plan.keys['test'])} test images to "
          f"{image_size}x{image_size} (of {meta['listed']['train']} / {meta['listed']['test']} listed); "
          f"state in {work}")
    started = time.perf_counter()
    ds = convert(catalog, plan, work, Path(out_dir), name, image_size, meta, label=f"prepare {name}")
    _step(f"done: {len(ds.train_labels)} train / {len(ds.test_labels)} test images, {ds.num_classes} classes, "
          f"{image_size}x{image_size}, in {time.perf_counter() - started:.1f} s; wrote {out_dir}")
    return ds


def locate(src: DatasetSource, root: Path, mirror: Path | None) -> tuple[Path, list[dict]]:
    """Where the dataset's official content is (an extracted tree, or root with every file), and its provenance."""
    if src.extracted is not None:
        tree = src.extracted(root, mirror)
        if tree is not None:
            _step(f"using the extracted official tree {tree}")
            return tree, [{"extracted_tree": _portable(tree, mirror)}]
    files = src.files()
    _step(f"checking {len(files)} official file(s) in {root}")
    entries = []
    for remote in files:
        path, md5, origin = ensure_file(remote, root, mirror)
        checked = "md5 ok" if remote.md5 else "no official checksum"
        _step(f"  ok {path.relative_to(root)} ({checked}, md5 {md5}, {origin})")
        entries.append(remote.source_entry(md5))
    return root, entries


def check_catalog(display: str, name: str, catalog: Catalog) -> None:
    """Catch a parsed dataset that cannot be right (e.g. truncated labels) before any image is decoded."""
    for split in SPLITS:
        labels = catalog.splits[split].labels
        if len(labels) == 0:
            problem = f"no {split} images"
        elif labels.min() < 0 or labels.max() >= len(catalog.classes):
            problem = f"{split} labels outside [0, {len(catalog.classes) - 1}]"
        else:
            continue
        raise PipelineError(f"{display} official files hold {problem}; they are damaged: "
                            f"delete them from data/raw/{name} and re-run to fetch them again")


def _portable(path: Path, mirror: Path | None) -> str:
    """A path as meta.json records it: relative to the mirror when inside it, so machines agree."""
    if mirror is not None and path.is_relative_to(mirror):
        return f"$SPARSEJEPA_DATA_MIRROR/{path.relative_to(mirror)}"
    return str(path)


def _step(message: str) -> None:
    print(f"[prepare {time.strftime('%H:%M:%S')}] {message}", flush=True)
