"""FashionMNIST (Xiao et al. 2017, MIT licence): 60,000 train / 10,000 test 28x28 grey images, 10 classes.

torchvision's FashionMNIST class names the files and their md5s and parses them.
"""
from __future__ import annotations

from pathlib import Path

from torchvision.datasets import FashionMNIST
from torchvision.datasets.utils import extract_archive

from pipeline.core.errors import damaged_file
from pipeline.data.catalog import Catalog, DatasetSource, array_catalog
from pipeline.data.download import RemoteFile

NAME = "FashionMNIST"  # display name: report columns, messages


def files() -> list[RemoteFile]:
    return [RemoteFile(NAME, filename, md5, tuple(f"{m}{filename}" for m in FashionMNIST.mirrors),
                       f"{FashionMNIST.__name__}/raw/{filename}")
            for filename, md5 in FashionMNIST.resources]


def catalog(root: Path) -> Catalog:
    raw_folder = root / FashionMNIST.__name__ / "raw"
    # The class skips extraction when the uncompressed files exist, without checking them; a run
    # killed mid-extraction would leave a truncated one. Re-extract from the verified .gz each time.
    for filename, _ in FashionMNIST.resources:
        gz = raw_folder / filename
        with damaged_file(gz, "FashionMNIST file"):
            extract_archive(str(gz), str(raw_folder))
    splits = {}
    for split, train in (("train", True), ("test", False)):
        split_files = [raw_folder / f for f, _ in FashionMNIST.resources if f.startswith("train" if train else "t10k")]
        with damaged_file(split_files, "FashionMNIST files"):
            ds = FashionMNIST(str(root), train=train, download=True)
        splits[split] = (ds.data.numpy(), ds.targets.numpy())
    return array_catalog(list(FashionMNIST.classes), splits, str(raw_folder))


SOURCE = DatasetSource(NAME, files, catalog)
