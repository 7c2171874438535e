"""CIFAR-100 (Krizhevsky 2009): 50,000 train / 10,000 test 32x32 colour images, 100 fine classes.

torchvision's CIFAR100 class names the archive and its md5 and parses it.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
from torchvision.datasets import CIFAR100

from pipeline.core.errors import damaged_file
from pipeline.data.catalog import Catalog, DatasetSource, array_catalog
from pipeline.data.download import RemoteFile

NAME = "CIFAR-100"  # display name: report columns, messages


def files() -> list[RemoteFile]:
    return [RemoteFile(NAME, CIFAR100.filename, CIFAR100.tgz_md5, (CIFAR100.url,), CIFAR100.filename)]


def catalog(root: Path) -> Catalog:
    archive = root / CIFAR100.filename
    splits = {}
    # download=True extracts the verified archive when the extracted files fail torchvision's
    # md5 list (train_list/test_list/meta), so a partial extraction is never read.
    with damaged_file(archive, "CIFAR-100 archive"):
        for split, train in (("train", True), ("test", False)):
            ds = CIFAR100(str(root), train=train, download=True)
            splits[split] = (np.asarray(ds.data), np.asarray(ds.targets))
    return array_catalog(list(ds.classes), splits, str(archive))


SOURCE = DatasetSource(NAME, files, catalog)
