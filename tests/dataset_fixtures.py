"""Tiny datasets written in their EXACT official on-disk formats, plus helpers to make
torchvision's classes accept them.

The fixtures' md5s differ from the official ones, so `patch_*` swaps the md5s on torchvision's
own class attributes; the real verification code then runs unchanged against the fixtures.
Every image carries its index in pixels (0, 0) and (0, 1) (low byte, high byte), so a test can
tell exactly which source image ended up where.
"""
from __future__ import annotations

import gzip
import hashlib
import io
import pickle
import struct
import tarfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from torchvision.datasets import CIFAR100, FashionMNIST

IDX_IMAGES_MAGIC = 2051  # 0x00000803: unsigned byte, 3 dims
IDX_LABELS_MAGIC = 2049  # 0x00000801: unsigned byte, 1 dim


@dataclass
class Split:
    images: np.ndarray   # uint8, (N, 28, 28) for FashionMNIST, (N, 32, 32, 3) HWC for CIFAR
    labels: np.ndarray   # int64 (N,)


@dataclass
class Fixture:
    train: Split
    test: Split
    md5s: dict[str, str]   # file name (as torchvision names it) -> md5 of what was written
    classes: list[str]


def md5_bytes(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


def encode_index(images: np.ndarray) -> np.ndarray:
    """Stamp each image's index into its first two pixels (all channels)."""
    idx = np.arange(len(images)).reshape(-1, *[1] * (images.ndim - 3))  # broadcasts over channels
    images[:, 0, 0] = idx % 256
    images[:, 0, 1] = idx // 256
    return images


def decode_index(images: np.ndarray) -> np.ndarray:
    """Inverse of encode_index for NHWC images whose first two pixels were not resized."""
    return images[:, 0, 0, 0].astype(np.int64) + 256 * images[:, 0, 1, 0].astype(np.int64)


def balanced_labels(n: int, num_classes: int, rng: np.random.Generator) -> np.ndarray:
    return rng.permutation(np.arange(n) % num_classes).astype(np.int64)


# ---------------------------------------------------------------------------- FashionMNIST

def idx_file(array: np.ndarray, magic: int) -> bytes:
    """The IDX format: big-endian int32 magic, one big-endian int32 per dim, then raw uint8 data."""
    assert array.dtype == np.uint8
    return struct.pack(f">{1 + array.ndim}i", magic, *array.shape) + array.tobytes()


def write_fashion_mnist(mirror: Path, n_train: int = 60, n_test: int = 20, seed: int = 0) -> Fixture:
    """Write the four official .gz files to mirror/FashionMNIST/raw/ (torchvision's layout)."""
    rng = np.random.default_rng(seed)
    splits = {}
    for split, n in (("train", n_train), ("t10k", n_test)):
        images = encode_index(rng.integers(0, 256, (n, 28, 28), dtype=np.uint8))
        splits[split] = Split(images, balanced_labels(n, 10, rng))
    folder = mirror / "FashionMNIST" / "raw"
    folder.mkdir(parents=True, exist_ok=True)
    md5s = {}
    for split, data in splits.items():
        for kind, array, magic in (("images-idx3", data.images, IDX_IMAGES_MAGIC),
                                   ("labels-idx1", data.labels.astype(np.uint8), IDX_LABELS_MAGIC)):
            name = f"{split}-{kind}-ubyte.gz"
            payload = gzip.compress(idx_file(array, magic), mtime=0)
            (folder / name).write_bytes(payload)
            md5s[name] = md5_bytes(payload)
    return Fixture(splits["train"], splits["t10k"], md5s, list(FashionMNIST.classes))


def patch_fashion_mnist(monkeypatch, md5s: dict[str, str]) -> None:
    """Point torchvision's FashionMNIST md5 list at the fixture's files, keeping the official order."""
    resources = [(name, md5s[name]) for name, _ in FashionMNIST.resources]
    monkeypatch.setattr(FashionMNIST, "resources", resources)


# ---------------------------------------------------------------------------- CIFAR-100

def write_cifar100(mirror: Path, n_train: int = 50, n_test: int = 20, num_classes: int = 10,
                   seed: int = 0) -> Fixture:
    """Write mirror/cifar-100-python.tar.gz holding cifar-100-python/{train,test,meta} as pickled dicts.

    Like the official files: `data` is (N, 3072) uint8, each row the 1024 red values, then green,
    then blue (row-major 32x32 planes); labels are plain lists of ints.
    """
    rng = np.random.default_rng(seed)
    classes = [f"fine_{i:02d}" for i in range(num_classes)]
    members, splits = {}, {}
    for split, n, batch_label in (("train", n_train, "training batch 1 of 1"),
                                  ("test", n_test, "testing batch 1 of 1")):
        images = encode_index(rng.integers(0, 256, (n, 32, 32, 3), dtype=np.uint8))
        labels = balanced_labels(n, num_classes, rng)
        splits[split] = Split(images, labels)
        members[split] = _pickle({
            "filenames": [f"fixture_{split}_{i}.png" for i in range(n)],
            "batch_label": batch_label,
            "fine_labels": [int(v) for v in labels],
            "coarse_labels": [int(v) // 5 for v in labels],
            "data": images.transpose(0, 3, 1, 2).reshape(n, 3072),  # HWC -> channel-planar rows
        })
    members["meta"] = _pickle({
        "fine_label_names": classes,
        "coarse_label_names": [f"coarse_{i:02d}" for i in range((num_classes + 4) // 5)],
    })
    archive = _tar_gz(CIFAR100.base_folder, members)
    (mirror / CIFAR100.filename).parent.mkdir(parents=True, exist_ok=True)
    (mirror / CIFAR100.filename).write_bytes(archive)
    md5s = {name: md5_bytes(data) for name, data in members.items()}
    md5s[CIFAR100.filename] = md5_bytes(archive)
    return Fixture(splits["train"], splits["test"], md5s, classes)


def patch_cifar100(monkeypatch, md5s: dict[str, str]) -> None:
    """Swap every md5 torchvision's CIFAR100 checks: the archive and the three extracted files."""
    monkeypatch.setattr(CIFAR100, "tgz_md5", md5s[CIFAR100.filename])
    monkeypatch.setattr(CIFAR100, "train_list", [[name, md5s[name]] for name, _ in CIFAR100.train_list])
    monkeypatch.setattr(CIFAR100, "test_list", [[name, md5s[name]] for name, _ in CIFAR100.test_list])
    monkeypatch.setattr(CIFAR100, "meta", {**CIFAR100.meta, "md5": md5s[CIFAR100.meta["filename"]]})


def _pickle(obj: dict) -> bytes:
    # Protocol 2, as the official (Python 2 era) files; torchvision reads them with encoding="latin1".
    return pickle.dumps(obj, protocol=2)


def _tar_gz(folder: str, members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        directory = tarfile.TarInfo(folder)
        directory.type, directory.mode = tarfile.DIRTYPE, 0o755
        tar.addfile(directory)
        for name, data in members.items():
            info = tarfile.TarInfo(f"{folder}/{name}")
            info.size, info.mode = len(data), 0o644
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()
