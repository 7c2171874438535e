"""CLEVR/Count (Johnson et al. 2017, CC BY 4.0): how many objects a rendered scene holds, 3..10 -> 8 classes.

The official file is torchvision's CLEVRClassification archive (its URL and md5), and the labels
follow that class's rule: the images of a split sorted by name, each labelled with
len(scene["objects"]) of the scene whose image_filename it is. Class c is the count c + 3.
The official test split has no scene graphs, so, as in VISSL's CLEVR/Count benchmark, the
official val split (15,000) is the test split here; train is the official train split (70,000).

Images are read from the zip in place, or from an extracted CLEVR_v1.0 folder when one is found:
torchvision's layout `<raw>/clevr/CLEVR_v1.0`, or in the mirror `clevr/CLEVR_v1.0`,
`CLEVR_v1.0` or `<any folder>/CLEVR_v1.0` (e.g. the 267-image `clevr-mini` subset).
Images are squashed to a square, never cropped: a crop can remove objects and so change the label.
"""
from __future__ import annotations

import json
import zipfile
from pathlib import Path

import numpy as np
from torchvision.datasets import CLEVRClassification

from pipeline.core.errors import PipelineError, damaged_file
from pipeline.data.catalog import Catalog, DatasetSource, SplitList
from pipeline.data.download import RemoteFile
from pipeline.data.stores import FolderStore, ZipStore

NAME = "CLEVR/Count"  # display name: report columns, messages

TREE = "CLEVR_v1.0"
ARCHIVE = f"{TREE}.zip"
COUNTS = tuple(range(3, 11))
OFFICIAL_SPLIT = {"train": "train", "test": "val"}


def files() -> list[RemoteFile]:
    return [RemoteFile(NAME, ARCHIVE, CLEVRClassification._MD5,
                       (CLEVRClassification._URL,), ARCHIVE)]


def extracted(root: Path, mirror: Path | None) -> Path | None:
    candidates = [root / "clevr" / TREE, root / TREE]
    if mirror is not None:
        candidates += [mirror / "clevr" / TREE, mirror / TREE, *sorted(mirror.glob(f"*/{TREE}"))]
    return next((c for c in candidates if (c / "images").is_dir() and (c / "scenes").is_dir()), None)


def catalog(location: Path) -> Catalog:
    """`location` is an extracted CLEVR_v1.0 folder, or the raw folder holding the verified zip."""
    tree = _Folder(location) if location.name == TREE else _Zip(location / ARCHIVE)
    splits = {ours: _split(tree, official) for ours, official in OFFICIAL_SPLIT.items()}
    return Catalog(classes=[str(c) for c in COUNTS], splits=splits, store=tree.store, fit="squash",
                   notes={"test_split": "official val (the official test split has no labels)",
                          "label": "object count - 3"})


def count_labels(image_names: list[str], scenes: dict, where: str) -> np.ndarray:
    """torchvision's CLEVRClassification rule, as class indices: count - 3 for each image name."""
    try:
        counts = {scene["image_filename"]: len(scene["objects"]) for scene in scenes["scenes"]}
    except (KeyError, TypeError):
        raise PipelineError(f"{where} is not a CLEVR scene file (no scenes with image_filename and objects); "
                            f"the file is damaged: delete it and re-run to fetch the official file again") from None
    unlabelled = [n for n in image_names if n not in counts]
    if unlabelled:
        raise PipelineError(f"{len(unlabelled)} CLEVR images have no scene in {where} (e.g. {unlabelled[0]}); "
                            f"the dataset is incomplete: delete it and re-run to fetch the official file again")
    labels = np.array([counts[n] for n in image_names], dtype=np.int64) - COUNTS[0]
    outside = np.flatnonzero((labels < 0) | (labels >= len(COUNTS)))
    if len(outside):
        raise PipelineError(f"CLEVR image {image_names[outside[0]]} has {labels[outside[0]] + COUNTS[0]} objects in "
                            f"{where}, outside CLEVR's {COUNTS[0]}..{COUNTS[-1]}; the scene file is damaged")
    return labels


def _split(tree, official: str) -> SplitList:
    image_names = tree.image_names(official)
    if not image_names:
        raise PipelineError(f"{tree.where} has no images in images/{official}; the dataset is incomplete: "
                            f"delete it and re-run to fetch the official file again")
    scenes_file = f"scenes/CLEVR_{official}_scenes.json"
    with damaged_file(Path(tree.where) / scenes_file, "CLEVR scene file"):
        scenes = json.loads(tree.read(scenes_file))
    labels = count_labels(image_names, scenes, f"{tree.where}/{scenes_file}")
    return SplitList([f"{official}/{n}" for n in image_names], labels)


class _Folder:
    """An extracted CLEVR_v1.0 folder."""

    def __init__(self, path: Path):
        self.path, self.where = path, str(path)
        self.store = FolderStore(path / "images")

    def image_names(self, split: str) -> list[str]:
        folder = self.path / "images" / split
        return sorted(p.name for p in folder.glob("*.png")) if folder.is_dir() else []

    def read(self, rel: str) -> bytes:
        return (self.path / rel).read_bytes()


class _Zip:
    """The official CLEVR_v1.0.zip, read in place."""

    def __init__(self, path: Path):
        self.path, self.where = path, str(path)
        self.store = ZipStore(path, prefix=f"{TREE}/images/")
        with damaged_file(path, "CLEVR archive"):
            with zipfile.ZipFile(path) as archive:
                self._names = archive.namelist()

    def image_names(self, split: str) -> list[str]:
        prefix = f"{TREE}/images/{split}/"
        return sorted(n[len(prefix):] for n in self._names
                      if n.startswith(prefix) and n.endswith(".png") and "/" not in n[len(prefix):])

    def read(self, rel: str) -> bytes:
        with zipfile.ZipFile(self.path) as archive:
            return archive.read(f"{TREE}/{rel}")


SOURCE = DatasetSource(NAME, files, catalog, extracted)
