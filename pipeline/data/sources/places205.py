"""Places205 (Zhou et al. 2014): 2,448,873 train / 20,500 val scene photos at 256x256, 205 classes.

The official files (http://places.csail.mit.edu/downloadData.html, served from data.csail.mit.edu):
  imagesPlaces205_resize.tar.gz   every train and val image, as
                                  data/vision/torralba/deeplearning/images256/<letter>/<class>/<file>.jpg
  trainvalsplit_places205.tar.gz  trainvalsplit_places205/{train,val}_places205.csv, one
                                  "<letter>/<class>/<file>.jpg <label>" per line, labels 0..204
MIT publishes no checksum for either archive: meta.json records the md5 of the files that were
used, and the content is checked instead (every listed image must be in the archive and decode).
The official val split is the test split here (the separate test archive has no labels).
The image archive is streamed, never extracted.
"""
from __future__ import annotations

from pathlib import Path

from pipeline.core.errors import PipelineError, damaged_file
from pipeline.data.catalog import Catalog, DatasetSource, SplitList
from pipeline.data.download import RemoteFile
from pipeline.data.stores import TarStore, tar_member

NAME = "Places205"  # display name: report columns, messages

BASE_URL = "http://data.csail.mit.edu/places/places205/"
IMAGES = "imagesPlaces205_resize.tar.gz"
LISTS = "trainvalsplit_places205.tar.gz"
IMAGE_PREFIX = "data/vision/torralba/deeplearning/images256/"
LIST_FILES = {"train": "trainvalsplit_places205/train_places205.csv",
              "test": "trainvalsplit_places205/val_places205.csv"}


def files() -> list[RemoteFile]:
    # The split lists first: they are small, so a missing one is reported before a 30 GB download.
    return [RemoteFile(NAME, name, None, (BASE_URL + name,), name) for name in (LISTS, IMAGES)]


def catalog(root: Path) -> Catalog:
    lists = root / LISTS
    splits, class_names = {}, {}
    for split, member in LIST_FILES.items():
        with damaged_file(lists, "Places205 split lists"):
            text = tar_member(lists, member).decode("utf-8")
        splits[split] = parse_list(text, f"{lists}:{member}", class_names)
    classes = class_list(class_names, str(lists))
    store = TarStore(root / IMAGES, key_of=lambda name: name[len(IMAGE_PREFIX):] if name.startswith(IMAGE_PREFIX)
                     else None)
    return Catalog(classes=classes, splits=splits, store=store, fit="center_crop",
                   notes={"test_split": "official val (the test archive has no labels)"})


def parse_list(text: str, where: str, class_names: dict[int, str]) -> SplitList:
    """Lines "<letter>/<class>[/<sub>]/<file>.jpg <label>"; fills class_names {label: "<class>[/<sub>]"}."""
    keys, labels = [], []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        parts = line.split()
        path_parts = parts[0].split("/") if parts else []
        if len(parts) != 2 or not parts[1].isdigit() or len(path_parts) < 3:
            raise PipelineError(f"{where} line {number} is not '<letter>/<class>/<file>.jpg <label>': {line[:80]!r}; "
                                f"the file is damaged: delete it and re-run to fetch the official file again")
        label, name = int(parts[1]), "/".join(path_parts[1:-1])
        if class_names.setdefault(label, name) != name:
            raise PipelineError(f"{where} line {number} gives label {label} to class '{name}' but earlier lines to "
                                f"'{class_names[label]}'; the file is damaged: delete it and re-run")
        keys.append(parts[0])
        labels.append(label)
    return SplitList(keys, labels)


def class_list(class_names: dict[int, str], where: str) -> list[str]:
    expected = list(range(len(class_names)))
    if sorted(class_names) != expected:
        raise PipelineError(f"{where} labels are not 0..{len(class_names) - 1} without gaps; the file is damaged: "
                            f"delete it and re-run to fetch the official file again")
    return [class_names[i] for i in expected]


SOURCE = DatasetSource(NAME, files, catalog)
