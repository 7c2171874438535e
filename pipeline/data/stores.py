"""Image stores: yield the wanted images of a dataset from wherever its official files keep them.

Archives are read in place, never extracted: iNat18's 120 GB tar would otherwise need as much
again on disk. A tar is read as a stream (one sequential pass, the only cheap order for .tar.gz)
and stops as soon as every wanted member has been seen; zips and folders allow random access.
"""
from __future__ import annotations

import tarfile
import zipfile
from pathlib import Path
from typing import Callable, Collection, Hashable, Iterator

import numpy as np

from pipeline.core.errors import damaged_file


class ArrayStore:
    """Images already decoded by torchvision (FashionMNIST, CIFAR-100); keys are (split, index)."""

    def __init__(self, arrays: dict[str, np.ndarray], description: str):
        self.arrays = arrays
        self.description = description

    def read(self, wanted: Collection[Hashable]) -> Iterator[tuple[Hashable, np.ndarray]]:
        for key in sorted(wanted):
            split, index = key
            if split in self.arrays and 0 <= index < len(self.arrays[split]):
                yield key, self.arrays[split][index]


class FolderStore:
    """Image files under a folder (an extracted official tree); keys are paths relative to it."""

    def __init__(self, root: Path, description: str | None = None):
        self.root = Path(root)
        self.description = description or str(self.root)

    def read(self, wanted: Collection[Hashable]) -> Iterator[tuple[Hashable, bytes]]:
        for key in sorted(wanted):
            path = self.root / key
            if path.is_file():
                with damaged_file(path, "image file"):
                    data = path.read_bytes()
                yield key, data


class ZipStore:
    """Members of a zip archive; keys are member names without `prefix`."""

    def __init__(self, path: Path, prefix: str = ""):
        self.path = Path(path)
        self.prefix = prefix
        self.description = str(self.path)

    def read(self, wanted: Collection[Hashable]) -> Iterator[tuple[Hashable, bytes]]:
        with damaged_file(self.path, "archive"):
            with zipfile.ZipFile(self.path) as archive:
                present = set(archive.namelist())
                for key in sorted(wanted):
                    name = self.prefix + key
                    if name in present:
                        yield key, archive.read(name)


class TarStore:
    """Members of a (compressed) tar archive read as one stream; `key_of` maps a member name to a key."""

    def __init__(self, path: Path, key_of: Callable[[str], str | None] = lambda name: name):
        self.path = Path(path)
        self.key_of = key_of
        self.description = str(self.path)

    def read(self, wanted: Collection[Hashable]) -> Iterator[tuple[Hashable, bytes]]:
        left = set(wanted)
        if not left:
            return
        with damaged_file(self.path, "archive"):
            # "r|*": a forward-only stream, so memory stays flat and nothing is extracted to disk.
            with tarfile.open(self.path, mode="r|*") as archive:
                while (member := archive.next()) is not None:
                    # tarfile keeps every header it has read (~0.5 kB each): 1 GB over Places205's 2.5 M.
                    archive.members.clear()
                    if not member.isfile():
                        continue
                    key = self.key_of(member.name.removeprefix("./"))
                    if key not in left:
                        continue
                    data = archive.extractfile(member).read()
                    if len(data) != member.size:
                        raise EOFError(f"member {member.name} is truncated")
                    left.discard(key)
                    yield key, data
                    if not left:
                        return  # the rest of a large archive need not be decompressed


def tar_member(path: Path, name: str) -> bytes:
    """The bytes of one member of a small (compressed) tar archive, such as a split list or annotations."""
    with damaged_file(path, "archive"):
        with tarfile.open(path, mode="r|*") as archive:
            for member in archive:
                if member.isfile() and member.name.removeprefix("./") == name:
                    return archive.extractfile(member).read()
        raise KeyError(f"it holds no {name}")
