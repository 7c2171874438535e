"""iNaturalist 2018 (Van Horn et al. 2018): 437,513 train / 24,426 val photos (longest side 800 px), 8,142 species.

Images: torchvision's INaturalist "2018" archive (its URL and md5), train_val2018/<super>/<id>/<hash>.jpg,
streamed, never extracted (it is 128 GB). torchvision's class has no train/val split for 2018 (it
lists every image), so the split and the labels come from the official annotation files
train2018.json / val2018.json (COCO-style; md5s from the competition's README,
github.com/visipedia/inat_comp/tree/master/2018): the label of an image is its annotation's
category_id. The official val split is the test split here (test labels were never published).
"""
from __future__ import annotations

import json
from pathlib import Path

from torchvision.datasets.inaturalist import DATASET_MD5, DATASET_URLS

from pipeline.core.errors import PipelineError, damaged_file
from pipeline.data.catalog import Catalog, DatasetSource, SplitList
from pipeline.data.download import RemoteFile
from pipeline.data.stores import TarStore, tar_member

NAME = "iNat18"  # display name: report columns, messages

BASE_URL = "https://ml-inat-competition-datasets.s3.amazonaws.com/2018/"
IMAGES = DATASET_URLS["2018"].rsplit("/", 1)[1]  # train_val2018.tar.gz
# file name -> (official md5, the JSON inside)
ANNOTATIONS = {"train": ("train2018.json.tar.gz", "bfa29d89d629cbf04d826a720c0a68b0", "train2018.json"),
               "test": ("val2018.json.tar.gz", "f2ed8bfe3e9901cdefceb4e53cd3775d", "val2018.json")}


def files() -> list[RemoteFile]:
    # Annotations first: they are small, so a missing one is reported before a 128 GB download.
    annotations = [RemoteFile(NAME, name, md5, (BASE_URL + name,), name) for name, md5, _ in ANNOTATIONS.values()]
    return annotations + [RemoteFile(NAME, IMAGES, DATASET_MD5["2018"], (DATASET_URLS["2018"],), IMAGES)]


def catalog(root: Path) -> Catalog:
    splits, classes = {}, None
    for split, (archive, _, member) in ANNOTATIONS.items():
        with damaged_file(root / archive, "iNat18 annotations"):
            content = json.loads(tar_member(root / archive, member))
        where = f"{root / archive}:{member}"
        splits[split] = split_list(content, where)
        found = class_names(content, where)
        if classes is not None and found != classes:
            raise PipelineError(f"{where} lists other categories than the train annotations; the file is damaged: "
                                f"delete it and re-run to fetch the official file again")
        classes = found
    return Catalog(classes=classes, splits=splits, store=TarStore(root / IMAGES), fit="center_crop",
                   notes={"test_split": "official val (test labels were never published)",
                          "label": "annotations category_id"})


def split_list(content: dict, where: str) -> SplitList:
    """One key (the image's file_name inside the archive) and label (category_id) per annotated image."""
    try:
        file_names = {image["id"]: image["file_name"] for image in content["images"]}
        pairs = [(file_names[a["image_id"]], int(a["category_id"])) for a in content["annotations"]]
    except (KeyError, TypeError, ValueError) as e:
        raise PipelineError(f"{where} is not iNat18's annotation format ({type(e).__name__}: {e}); the file is "
                            f"damaged: delete it and re-run to fetch the official file again") from None
    pairs.sort()  # by file name: an order that does not depend on how the JSON lists them
    return SplitList([name for name, _ in pairs], [label for _, label in pairs])


def class_names(content: dict, where: str) -> list[str]:
    """Category names indexed by id; iNat18's ids are 0..8141 without gaps."""
    try:
        by_id = {int(c["id"]): str(c["name"]) for c in content["categories"]}
    except (KeyError, TypeError, ValueError) as e:
        raise PipelineError(f"{where} has no readable categories ({type(e).__name__}: {e}); the file is damaged: "
                            f"delete it and re-run to fetch the official file again") from None
    if sorted(by_id) != list(range(len(by_id))):
        raise PipelineError(f"{where} category ids are not 0..{len(by_id) - 1} without gaps; the file is damaged: "
                            f"delete it and re-run to fetch the official file again")
    return [by_id[i] for i in range(len(by_id))]


SOURCE = DatasetSource(NAME, files, catalog)
