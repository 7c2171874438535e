"""Dataset registry and `prepare`: official files -> verified raw folder -> prepared arrays.

Adding a dataset is two functions and one registry entry:
  * `<name>_files()`: its official files (names, md5s, URLs) read from torchvision's own class,
    never retyped, so the checksums are the ones torchvision itself verifies;
  * `load_<name>(root, image_size)`: parse the verified raw folder with torchvision's class
    and return RawSplits;
  * `DATASETS["<name>"] = DatasetSource(<name>_files, load_<name>)`.
The shared code below does mirror lookup, download, md5 checks, subsets, resizing and writing.
"""
from __future__ import annotations

import contextlib
import pickle
import tarfile
import time
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

import numpy as np
import torch
import torch.nn.functional as F
from torchvision.datasets import CIFAR100, FashionMNIST
from torchvision.datasets.utils import extract_archive

from pipeline import names
from pipeline.arrays import PreparedDataset, save_prepared
from pipeline.download import RemoteFile, check_mirror, ensure_file
from pipeline.errors import PipelineError

# The train subset is drawn from a permutation with this fixed seed, independent of params.yaml's
# `seed`, so changing the training seed never changes which images a dataset holds.
SUBSET_SEED = 0
RESIZE_BATCH = 2048


@dataclass
class RawSplits:
    """A dataset as torchvision parsed it: uint8 images (N, H, W) grey or (N, H, W, 3) RGB, int labels."""
    train_images: np.ndarray
    train_labels: np.ndarray
    test_images: np.ndarray
    test_labels: np.ndarray
    classes: list[str]


@dataclass(frozen=True)
class DatasetSource:
    # Functions, not lists: the official file list is read from torchvision at call time.
    files: Callable[[], list[RemoteFile]]
    # Parse the verified raw folder. image_size lets loaders of large or variable-size datasets
    # resize while decoding; fixed-size ones may ignore it and leave resizing to `prepare`.
    load: Callable[[Path, int], RawSplits]


# ---------------------------------------------------------------------------- FashionMNIST

def fashion_mnist_files() -> list[RemoteFile]:
    display = names.dataset_name("fashion_mnist")
    return [RemoteFile(display, filename, md5, tuple(f"{m}{filename}" for m in FashionMNIST.mirrors),
                       f"{FashionMNIST.__name__}/raw/{filename}")
            for filename, md5 in FashionMNIST.resources]


def load_fashion_mnist(root: Path, image_size: int) -> RawSplits:
    raw_folder = root / FashionMNIST.__name__ / "raw"
    # The class skips extraction when the uncompressed files exist, without checking them; a run
    # killed mid-extraction would leave a truncated one. Re-extract from the verified .gz each time.
    for filename, _ in FashionMNIST.resources:
        gz = raw_folder / filename
        with _reading(gz, "FashionMNIST file"):
            extract_archive(str(gz), str(raw_folder))
    splits = {}
    for train in (True, False):
        split_files = [raw_folder / f for f, _ in FashionMNIST.resources if f.startswith("train" if train else "t10k")]
        with _reading(split_files, "FashionMNIST files"):
            ds = FashionMNIST(str(root), train=train, download=True)
        splits[train] = (ds.data.numpy(), ds.targets.numpy())
    return RawSplits(*splits[True], *splits[False], classes=list(FashionMNIST.classes))


# ---------------------------------------------------------------------------- CIFAR-100

def cifar100_files() -> list[RemoteFile]:
    display = names.dataset_name("cifar100")
    return [RemoteFile(display, CIFAR100.filename, CIFAR100.tgz_md5, (CIFAR100.url,), CIFAR100.filename)]


def load_cifar100(root: Path, image_size: int) -> RawSplits:
    archive = root / CIFAR100.filename
    splits = {}
    # download=True extracts the verified archive when the extracted files fail torchvision's
    # md5 list (train_list/test_list/meta), so a partial extraction is never read.
    with _reading(archive, "CIFAR-100 archive"):
        for train in (True, False):
            ds = CIFAR100(str(root), train=train, download=True)
            splits[train] = (np.asarray(ds.data), np.asarray(ds.targets))
    return RawSplits(*splits[True], *splits[False], classes=list(ds.classes))


DATASETS: dict[str, DatasetSource] = {
    "fashion_mnist": DatasetSource(fashion_mnist_files, load_fashion_mnist),
    "cifar100": DatasetSource(cifar100_files, load_cifar100),
}


# ---------------------------------------------------------------------------- shared steps

def source(name: str) -> DatasetSource:
    if name not in DATASETS:
        raise PipelineError(f"unknown dataset '{name}'; known datasets: {', '.join(DATASETS)}")
    return DATASETS[name]


def prepare(name: str, raw_root: Path, out_dir: Path, image_size: int, train_per_class: int,
            mirror: Path | None = None) -> PreparedDataset:
    """Fetch and verify `name`'s official files under raw_root/name, convert, write out_dir atomically."""
    src = source(name)
    if train_per_class < 0:
        raise PipelineError(f"subsets.{name} = {train_per_class} is invalid; use an integer >= 0 (0 keeps all)")
    check_mirror(mirror)
    root = Path(raw_root) / name
    files = src.files()
    fetch_all(files, root, mirror)

    _step(f"reading {names.dataset_name(name)} with torchvision")
    raw = src.load(root, image_size)
    _check_raw(name, raw, root)
    keep = per_class_subset(raw.train_labels, train_per_class, raw.classes, name)
    ds = PreparedDataset(
        name=name,
        classes=raw.classes,
        train_images=to_rgb_size(raw.train_images[keep], image_size, "train"),
        train_labels=raw.train_labels[keep].astype(np.int64),
        test_images=to_rgb_size(raw.test_images, image_size, "test"),
        test_labels=raw.test_labels.astype(np.int64),
        meta={
            "display_name": names.dataset_name(name),
            "train_per_class": train_per_class,
            "subset_seed": SUBSET_SEED,
            "source_image_size": list(raw.train_images.shape[1:3]),
            "source": [f.source_entry() for f in files],
        },
    )
    _step(f"writing {out_dir}")
    save_prepared(out_dir, ds)
    _step(f"done: {len(ds.train_labels)} train / {len(ds.test_labels)} test images, {ds.num_classes} classes, "
          f"{image_size}x{image_size}")
    return ds


def fetch_all(files: list[RemoteFile], root: Path, mirror: Path | None) -> None:
    """Every file is checked or fetched before any conversion, so a missing one fails in seconds."""
    _step(f"checking {len(files)} official file(s) in {root}")
    for remote in files:
        path, origin = ensure_file(remote, root, mirror)
        _step(f"  ok {path.relative_to(root)} (md5 {remote.md5}, {origin})")


def per_class_subset(labels: np.ndarray, n: int, classes: list[str], name: str) -> np.ndarray:
    """Indices of n train images per class (all when n == 0), in the dataset's original order."""
    if n == 0:
        return np.arange(len(labels))
    counts = np.bincount(labels, minlength=len(classes))
    short = [f"'{classes[c]}' ({counts[c]})" for c in range(len(classes)) if counts[c] < n]
    if short:
        raise PipelineError(f"subsets.{name} = {n} but these classes have fewer train images: "
                            f"{', '.join(short)}; lower subsets.{name} in params.yaml (0 keeps all)")
    order = np.random.default_rng(SUBSET_SEED).permutation(len(labels))
    # A stable sort by label groups the shuffled indices by class and keeps them shuffled within it.
    by_class = order[np.argsort(labels[order], kind="stable")]
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    chosen = np.concatenate([by_class[start:start + n] for start in starts])
    # Sorting restores the original relative order, so the subset is a plain filter of the dataset.
    return np.sort(chosen)


def to_rgb_size(images: np.ndarray, size: int, split: str) -> np.ndarray:
    """uint8 (N, H, W) or (N, H, W, C) -> uint8 (N, size, size, 3); grey is replicated to 3 channels."""
    if images.ndim == 3:
        images = images[..., None]
    n, h, w, _ = images.shape
    out = np.empty((n, size, size, 3), dtype=np.uint8)
    if (h, w) == (size, size):
        out[...] = images  # broadcasting replicates a grey channel
        return out
    _step(f"resizing {n} {split} images {h}x{w} -> {size}x{size}")
    for start in range(0, n, RESIZE_BATCH):
        out[start:start + RESIZE_BATCH] = _resize_batch(images[start:start + RESIZE_BATCH], size)
    return out


def _resize_batch(batch: np.ndarray, size: int) -> np.ndarray:
    x = torch.from_numpy(np.ascontiguousarray(batch)).permute(0, 3, 1, 2).float()
    # antialias matters when shrinking (e.g. CLEVR 480x320 -> 64): plain bilinear would alias.
    y = F.interpolate(x, size=(size, size), mode="bilinear", antialias=True, align_corners=False)
    return y.round().clamp(0, 255).to(torch.uint8).permute(0, 2, 3, 1).numpy()


def _check_raw(name: str, raw: RawSplits, root: Path) -> None:
    """Catch a parsed dataset that torchvision accepted but that cannot be right (e.g. truncated labels)."""
    for split in ("train", "test"):
        images, labels = getattr(raw, f"{split}_images"), getattr(raw, f"{split}_labels")
        if len(images) != len(labels) or len(labels) == 0:
            problem = f"{len(images)} {split} images but {len(labels)} labels"
        elif labels.min() < 0 or labels.max() >= len(raw.classes):
            problem = f"{split} labels outside [0, {len(raw.classes) - 1}]"
        else:
            continue
        raise PipelineError(f"{names.dataset_name(name)} raw files hold {problem}; they are damaged: "
                            f"delete {root} and re-run to fetch the official files again")


# What damaged raw files make the extractors and torchvision's parsers raise.
_READ_ERRORS = (OSError, EOFError, zlib.error, tarfile.TarError, pickle.UnpicklingError, RuntimeError,
                ValueError, TypeError, KeyError, IndexError, AssertionError)


@contextlib.contextmanager
def _reading(paths: Path | list[Path], what: str) -> Iterator[None]:
    """Turn a parse failure into one line naming the files, instead of a torchvision traceback."""
    try:
        yield
    except _READ_ERRORS as e:
        listed = ", ".join(str(p) for p in (paths if isinstance(paths, list) else [paths]))
        reason = (str(e).splitlines() or [""])[0] or type(e).__name__
        # torchvision's own advice ("You can use download=True ...") does not apply here: we pass it.
        reason = reason.split(". You can use download=True")[0]
        raise PipelineError(f"{what} {listed} could not be read ({reason}); the file is damaged: delete it "
                            f"and re-run to fetch the official file again") from None


def _step(message: str) -> None:
    print(f"[prepare {time.strftime('%H:%M:%S')}] {message}", flush=True)
