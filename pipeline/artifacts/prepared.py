"""The prepared-dataset format every later stage reads: plain .npy arrays plus meta.json.

    <dir>/train_images.npy  uint8 (N, H, W, 3), NHWC, RGB
    <dir>/train_labels.npy  int64 (N,)
    <dir>/test_images.npy   uint8 (M, H, W, 3)
    <dir>/test_labels.npy   int64 (M,)
    <dir>/meta.json         name, classes, sizes and provenance

.npy keeps loading to one np.load per array and allows memory-mapping, so a stage that only
needs a few batches does not read the whole set.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from pipeline.artifacts.features import dataset_summary
from pipeline.core.atomic import atomic_dir, link_or_copy, write_json
from pipeline.core.errors import PipelineError

ARRAYS = ("train_images", "train_labels", "test_images", "test_labels")
META_FILE = "meta.json"


@dataclass
class PreparedDataset:
    name: str
    classes: list[str]
    train_images: np.ndarray
    train_labels: np.ndarray
    test_images: np.ndarray
    test_labels: np.ndarray
    meta: dict = field(default_factory=dict)

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    @property
    def image_size(self) -> int:
        return int(self.train_images.shape[1])

    def problems(self) -> list[str]:
        """Everything wrong with the arrays' shapes, dtypes and labels; empty when the dataset is valid."""
        found = []
        for split in ("train", "test"):
            images, labels = getattr(self, f"{split}_images"), getattr(self, f"{split}_labels")
            if images.dtype != np.uint8 or images.ndim != 4 or images.shape[3] != 3:
                found.append(f"{split}_images is {images.dtype} {images.shape}, expected uint8 (N, H, W, 3)")
            elif images.shape[1:3] != self.train_images.shape[1:3] or images.shape[1] != images.shape[2]:
                found.append(f"{split}_images are {images.shape[1]}x{images.shape[2]}, expected square images "
                             f"of one size")
            if labels.dtype != np.int64 or labels.ndim != 1 or len(labels) != len(images):
                found.append(f"{split}_labels is {labels.dtype} {labels.shape}, expected int64 ({len(images)},)")
            elif len(labels) and (labels.min() < 0 or labels.max() >= self.num_classes):
                found.append(f"{split}_labels lie in [{labels.min()}, {labels.max()}], expected "
                             f"[0, {self.num_classes - 1}]")
        return found


def publish_prepared(work: Path, path: str | Path, name: str, classes: list[str], meta: dict) -> PreparedDataset:
    """Make `path` the prepared folder of the four .npy arrays in `work` (written by the converter).

    The arrays are hard-linked, not copied, where the file system allows, and `work` is left intact:
    if anything fails here, no converted image is lost.
    """
    arrays = {key: _read_array(work / f"{key}.npy", True, "delete the work folder and re-run") for key in ARRAYS}
    ds = PreparedDataset(name=name, classes=list(classes), meta=meta, **arrays)
    problems = ds.problems()
    if problems:
        raise ValueError(f"refusing to publish prepared dataset {name!r}: {'; '.join(problems)}")
    with atomic_dir(path) as tmp:
        for key in ARRAYS:
            link_or_copy(work / f"{key}.npy", tmp / f"{key}.npy")
        write_json(tmp / META_FILE, _meta_for(ds))
    return load_prepared(path, mmap=True)


def dataset_input(name: str, meta: dict, context: str, sizes: dict | None = None) -> dict:
    """A prepared dataset as MLflow's runs table shows it (tracking.DatasetInput's fields): its name, a digest of
    its meta (images kept, official files and their checksums), where it comes from (the first official URL), the
    images kept and what the run used of them (`sizes`, e.g. a probe's splits), and the run's `context`."""
    kept = dataset_summary(meta)  # what features files and probe records keep of it: one digest for both
    digest = hashlib.sha256(json.dumps(kept, sort_keys=True, default=str).encode()).hexdigest()[:12]
    sources = meta.get("source") or [{}]
    tags = {"display_name": meta.get("display_name"), "images_train": meta.get("num_train"),
            "images_test": meta.get("num_test"), **(sizes or {})}
    return {"name": name, "digest": digest, "source": sources[0].get("url") or name, "context": context,
            "tags": {k: str(v) for k, v in tags.items() if v is not None}}


def _meta_for(ds: PreparedDataset) -> dict:
    """ds.meta plus the fields derived from the arrays, so meta.json can never disagree with them."""
    derived = {
        "name": ds.name,
        "classes": list(ds.classes),
        "num_classes": ds.num_classes,
        "image_size": ds.image_size,
        "num_train": int(len(ds.train_labels)),
        "num_test": int(len(ds.test_labels)),
    }
    return {**derived, **{k: v for k, v in ds.meta.items() if k not in derived}}


def load_prepared(path: str | Path, mmap: bool = False) -> PreparedDataset:
    """Read a folder written by publish_prepared; mmap=True maps the arrays read-only instead of reading them."""
    path = Path(path)
    fix = f"run `dvc repro prepare@{path.name}`"
    if not path.is_dir():
        raise PipelineError(f"prepared dataset {path} does not exist; {fix}")
    missing = [f"{key}.npy" for key in ARRAYS if not (path / f"{key}.npy").is_file()]
    missing += [META_FILE] if not (path / META_FILE).is_file() else []
    if missing:
        raise PipelineError(f"prepared dataset {path} is missing {', '.join(missing)}; {fix}")
    meta = _read_meta(path / META_FILE, fix)
    arrays = {key: _read_array(path / f"{key}.npy", mmap, fix) for key in ARRAYS}
    ds = PreparedDataset(name=meta["name"], classes=list(meta["classes"]), meta=meta, **arrays)
    problems = ds.problems() + _meta_mismatches(ds)
    if problems:
        raise PipelineError(f"prepared dataset {path} is inconsistent ({'; '.join(problems)}); {fix}")
    return ds


def _read_meta(path: Path, fix: str) -> dict:
    try:
        meta = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise PipelineError(f"{path} is unreadable ({e}); {fix}") from None
    missing = [k for k in ("name", "classes", "num_train", "num_test") if k not in meta]
    if missing:
        raise PipelineError(f"{path} lacks {', '.join(missing)}; {fix}")
    return meta


def _read_array(path: Path, mmap: bool, fix: str) -> np.ndarray:
    try:
        return np.load(path, mmap_mode="r" if mmap else None, allow_pickle=False)
    except (OSError, ValueError, EOFError) as e:
        raise PipelineError(f"{path} is unreadable ({e}); {fix}") from None


def _meta_mismatches(ds: PreparedDataset) -> list[str]:
    found = []
    for key, actual in (("num_train", len(ds.train_labels)), ("num_test", len(ds.test_labels))):
        if ds.meta[key] != actual:
            found.append(f"meta.json says {key}={ds.meta[key]} but the arrays hold {actual}")
    return found
