"""CLEVR/Count, Places205 and iNat18 loaders on fixtures in their exact official formats (and CLEVR on the
real 267-image subset), plus the resumable, streaming conversion they share.

No test touches the network (conftest's autouse `offline` fixture).
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import REPO
from dataset_fixtures import (colour_index, patch_clevr, patch_inat18, write_clevr_tree, write_clevr_zip, write_inat18,
                              write_places205)
from torchvision.datasets import CLEVRClassification

from pipeline.artifacts.prepared import load_prepared
from pipeline.config.subsets import SubsetSpec
from pipeline.core.errors import PipelineError
from pipeline.data import convert as convert_module
from pipeline.data.prepare import prepare
from pipeline.data.sources import clevr_count, places205


def run_prepare(tmp_path: Path, name: str, size: int = 16, train: int = 0, test: int = 0, mirror: str | None = "mirror",
                **kwargs):
    return prepare(name, tmp_path / "raw", tmp_path / "prepared" / name, size, SubsetSpec(train, test),
                   tmp_path / mirror if mirror else None, tmp_path / "work", **kwargs)


def assert_images_match(ds, fixture) -> None:
    """Every split holds exactly the fixture's images, in the expected order, with their labels."""
    for split in ("train", "test"):
        images, labels = getattr(ds, f"{split}_images"), getattr(ds, f"{split}_labels")
        expected = [fixture.index[split][key] for key in fixture.keys[split]]
        np.testing.assert_array_equal(colour_index(images), expected)
        np.testing.assert_array_equal(labels, fixture.labels[split])


# ---------------------------------------------------------------------------- CLEVR/Count

@pytest.fixture
def clevr_zip(tmp_path, monkeypatch):
    fixture = write_clevr_zip(tmp_path / "mirror")
    patch_clevr(monkeypatch, fixture.md5s)
    return fixture


def test_clevr_from_the_official_zip(tmp_path, clevr_zip, offline):
    ds = run_prepare(tmp_path, "clevr_count", size=16)
    assert ds.train_images.shape == (12, 16, 16, 3) and ds.test_images.shape == (5, 16, 16, 3)
    assert_images_match(ds, clevr_zip)  # test = the official val split; the unlabelled test split is left out
    assert ds.classes == [str(c) for c in range(3, 11)]
    assert ds.meta["fit"] == "squash" and "official val" in ds.meta["test_split"]
    assert ds.meta["source"] == [{"file": "CLEVR_v1.0.zip", "md5": clevr_zip.md5s["CLEVR_v1.0.zip"],
                                  "url": CLEVRClassification._URL}]
    assert offline.urls == [] and (tmp_path / "raw/clevr_count/CLEVR_v1.0.zip").is_file()


def test_clevr_squashes_never_crops(tmp_path):
    # A 480x320 render with objects at its left and right edges: squashing keeps both.
    from dataset_fixtures import encode_image

    from pipeline.data.imaging import to_square_rgb

    image = to_square_rgb(encode_image(100, (48, 32), "PNG", border=(0, 0, 255)), 12, "squash")
    assert image[6, 0, 2] > 200 and image[6, 11, 2] > 200  # both blue edges survive
    cropped = to_square_rgb(encode_image(100, (48, 32), "PNG", border=(0, 0, 255)), 12, "center_crop")
    assert cropped[6, 0, 2] < 150  # what a crop would lose


def test_clevr_extracted_tree_in_the_mirror_is_read_in_place(tmp_path, offline):
    fixture = write_clevr_tree(tmp_path / "mirror" / "clevr-mini")
    ds = run_prepare(tmp_path, "clevr_count", size=16)
    assert_images_match(ds, fixture)
    assert ds.meta["source"] == [{"extracted_tree": "$SPARSEJEPA_DATA_MIRROR/clevr-mini/CLEVR_v1.0"}]
    assert not (tmp_path / "raw" / "clevr_count").exists()  # nothing copied, nothing downloaded
    assert offline.urls == []


def test_clevr_labels_follow_torchvision(tmp_path):
    """Our labels are torchvision's CLEVRClassification labels minus 3, image for image."""
    fixture = write_clevr_tree(tmp_path / "root" / "clevr")
    catalog = clevr_count.catalog(tmp_path / "root" / "clevr" / "CLEVR_v1.0")
    for ours, official in (("train", "train"), ("test", "val")):
        reference = CLEVRClassification(str(tmp_path / "root"), split=official)
        assert [f"{official}/{p.name}" for p in reference._image_files] == catalog.splits[ours].keys
        np.testing.assert_array_equal(np.array(reference._labels) - 3, catalog.splits[ours].labels)
        np.testing.assert_array_equal(catalog.splits[ours].labels, fixture.labels[ours])


def test_clevr_real_subset_from_the_shared_mirror(tmp_path, offline, shared_data):
    tree = shared_data / "clevr-mini" / "CLEVR_v1.0"
    if not tree.is_dir():
        pytest.skip(f"real CLEVR subset not found at {tree}")
    ds = prepare("clevr_count", tmp_path / "raw", tmp_path / "out", 28, SubsetSpec(0, 0), shared_data, tmp_path / "work")
    assert ds.train_images.shape == (200, 28, 28, 3) and ds.test_images.shape == (67, 28, 28, 3)
    # torchvision's own class on the same files, in its layout (<root>/clevr/CLEVR_v1.0), gives the same labels.
    (tmp_path / "tv" / "clevr").mkdir(parents=True)
    (tmp_path / "tv" / "clevr" / "CLEVR_v1.0").symlink_to(tree)
    for split, official in (("train", "train"), ("test", "val")):
        reference = CLEVRClassification(str(tmp_path / "tv"), split=official)
        np.testing.assert_array_equal(getattr(ds, f"{split}_labels"), np.array(reference._labels) - 3)
    assert set(np.unique(ds.train_labels)) == set(range(8))  # the subset covers every count 3..10
    # Real renders: grey background with coloured objects, not flat, not black.
    assert 60 < ds.train_images.mean() < 200 and ds.train_images.std() > 5
    assert offline.urls == []


def test_clevr_image_without_a_scene_is_refused(tmp_path):
    write_clevr_tree(tmp_path / "mirror")
    extra = tmp_path / "mirror/CLEVR_v1.0/images/train/CLEVR_train_999999.png"
    extra.write_bytes((tmp_path / "mirror/CLEVR_v1.0/images/train/CLEVR_train_000000.png").read_bytes())
    with pytest.raises(PipelineError, match=r"1 CLEVR images have no scene in .*CLEVR_train_scenes.json "
                                            r"\(e.g. CLEVR_train_999999.png\)"):
        run_prepare(tmp_path, "clevr_count")
    assert not (tmp_path / "prepared" / "clevr_count").exists()


def test_clevr_offline_without_zip_or_tree(tmp_path, offline):
    with pytest.raises(PipelineError) as err:
        run_prepare(tmp_path, "clevr_count", mirror=None)
    message = str(err.value)
    for part in ("CLEVR_v1.0.zip", CLEVRClassification._MD5, CLEVRClassification._URL, "$SPARSEJEPA_DATA_MIRROR"):
        assert part in message
    assert offline.urls == [CLEVRClassification._URL] and "\n" not in message


# ---------------------------------------------------------------------------- Places205

def test_places205_round_trip(tmp_path, offline):
    fixture = write_places205(tmp_path / "mirror")
    ds = run_prepare(tmp_path, "places205", size=16)
    assert ds.train_images.shape == (12, 16, 16, 3) and ds.test_images.shape == (6, 16, 16, 3)
    assert_images_match(ds, fixture)  # list order, not the archive's; unlisted images left out
    assert ds.classes == ["abbey", "field/cultivated", "swimming_pool/outdoor"]  # nested classes keep their path
    # No official checksum exists: the md5 of the files used is recorded, and said to be unofficial.
    assert {e["file"]: e["md5"] for e in ds.meta["source"]} == fixture.md5s
    assert all(e["official_md5"] is None for e in ds.meta["source"])
    assert offline.urls == []


def test_places205_offline_says_no_checksum_is_published(tmp_path, offline):
    with pytest.raises(PipelineError, match=r"trainvalsplit_places205.tar.gz \(no official checksum published\) "
                                            r"could not be downloaded \(http://data.csail.mit.edu/places/places205/"):
        run_prepare(tmp_path, "places205", mirror=None)


def test_places205_image_missing_from_the_archive(tmp_path):
    fixture = write_places205(tmp_path / "mirror")
    lists = (tmp_path / "mirror" / "trainvalsplit_places205.tar.gz")
    from dataset_fixtures import tar_gz

    train = "\n".join(f"{key} {label}" for key, label in zip(fixture.keys["train"], fixture.labels["train"]))
    train += "\na/abbey/gsun_not_in_the_archive.jpg 0\n"
    val = "\n".join(f"{key} {label}" for key, label in zip(fixture.keys["test"], fixture.labels["test"]))
    lists.write_bytes(tar_gz({"trainvalsplit_places205/train_places205.csv": train.encode(),
                              "trainvalsplit_places205/val_places205.csv": val.encode()}))
    with pytest.raises(PipelineError) as err:
        run_prepare(tmp_path, "places205")
    message = str(err.value)
    assert "1 images listed for places205 are not in" in message and "gsun_not_in_the_archive.jpg" in message
    assert "18 images converted so far are kept in" in message and "\n" not in message
    assert not (tmp_path / "prepared" / "places205").exists()


def test_places205_damaged_list_line(tmp_path):
    write_places205(tmp_path / "mirror")
    from dataset_fixtures import tar_gz

    (tmp_path / "mirror" / "trainvalsplit_places205.tar.gz").write_bytes(tar_gz({
        "trainvalsplit_places205/train_places205.csv": b"a/abbey/gsun_1.jpg 0\nnot a list line\n",
        "trainvalsplit_places205/val_places205.csv": b"a/abbey/gsun_2.jpg 0\n"}))
    with pytest.raises(PipelineError, match=r"train_places205.csv line 2 is not '<letter>/<class>/<file>.jpg <label>'"):
        run_prepare(tmp_path, "places205")


def test_places205_truncated_or_garbage_image_archive(tmp_path):
    """Without a published checksum, the content check catches a truncated download (a gzip stream cut
    short reads as a shorter, valid archive) and a file that is no archive at all."""
    write_places205(tmp_path / "mirror")
    archive = tmp_path / "mirror" / "imagesPlaces205_resize.tar.gz"
    archive.write_bytes(archive.read_bytes()[: archive.stat().st_size // 2])
    with pytest.raises(PipelineError, match=r"images listed for places205 are not in .*imagesPlaces205_resize.tar.gz "
                                            r".*it is incomplete: delete it and re-run"):
        run_prepare(tmp_path, "places205")
    (tmp_path / "raw" / "places205" / archive.name).write_bytes(b"not an archive" * 100)
    with pytest.raises(PipelineError, match=r"archive .*imagesPlaces205_resize.tar.gz could not be read"):
        run_prepare(tmp_path, "places205")


def test_places205_parse_list_names_classes_by_their_path():
    names: dict[int, str] = {}
    listed = places205.parse_list("a/abbey/x.jpg 0\n\nf/field/cultivated/y.jpg 1\n", "list", names)
    assert listed.keys == ["a/abbey/x.jpg", "f/field/cultivated/y.jpg"] and listed.labels.tolist() == [0, 1]
    assert places205.class_list(names, "list") == ["abbey", "field/cultivated"]
    with pytest.raises(PipelineError, match="gives label 0 to class 'alley' but earlier lines to 'abbey'"):
        places205.parse_list("a/alley/z.jpg 0\n", "list", names)


# ---------------------------------------------------------------------------- iNat18

@pytest.fixture
def inat(tmp_path, monkeypatch):
    fixture = write_inat18(tmp_path / "mirror")
    patch_inat18(monkeypatch, fixture.md5s)
    return fixture


def test_inat18_round_trip_with_centre_crops(tmp_path, inat, offline):
    ds = run_prepare(tmp_path, "inat18", size=12)
    assert ds.train_images.shape == (12, 12, 12, 3) and ds.test_images.shape == (3, 12, 12, 3)
    assert_images_match(ds, inat)  # split and labels from the annotation files, not from the folders
    assert ds.classes == ["Platanus occidentalis", "Pica pica", "Apis mellifera"]
    # 40x24 photos with red borders: the centre crop keeps none of the red.
    red_excess = ds.train_images[..., 0].astype(int) - ds.train_images[..., 1].astype(int)
    assert red_excess.max() <= 12
    assert ds.meta["fit"] == "center_crop"
    assert [e["file"] for e in ds.meta["source"]] == ["train2018.json.tar.gz", "val2018.json.tar.gz",
                                                      "train_val2018.tar.gz"]
    assert offline.urls == []


def test_inat18_long_tailed_subset(tmp_path, inat):
    ds = run_prepare(tmp_path, "inat18", size=12, train=3)  # classes hold 6, 2 and 4 train images
    assert np.bincount(ds.train_labels, minlength=3).tolist() == [3, 2, 3]
    assert ds.meta["short_classes"] == {"train": 1, "test": 0} and len(ds.test_labels) == 3
    # Each kept image is the fixture's image of that label.
    colour_label = {inat.index["train"][key]: label for key, label in zip(inat.keys["train"], inat.labels["train"])}
    assert [colour_label[c] for c in colour_index(ds.train_images)] == ds.train_labels.tolist()


def test_inat18_wrong_annotation_md5(tmp_path, inat, monkeypatch):
    from pipeline.data.sources import inat18

    monkeypatch.setitem(inat18.ANNOTATIONS, "test", ("val2018.json.tar.gz", "0" * 32, "val2018.json"))
    with pytest.raises(PipelineError, match=r"val2018.json.tar.gz has md5 .* but the official val2018.json.tar.gz "
                                            r"has md5 0{32}; replace it with the official file"):
        run_prepare(tmp_path, "inat18")


# ---------------------------------------------------------------------------- resumable conversion

class CountingDecoder:
    """Wraps the converter's decoder: counts calls, and can interrupt like Ctrl-C after `stop_after` of them."""

    def __init__(self, real, stop_after: int | None = None):
        self.real, self.stop_after, self.calls = real, stop_after, 0

    def __call__(self, *args):
        self.calls += 1
        if self.calls == self.stop_after:
            os.kill(os.getpid(), signal.SIGINT)  # what Ctrl-C sends; the converter finishes and saves
        return self.real(*args)


def test_interrupted_preprocessing_resumes_where_it_stopped(tmp_path, monkeypatch):
    write_places205(tmp_path / "mirror", train_per_class=(8, 6, 9), val_per_class=3)  # 32 images
    reference = run_prepare(tmp_path, "places205", size=16)
    reference = {k: np.array(getattr(reference, k)) for k in ("train_images", "train_labels", "test_images")}
    (tmp_path / "prepared").rename(tmp_path / "reference")

    first = CountingDecoder(convert_module.to_square_rgb, stop_after=10)
    monkeypatch.setattr(convert_module, "to_square_rgb", first)
    with pytest.raises(KeyboardInterrupt):
        run_prepare(tmp_path, "places205", size=16)
    assert not (tmp_path / "prepared" / "places205").exists()  # no partial output
    work = next((tmp_path / "work" / "places205").iterdir())
    done = sum(np.load(work / f"{s}_done.npy").sum() for s in ("train", "test"))
    assert 10 <= done < 32

    second = CountingDecoder(first.real)
    monkeypatch.setattr(convert_module, "to_square_rgb", second)
    ds = run_prepare(tmp_path, "places205", size=16)
    assert second.calls == 32 - done  # only what was not converted yet
    for key, value in reference.items():
        np.testing.assert_array_equal(getattr(ds, key), value)
    assert not work.exists()  # the work folder goes once the dataset is published


def test_killed_preprocessing_resumes_from_its_last_save(tmp_path):
    """SIGKILL gives no chance to save: the periodic saves are what a re-run resumes from."""
    write_places205(tmp_path / "mirror", train_per_class=(8, 6, 9), val_per_class=3)
    script = f"""
import os, signal, sys
sys.path[:0] = [{str(REPO)!r}, {str(REPO / 'tests')!r}]
from pathlib import Path
from pipeline.data import convert
from pipeline.config.subsets import SubsetSpec
from pipeline.data.prepare import prepare
real, calls = convert.to_square_rgb, [0]
def dying(*args):
    calls[0] += 1
    if calls[0] == 20:
        os.kill(os.getpid(), signal.SIGKILL)
    return real(*args)
convert.to_square_rgb = dying
convert.CHECKPOINT_EVERY_S = 0.0  # save after every image
root = Path({str(tmp_path)!r})
prepare("places205", root / "raw", root / "prepared" / "places205", 16, SubsetSpec(0, 0), root / "mirror", root / "work")
"""
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert proc.returncode == -signal.SIGKILL, proc.stderr[-2000:]
    assert not (tmp_path / "prepared" / "places205").exists()
    work = next((tmp_path / "work" / "places205").iterdir())
    done = sum(np.load(work / f"{s}_done.npy").sum() for s in ("train", "test"))
    assert done >= 5  # saved while running, not only at the end

    import pipeline.data.convert as convert_now
    counter = CountingDecoder(convert_now.to_square_rgb)
    mp = pytest.MonkeyPatch()
    mp.setattr(convert_now, "to_square_rgb", counter)
    try:
        ds = run_prepare(tmp_path, "places205", size=16)
    finally:
        mp.undo()
    assert counter.calls == 32 - done
    # Every image, those decoded before the kill included, is the right one in the right place.
    assert_images_match(ds, write_places205(tmp_path / "again", train_per_class=(8, 6, 9), val_per_class=3))


def test_changed_params_start_a_new_work_folder(tmp_path, monkeypatch):
    write_places205(tmp_path / "mirror")
    monkeypatch.setattr(convert_module, "to_square_rgb", CountingDecoder(convert_module.to_square_rgb, stop_after=3))
    with pytest.raises(KeyboardInterrupt):
        run_prepare(tmp_path, "places205", size=16)
    monkeypatch.undo()
    run_prepare(tmp_path, "places205", size=12)  # another size: its own folder, the first one left alone
    assert len(list((tmp_path / "work" / "places205").iterdir())) == 1
    assert load_prepared(tmp_path / "prepared" / "places205").image_size == 12


def test_work_folder_that_does_not_match_its_plan_is_refused(tmp_path, monkeypatch):
    write_places205(tmp_path / "mirror")
    monkeypatch.setattr(convert_module, "to_square_rgb", CountingDecoder(convert_module.to_square_rgb, stop_after=3))
    with pytest.raises(KeyboardInterrupt):
        run_prepare(tmp_path, "places205", size=16)
    monkeypatch.undo()
    work = next((tmp_path / "work" / "places205").iterdir())
    np.save(work / "train_done.npy", np.zeros(3, dtype=bool))
    with pytest.raises(PipelineError, match="does not match its plan; delete that folder"):
        run_prepare(tmp_path, "places205", size=16)


def test_damaged_image_names_the_member_and_keeps_the_work(tmp_path):
    fixture = write_places205(tmp_path / "mirror")
    from dataset_fixtures import PLACES_PREFIX, tar_gz

    bad_key = fixture.keys["train"][5]
    import tarfile
    members = {}
    with tarfile.open(tmp_path / "mirror" / "imagesPlaces205_resize.tar.gz") as tar:
        for m in tar.getmembers():
            if m.isfile():
                members[m.name] = tar.extractfile(m).read()
    members[PLACES_PREFIX + bad_key] = b"\xff\xd8\xff not really a jpeg"
    (tmp_path / "mirror" / "imagesPlaces205_resize.tar.gz").write_bytes(tar_gz(members))
    with pytest.raises(PipelineError, match=rf"image {bad_key} in .*imagesPlaces205_resize.tar.gz cannot be decoded"):
        run_prepare(tmp_path, "places205")
    assert not (tmp_path / "prepared" / "places205").exists()
    work = next((tmp_path / "work" / "places205").iterdir())
    assert (work / "train_done.npy").is_file()


def test_an_image_listed_twice_fills_both_places(tmp_path):
    """A key in both splits (or twice in one) is read and decoded once and written to every place it has."""
    from dataset_fixtures import encode_image, index_colour

    from pipeline.data.catalog import Catalog, SplitList
    from pipeline.data.convert import convert, make_plan
    from pipeline.data.stores import FolderStore

    for i in range(3):
        (tmp_path / "images" / f"{i}.png").parent.mkdir(exist_ok=True)
        (tmp_path / "images" / f"{i}.png").write_bytes(encode_image(index_colour(i), (8, 8), "PNG"))
    catalog = Catalog(["a", "b"], {"train": SplitList(["0.png", "1.png", "0.png"], [0, 1, 0]),
                                   "test": SplitList(["1.png", "2.png"], [1, 0])}, FolderStore(tmp_path / "images"))
    ds = convert(catalog, make_plan(catalog, {"train": 0, "test": 0}), tmp_path / "work", tmp_path / "out", "toy", 8,
                 {}, "toy")
    assert colour_index(ds.train_images).tolist() == [0, 1, 0] and colour_index(ds.test_images).tolist() == [1, 2]
