"""What a dataset module hands to the converter: labelled image lists and where the pixels are.

A dataset module (pipeline/data/sources/<name>.py) parses only the small files (split lists,
annotations, scene graphs) into a Catalog; no pixel is decoded until the converter streams the
images it keeps from the Catalog's store.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Collection, Hashable, Iterator, Protocol

import numpy as np

from pipeline.data.download import RemoteFile
from pipeline.data.stores import ArrayStore

SPLITS = ("train", "test")


class ImageStore(Protocol):
    """Where a dataset's images live: an archive, a folder or in-memory arrays."""

    description: str  # named in error messages, e.g. the archive's path

    def read(self, wanted: Collection[Hashable]) -> Iterator[tuple[Hashable, bytes | np.ndarray]]:
        """Yield (key, encoded bytes or uint8 array) for each wanted key the store holds, in its own order.

        `wanted` is copied when reading starts (the caller may shrink it meanwhile). Keys the store
        lacks are not yielded; the converter reports them all at once.
        """


@dataclass
class SplitList:
    keys: list[Hashable]  # how the store finds each image: a member name, a file name or an index
    labels: np.ndarray    # int64 class indices, one per key

    def __post_init__(self) -> None:
        self.labels = np.asarray(self.labels, dtype=np.int64)
        if len(self.keys) != len(self.labels):
            raise ValueError(f"{len(self.keys)} keys but {len(self.labels)} labels")


@dataclass
class Catalog:
    classes: list[str]
    splits: dict[str, SplitList]  # "train" and "test" (the official test split, or val where test is unlabelled)
    store: ImageStore
    fit: str = "squash"           # how non-square images become square, see pipeline.data.imaging.FITS
    notes: dict = field(default_factory=dict)  # provenance for meta.json, e.g. which official split is "test"


@dataclass(frozen=True)
class DatasetSource:
    """One dataset: its display name, its official files and how to read them once verified."""
    name: str  # as the report and messages show it, e.g. "CIFAR-100"; meta.json records it
    # A function, not a list: where torchvision knows the files, they are read from its class at call time.
    files: Callable[[], list[RemoteFile]]
    # Parse the verified raw folder (or an extracted copy found by `extracted`) into a Catalog.
    catalog: Callable[[Path], Catalog]
    # An already-extracted official tree (raw folder or mirror) to read in place of the archive, or None.
    extracted: Callable[[Path, Path | None], Path | None] | None = None


def array_catalog(classes: list[str], splits: dict[str, tuple[np.ndarray, np.ndarray]], description: str) -> Catalog:
    """A Catalog of images torchvision already decoded: {split: (uint8 images, labels)}; keys are (split, index)."""
    return Catalog(
        classes=list(classes),
        splits={split: SplitList([(split, i) for i in range(len(labels))], labels)
                for split, (_, labels) in splits.items()},
        store=ArrayStore({split: images for split, (images, _) in splits.items()}, description),
    )
