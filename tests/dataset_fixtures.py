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
import json
import pickle
import struct
import tarfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from torchvision.datasets import CIFAR100, FashionMNIST

from pipeline.artifacts import prepared
from pipeline.artifacts.prepared import PreparedDataset
from pipeline.core.atomic import atomic_dir, write_json

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


# ---------------------------------------------------------------------------- image-file datasets
# Each image is one flat colour that names it (see index_colour), so a test can tell which source
# image landed where even after JPEG compression and resizing: both keep a flat image flat.

def index_colour(index: int) -> int:
    """Grey level for image `index` (< 60): spaced by 4 so JPEG's rounding (+-1) cannot confuse two."""
    return 10 + 4 * index


def colour_index(images: np.ndarray) -> np.ndarray:
    """Inverse of index_colour for NHWC images, read at the centre pixel."""
    h, w = images.shape[1] // 2, images.shape[2] // 2
    return np.rint((images[:, h, w, 0].astype(float) - 10) / 4).astype(np.int64)


def encode_image(grey: int, size: tuple[int, int], fmt: str, border: tuple[int, int, int] | None = None) -> bytes:
    """A flat image of `grey` (width, height); `border` paints the outer sixth of each side (for crop tests)."""
    from PIL import Image

    w, h = size
    pixels = np.full((h, w, 3), grey, dtype=np.uint8)
    if border is not None:
        pixels[:, : w // 6] = border
        pixels[:, w - w // 6:] = border
    if fmt == "PNG":  # CLEVR's renders are RGBA
        pixels = np.concatenate([pixels, np.full((h, w, 1), 255, dtype=np.uint8)], axis=2)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format=fmt, **({"quality": 95} if fmt == "JPEG" else {}))
    return buffer.getvalue()


def tar_gz(members: dict[str, bytes], folders: tuple[str, ...] = ()) -> bytes:
    """A .tar.gz holding `members` (path -> bytes), with folder entries as tar writes them."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for folder in folders:
            info = tarfile.TarInfo(folder)
            info.type, info.mode = tarfile.DIRTYPE, 0o755
            tar.addfile(info)
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size, info.mode = len(data), 0o644
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


@dataclass
class FileFixture:
    """An image-file dataset as written: the expected keys and labels per split (in output order)."""
    keys: dict[str, list[str]]
    labels: dict[str, np.ndarray]
    index: dict[str, dict[str, int]]  # split -> key -> the image's colour index
    classes: list[str]
    md5s: dict[str, str]


# ---------------------------------------------------------------------------- CLEVR v1.0

CLEVR_COUNTS = {"train": [3, 10, 5, 5, 7, 4, 9, 3, 8, 6, 10, 3], "val": [4, 3, 10, 6, 8]}


def clevr_members(counts: dict[str, list[int]] = CLEVR_COUNTS, n_test: int = 3) -> tuple[dict[str, bytes], FileFixture]:
    """CLEVR_v1.0/ as in the official zip: 480x320 RGBA PNGs in images/<split>/, scene graphs for train and val.

    Scenes are listed in a shuffled order: labels must be joined by image_filename, not by position.
    """
    members, keys, labels, index = {}, {}, {}, {}
    rng = np.random.default_rng(0)
    colour = 0
    for split, split_counts in counts.items():
        scenes = []
        for i, count in enumerate(split_counts):
            name = f"CLEVR_{split}_{i:06d}.png"
            members[f"CLEVR_v1.0/images/{split}/{name}"] = encode_image(index_colour(colour), (48, 32), "PNG")
            scenes.append({"split": split, "image_index": i, "image_filename": name,
                           "objects": [{"shape": "cube", "pixel_coords": [1, 2, 3]}] * count,
                           "relationships": {}, "directions": {}})
            index.setdefault(split, {})[f"{split}/{name}"] = colour
            colour += 1
        order = rng.permutation(len(scenes))
        members[f"CLEVR_v1.0/scenes/CLEVR_{split}_scenes.json"] = json.dumps(
            {"info": {"split": split, "version": "1.0"}, "scenes": [scenes[j] for j in order]}).encode()
        keys[split] = [f"{split}/CLEVR_{split}_{i:06d}.png" for i in range(len(split_counts))]
        labels[split] = np.array(split_counts) - 3
    for i in range(n_test):  # the official test split: images without scene graphs
        members[f"CLEVR_v1.0/images/test/CLEVR_test_{i:06d}.png"] = encode_image(250, (48, 32), "PNG")
    ours = {"train": "train", "test": "val"}
    fixture = FileFixture({s: keys[o] for s, o in ours.items()}, {s: labels[o] for s, o in ours.items()},
                          {s: index[o] for s, o in ours.items()}, [str(c) for c in range(3, 11)], {})
    return members, fixture


def write_clevr_zip(folder: Path, **kwargs) -> FileFixture:
    members, fixture = clevr_members(**kwargs)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "CLEVR_v1.0.zip").write_bytes(buffer.getvalue())
    fixture.md5s["CLEVR_v1.0.zip"] = md5_bytes(buffer.getvalue())
    return fixture


def write_clevr_tree(parent: Path, **kwargs) -> FileFixture:
    """The zip's content extracted under parent/ (so parent/CLEVR_v1.0/...)."""
    members, fixture = clevr_members(**kwargs)
    for name, data in members.items():
        (parent / name).parent.mkdir(parents=True, exist_ok=True)
        (parent / name).write_bytes(data)
    return fixture


# ---------------------------------------------------------------------------- Places205

PLACES_PREFIX = "data/vision/torralba/deeplearning/images256/"
PLACES_CLASSES = ["abbey", "field/cultivated", "swimming_pool/outdoor"]


def write_places205(mirror: Path, train_per_class: tuple[int, ...] = (4, 3, 5), val_per_class: int = 2,
                    unlisted: int = 2) -> FileFixture:
    """imagesPlaces205_resize.tar.gz and trainvalsplit_places205.tar.gz in the official layout.

    Lists are "<letter>/<class>/<file>.jpg <label>" lines sorted by label; the image archive holds
    train and val images in one tree (in an order other than the lists'), plus `unlisted` images
    that neither list names.
    """
    members, keys, labels, index, lines = {}, {"train": [], "test": []}, {"train": [], "test": []}, {}, {}
    colour = 0
    for split, counts in (("train", train_per_class), ("test", (val_per_class,) * len(PLACES_CLASSES))):
        lines[split] = []
        for label, (name, count) in enumerate(zip(PLACES_CLASSES, counts)):
            for i in range(count):
                key = f"{name[0]}/{name}/gsun_{split}{label}{i:04d}{'0' * 20}.jpg"
                members[PLACES_PREFIX + key] = encode_image(index_colour(colour), (24, 24), "JPEG")
                lines[split].append(f"{key} {label}")
                keys[split].append(key)
                labels[split].append(label)
                index.setdefault(split, {})[key] = colour
                colour += 1
    for i in range(unlisted):
        members[PLACES_PREFIX + f"a/abbey/gsun_unlisted{i:04d}.jpg"] = encode_image(250, (24, 24), "JPEG")
    shuffled = dict(sorted(members.items(), key=lambda item: md5_bytes(item[0].encode())))
    folders = tuple(PLACES_PREFIX[:end] for end in range(len(PLACES_PREFIX)) if PLACES_PREFIX[end] == "/")
    images = tar_gz(shuffled, folders)
    lists = tar_gz({"trainvalsplit_places205/train_places205.csv": ("\n".join(lines["train"]) + "\n").encode(),
                    "trainvalsplit_places205/val_places205.csv": ("\n".join(lines["test"]) + "\n").encode()},
                   ("trainvalsplit_places205",))
    mirror.mkdir(parents=True, exist_ok=True)
    (mirror / "imagesPlaces205_resize.tar.gz").write_bytes(images)
    (mirror / "trainvalsplit_places205.tar.gz").write_bytes(lists)
    return FileFixture(keys, {s: np.array(v) for s, v in labels.items()}, index, list(PLACES_CLASSES),
                       {"imagesPlaces205_resize.tar.gz": md5_bytes(images),
                        "trainvalsplit_places205.tar.gz": md5_bytes(lists)})


# ---------------------------------------------------------------------------- iNaturalist 2018

INAT_CATEGORIES = [("Plantae", "Platanus occidentalis"), ("Aves", "Pica pica"), ("Insecta", "Apis mellifera")]


def write_inat18(mirror: Path, train_per_class: tuple[int, ...] = (6, 2, 4), val_per_class: int = 1) -> FileFixture:
    """train_val2018.tar.gz (train_val2018/<super>/<id>/<hash>.jpg) and the COCO-style annotation archives.

    Images are 40x24 with red borders (the outer sixth of each side), so a centre crop shows only
    the image's flat colour. Annotations list images in an order other than the archive's.
    """
    categories = [{"id": i, "name": name, "supercategory": sup, "kingdom": sup, "phylum": "p", "class": "c",
                   "order": "o", "family": "f", "genus": name.split()[0]}
                  for i, (sup, name) in enumerate(INAT_CATEGORIES)]
    members, keys, labels, index, annotations = {}, {}, {}, {}, {}
    colour, image_id = 0, 1
    for split, counts in (("train", train_per_class), ("test", (val_per_class,) * len(INAT_CATEGORIES))):
        images, annos, pairs = [], [], []
        for label, count in enumerate(counts):
            sup = INAT_CATEGORIES[label][0]
            for i in range(count):
                name = f"train_val2018/{sup}/{label}/{md5_bytes(f'{split}{label}{i}'.encode())}.jpg"
                members[name] = encode_image(index_colour(colour), (40, 24), "JPEG", border=(255, 0, 0))
                images.append({"id": image_id, "width": 40, "height": 24, "file_name": name, "license": 1,
                               "rights_holder": "fixture"})
                annos.append({"id": image_id + 1000, "image_id": image_id, "category_id": label})
                pairs.append((name, label))
                index.setdefault(split, {})[name] = colour
                colour += 1
                image_id += 1
        pairs.sort()
        keys[split] = [p[0] for p in pairs]
        labels[split] = np.array([p[1] for p in pairs])
        annotations[split] = {"info": {"year": 2018}, "images": images[::-1], "categories": categories,
                              "annotations": annos, "licenses": [{"id": 1, "name": "cc", "url": ""}]}
    mirror.mkdir(parents=True, exist_ok=True)
    md5s = {}
    for filename, member, content in (("train2018.json.tar.gz", "train2018.json", annotations["train"]),
                                      ("val2018.json.tar.gz", "val2018.json", annotations["test"])):
        payload = tar_gz({member: json.dumps(content).encode()})
        (mirror / filename).write_bytes(payload)
        md5s[filename] = md5_bytes(payload)
    images_tar = tar_gz(members, ("train_val2018",))
    (mirror / "train_val2018.tar.gz").write_bytes(images_tar)
    md5s["train_val2018.tar.gz"] = md5_bytes(images_tar)
    return FileFixture(keys, labels, index, [name for _, name in INAT_CATEGORIES], md5s)


def patch_inat18(monkeypatch, md5s: dict[str, str]) -> None:
    """Swap the official md5s (torchvision's for the images, the README's for the annotations) for the fixture's."""
    from torchvision.datasets.inaturalist import DATASET_MD5

    from pipeline.data.sources import inat18

    monkeypatch.setitem(DATASET_MD5, "2018", md5s["train_val2018.tar.gz"])
    for split, (filename, _, member) in list(inat18.ANNOTATIONS.items()):
        monkeypatch.setitem(inat18.ANNOTATIONS, split, (filename, md5s[filename], member))


def patch_clevr(monkeypatch, md5s: dict[str, str]) -> None:
    from torchvision.datasets import CLEVRClassification

    monkeypatch.setattr(CLEVRClassification, "_MD5", md5s["CLEVR_v1.0.zip"])


def save_prepared(path: str | Path, ds: PreparedDataset) -> None:
    """Write `ds` to the folder `path` as the prepare stage publishes one (tests build datasets in memory)."""
    problems = ds.problems()
    if problems:
        # A bug in a converter, not a user error: fail loudly rather than write a bad dataset.
        raise ValueError(f"refusing to save prepared dataset {ds.name!r}: {'; '.join(problems)}")
    with atomic_dir(path) as tmp:
        for key in prepared.ARRAYS:
            np.save(tmp / f"{key}.npy", getattr(ds, key), allow_pickle=False)
        write_json(tmp / prepared.META_FILE, prepared._meta_for(ds))
