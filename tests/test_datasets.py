"""prepare(): official files (fixtures in the exact official format) -> verified raw folder -> arrays.

No test touches the network: conftest's autouse `offline` fixture makes every fetch fail as if offline.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import yaml
from dataset_fixtures import (decode_index, md5_bytes, patch_cifar100, patch_fashion_mnist, write_cifar100,
                              write_fashion_mnist)
from PIL import Image
from torchvision.datasets import CIFAR100, FashionMNIST

from dataset_fixtures import save_prepared

from pipeline.artifacts.prepared import ARRAYS, PreparedDataset, load_prepared
from pipeline.config.subsets import SubsetSpec
from pipeline.core.errors import PipelineError
from pipeline.config.params import with_overrides
from pipeline.data import sources
from pipeline.data.imaging import to_square_rgb
from pipeline.data.prepare import prepare
from pipeline.data.subsets import per_class_subset

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def fashion(tmp_path, monkeypatch):
    fixture = write_fashion_mnist(tmp_path / "mirror")
    patch_fashion_mnist(monkeypatch, fixture.md5s)
    return fixture


@pytest.fixture
def cifar(tmp_path, monkeypatch):
    fixture = write_cifar100(tmp_path / "mirror")
    patch_cifar100(monkeypatch, fixture.md5s)
    return fixture


def run_prepare(tmp_path: Path, name: str, image_size: int, per_class: int = 0, mirror: str | None = "mirror",
                test_per_class: int = 0):
    return prepare(name, tmp_path / "raw", tmp_path / "prepared" / name, image_size,
                   SubsetSpec(per_class, test_per_class), tmp_path / mirror if mirror else None, tmp_path / "work")


# ---------------------------------------------------------------------------- round trips

def test_fashion_mnist_round_trip_through_mirror(tmp_path, fashion, offline):
    run_prepare(tmp_path, "fashion_mnist", 28)
    ds = load_prepared(tmp_path / "prepared" / "fashion_mnist")

    assert ds.train_images.dtype == np.uint8 and ds.train_images.shape == (60, 28, 28, 3)
    for channel in range(3):  # grey replicated to 3 channels
        np.testing.assert_array_equal(ds.train_images[..., channel], fashion.train.images)
        np.testing.assert_array_equal(ds.test_images[..., channel], fashion.test.images)
    assert ds.train_labels.dtype == np.int64
    np.testing.assert_array_equal(ds.train_labels, fashion.train.labels)
    np.testing.assert_array_equal(ds.test_labels, fashion.test.labels)
    assert ds.classes == list(FashionMNIST.classes)
    assert offline.urls == []
    # copied into torchvision's layout under data/raw/<dataset>
    assert (tmp_path / "raw/fashion_mnist/FashionMNIST/raw/train-images-idx3-ubyte.gz").is_file()


def test_meta_json(tmp_path, fashion):
    run_prepare(tmp_path, "fashion_mnist", 28)
    meta = json.loads((tmp_path / "prepared/fashion_mnist/meta.json").read_text())
    assert meta["name"] == "fashion_mnist" and meta["display_name"] == "FashionMNIST"
    assert meta["classes"] == list(FashionMNIST.classes) and meta["num_classes"] == 10
    assert (meta["image_size"], meta["train_per_class"], meta["num_train"], meta["num_test"]) == (28, 0, 60, 20)
    assert [s["file"] for s in meta["source"]] == [f for f, _ in FashionMNIST.resources]
    assert meta["source"][0]["md5"] == fashion.md5s["train-images-idx3-ubyte.gz"]
    assert meta["source"][0]["url"] == FashionMNIST.mirrors[0] + "train-images-idx3-ubyte.gz"


def test_cifar100_round_trip_keeps_channel_order(tmp_path, cifar):
    run_prepare(tmp_path, "cifar100", 32)
    ds = load_prepared(tmp_path / "prepared" / "cifar100")

    assert ds.train_images.shape == (50, 32, 32, 3) and ds.test_images.shape == (20, 32, 32, 3)
    np.testing.assert_array_equal(ds.train_images, cifar.train.images)
    np.testing.assert_array_equal(ds.test_images, cifar.test.images)
    np.testing.assert_array_equal(ds.train_labels, cifar.train.labels)
    assert ds.classes == cifar.classes
    # A known pixel straight from the official planar layout: row = [R plane | G plane | B plane].
    row = cifar.train.images[3].transpose(2, 0, 1).reshape(3072)
    y, x = 5, 7
    assert list(ds.train_images[3, y, x]) == [row[y * 32 + x], row[1024 + y * 32 + x], row[2048 + y * 32 + x]]
    assert json.loads((tmp_path / "prepared/cifar100/meta.json").read_text())["source"] == [
        {"file": CIFAR100.filename, "md5": cifar.md5s[CIFAR100.filename], "url": CIFAR100.url}]


def pil_resize(images: np.ndarray, size: int) -> np.ndarray:
    """Independent reference: PIL's bilinear resize, which is antialiased when shrinking."""
    return np.stack([np.asarray(Image.fromarray(im).resize((size, size), Image.BILINEAR)) for im in images])


def test_resize_grey_up_and_rgb_down(tmp_path, fashion, cifar):
    run_prepare(tmp_path, "fashion_mnist", 32)
    run_prepare(tmp_path, "cifar100", 16)
    grey = load_prepared(tmp_path / "prepared" / "fashion_mnist")
    rgb = load_prepared(tmp_path / "prepared" / "cifar100")

    assert grey.train_images.shape == (60, 32, 32, 3) and grey.train_images.dtype == np.uint8
    assert grey.image_size == 32 and grey.test_images.shape == (20, 32, 32, 3)
    for channel in range(3):
        assert np.abs(grey.train_images[..., channel].astype(int) - pil_resize(fashion.train.images, 32)).max() <= 1
    assert rgb.train_images.shape == (50, 16, 16, 3) and rgb.test_images.shape == (20, 16, 16, 3)
    assert np.abs(rgb.test_images.astype(int) - pil_resize(cifar.test.images, 16)).max() <= 1


def test_resize_of_a_constant_image_stays_constant():
    out = to_square_rgb(np.full((28, 28), 137, dtype=np.uint8), 40)
    assert out.shape == (40, 40, 3) and out.dtype == np.uint8 and (out == 137).all()


def test_second_run_uses_raw_folder_without_mirror_or_network(tmp_path, fashion, offline):
    run_prepare(tmp_path, "fashion_mnist", 28)
    run_prepare(tmp_path, "fashion_mnist", 28, mirror=None)
    assert offline.urls == []
    assert load_prepared(tmp_path / "prepared" / "fashion_mnist").num_classes == 10


def test_verified_md5_is_remembered_until_the_file_changes(tmp_path, fashion, monkeypatch):
    from pipeline.data import download

    run_prepare(tmp_path, "fashion_mnist", 28)
    hashed = []
    real = download.md5_of
    monkeypatch.setattr(download, "md5_of", lambda path: hashed.append(path.name) or real(path))
    run_prepare(tmp_path, "fashion_mnist", 28)
    assert hashed == []  # size and mtime unchanged: a 120 GB archive is not hashed again

    raw_file = tmp_path / "raw/fashion_mnist/FashionMNIST/raw/t10k-labels-idx1-ubyte.gz"
    raw_file.unlink()  # a hard link to the mirror's file: replace it, never write through it
    raw_file.write_bytes(b"something else entirely")
    with pytest.raises(PipelineError, match="t10k-labels-idx1-ubyte.gz has md5 .* but the official"):
        run_prepare(tmp_path, "fashion_mnist", 28)
    assert hashed == ["t10k-labels-idx1-ubyte.gz"]
    assert (tmp_path / "mirror/FashionMNIST/raw/t10k-labels-idx1-ubyte.gz").read_bytes() != b"something else entirely"


def test_flat_mirror_layout_is_found(tmp_path, fashion):
    nested = tmp_path / "mirror" / "FashionMNIST" / "raw"
    flat = tmp_path / "flat"
    flat.mkdir()
    for f in nested.iterdir():
        f.rename(flat / f.name)
    run_prepare(tmp_path, "fashion_mnist", 28, mirror="flat")
    assert (tmp_path / "prepared" / "fashion_mnist" / "meta.json").is_file()


# ---------------------------------------------------------------------------- errors

def test_wrong_md5_in_mirror_is_refused_and_nothing_written(tmp_path, fashion, monkeypatch):
    expected = "0" * 32
    monkeypatch.setattr(FashionMNIST, "resources", [("train-images-idx3-ubyte.gz", expected),
                                                    *FashionMNIST.resources[1:]])
    mirror_file = tmp_path / "mirror/FashionMNIST/raw/train-images-idx3-ubyte.gz"
    with pytest.raises(PipelineError) as err:
        run_prepare(tmp_path, "fashion_mnist", 28)

    message = str(err.value)
    assert expected in message and fashion.md5s["train-images-idx3-ubyte.gz"] in message
    assert str(mirror_file) in message and "replace it with the official file" in message
    assert "\n" not in message
    assert not (tmp_path / "prepared" / "fashion_mnist").exists()
    assert mirror_file.is_file()  # the user's file is never deleted
    assert not (tmp_path / "raw/fashion_mnist/FashionMNIST/raw/train-images-idx3-ubyte.gz").exists()


def test_wrong_md5_in_raw_folder(tmp_path, fashion):
    raw_file = tmp_path / "raw/fashion_mnist/FashionMNIST/raw/t10k-labels-idx1-ubyte.gz"
    raw_file.parent.mkdir(parents=True)
    raw_file.write_bytes(b"not the official file")
    with pytest.raises(PipelineError, match="has md5 .* but the official t10k-labels-idx1-ubyte.gz has md5") as err:
        run_prepare(tmp_path, "fashion_mnist", 28)
    assert md5_bytes(b"not the official file") in str(err.value) and str(raw_file) in str(err.value)
    assert not (tmp_path / "prepared" / "fashion_mnist").exists()


@pytest.mark.parametrize("name", ["fashion_mnist", "cifar100"])
def test_offline_without_mirror_says_which_file_and_where_to_put_it(tmp_path, name, offline):
    with pytest.raises(PipelineError) as err:
        run_prepare(tmp_path, name, 28, mirror=None)
    message = str(err.value)
    first = sources.get(name).files()[0]
    for part in (first.filename, first.md5, first.urls[0], "network disabled in tests",
                 f"$SPARSEJEPA_DATA_MIRROR/{first.rel_path}", str(tmp_path / "raw" / name / first.rel_path)):
        assert part in message
    assert "\n" not in message
    assert offline.urls == list(first.urls)  # stops at the first missing file, before any conversion
    assert not (tmp_path / "prepared" / name).exists()
    assert not list((tmp_path / "raw" / name).rglob("*.tmp"))  # no partial download left behind


def test_missing_mirror_file_names_the_mirror_path(tmp_path, fashion):
    (tmp_path / "mirror/FashionMNIST/raw/t10k-images-idx3-ubyte.gz").unlink()
    with pytest.raises(PipelineError, match="t10k-images-idx3-ubyte.gz") as err:
        run_prepare(tmp_path, "fashion_mnist", 28)
    assert str(tmp_path / "mirror/FashionMNIST/raw/t10k-images-idx3-ubyte.gz") in str(err.value)


def test_mirror_that_is_not_a_folder(tmp_path):
    with pytest.raises(PipelineError, match="SPARSEJEPA_DATA_MIRROR=.* is not a folder"):
        run_prepare(tmp_path, "fashion_mnist", 28, mirror="no_such_folder")


def test_corrupt_cifar_archive(tmp_path, monkeypatch):
    garbage = b"this is not a tar.gz archive" * 100
    (tmp_path / "mirror").mkdir()
    (tmp_path / "mirror" / CIFAR100.filename).write_bytes(garbage)
    monkeypatch.setattr(CIFAR100, "tgz_md5", md5_bytes(garbage))
    with pytest.raises(PipelineError, match=r"CIFAR-100 archive .*cifar-100-python.tar.gz could not be read"):
        run_prepare(tmp_path, "cifar100", 32)
    assert not (tmp_path / "prepared" / "cifar100").exists()


def test_cifar_archive_with_wrong_contents(tmp_path, cifar, monkeypatch):
    monkeypatch.setattr(CIFAR100, "train_list", [["train", "0" * 32]])
    with pytest.raises(PipelineError, match=r"cifar-100-python.tar.gz could not be read \(Dataset not found"):
        run_prepare(tmp_path, "cifar100", 32)


def test_corrupt_fashion_mnist_gz(tmp_path, fashion, monkeypatch):
    garbage = b"\x1f\x8b garbage, not gzip data" * 10
    (tmp_path / "mirror/FashionMNIST/raw/train-labels-idx1-ubyte.gz").write_bytes(garbage)
    patch_fashion_mnist(monkeypatch, {**fashion.md5s, "train-labels-idx1-ubyte.gz": md5_bytes(garbage)})
    with pytest.raises(PipelineError, match=r"FashionMNIST file .*train-labels-idx1-ubyte.gz could not be read"):
        run_prepare(tmp_path, "fashion_mnist", 28)
    assert not (tmp_path / "prepared" / "fashion_mnist").exists()


def test_unknown_dataset_lists_known_ones(tmp_path):
    with pytest.raises(PipelineError, match="unknown dataset 'mnist'; known datasets: cifar100, clevr_count, "
                                            "fashion_mnist, inat18, places205"):
        run_prepare(tmp_path, "mnist", 28)


# ---------------------------------------------------------------------------- subsets

def test_per_class_subset_keeps_n_per_class_in_original_order(tmp_path, fashion):
    run_prepare(tmp_path, "fashion_mnist", 28, per_class=4)
    ds = load_prepared(tmp_path / "prepared" / "fashion_mnist")

    assert np.bincount(ds.train_labels, minlength=10).tolist() == [4] * 10
    picked = decode_index(ds.train_images)
    assert (np.diff(picked) > 0).all()  # original relative order
    np.testing.assert_array_equal(ds.train_labels, fashion.train.labels[picked])
    assert len(ds.test_labels) == 20  # the test split stays whole
    assert ds.meta["train_per_class"] == 4 and ds.meta["num_train"] == 40


def test_per_class_subset_is_fixed_and_not_just_the_first_images():
    labels = np.arange(1000) % 5
    first = per_class_subset(labels, 10, 5)
    np.testing.assert_array_equal(first, per_class_subset(labels, 10, 5))
    assert len(first) == 50 and first.max() > 50


def test_per_class_subset_of_a_long_tailed_split_keeps_the_balance_it_promises():
    labels = np.repeat(np.arange(4), [9, 2, 5, 0])  # class 3 has no images at all
    rng = np.random.default_rng(1)
    labels = labels[rng.permutation(len(labels))]
    kept = per_class_subset(labels, 4, 4)
    assert np.bincount(labels[kept], minlength=4).tolist() == [4, 2, 4, 0]  # min(4, available) per class
    assert (np.diff(kept) > 0).all() and len(set(kept)) == len(kept)
    np.testing.assert_array_equal(per_class_subset(labels, 0, 4), np.arange(len(labels)))


def test_subset_larger_than_a_class_keeps_the_whole_class(tmp_path, fashion):
    run_prepare(tmp_path, "fashion_mnist", 28, per_class=7)  # every class has 6
    ds = load_prepared(tmp_path / "prepared" / "fashion_mnist")
    assert np.bincount(ds.train_labels).tolist() == [6] * 10
    assert ds.meta["short_classes"] == {"train": 10, "test": 0}


def test_test_split_subset_only_when_asked(tmp_path, fashion):
    run_prepare(tmp_path, "fashion_mnist", 28, per_class=2, test_per_class=1)
    ds = load_prepared(tmp_path / "prepared" / "fashion_mnist")
    assert np.bincount(ds.test_labels).tolist() == [1] * 10 and np.bincount(ds.train_labels).tolist() == [2] * 10
    np.testing.assert_array_equal(ds.test_labels, fashion.test.labels[decode_index(ds.test_images)])
    assert (ds.meta["train_per_class"], ds.meta["test_per_class"]) == (2, 1)
    assert ds.meta["listed"] == {"train": 60, "test": 20}


# ---------------------------------------------------------------------------- arrays format

def small_dataset() -> PreparedDataset:
    rng = np.random.default_rng(0)
    return PreparedDataset("toy", ["a", "b"], rng.integers(0, 256, (4, 8, 8, 3), dtype=np.uint8),
                           np.array([0, 1, 0, 1]), rng.integers(0, 256, (2, 8, 8, 3), dtype=np.uint8),
                           np.array([1, 0]), {"display_name": "Toy"})


def test_save_load_round_trip_and_mmap(tmp_path):
    save_prepared(tmp_path / "toy", small_dataset())
    ds = load_prepared(tmp_path / "toy", mmap=True)
    assert isinstance(ds.train_images, np.memmap) and not ds.train_images.flags.writeable
    np.testing.assert_array_equal(ds.train_images, small_dataset().train_images)
    assert ds.meta["num_train"] == 4 and ds.meta["display_name"] == "Toy" and ds.classes == ["a", "b"]


def test_load_prepared_missing_file_says_how_to_rebuild(tmp_path):
    save_prepared(tmp_path / "toy", small_dataset())
    (tmp_path / "toy" / "test_labels.npy").unlink()
    with pytest.raises(PipelineError, match=r"missing test_labels.npy; run `dvc repro prepare@toy`"):
        load_prepared(tmp_path / "toy")
    with pytest.raises(PipelineError, match=r"nothing does not exist; run `dvc repro prepare@nothing`"):
        load_prepared(tmp_path / "nothing")


def test_load_prepared_truncated_array(tmp_path):
    save_prepared(tmp_path / "toy", small_dataset())
    (tmp_path / "toy" / "train_images.npy").write_bytes(b"\x93NUMPY garbage")
    with pytest.raises(PipelineError, match=r"train_images.npy is unreadable .*dvc repro prepare@toy"):
        load_prepared(tmp_path / "toy")


def test_save_refuses_inconsistent_arrays(tmp_path):
    bad = small_dataset()
    bad.train_labels = np.array([0, 1, 5, 1])
    with pytest.raises(ValueError, match="train_labels lie in"):
        save_prepared(tmp_path / "toy", bad)
    assert not (tmp_path / "toy").exists()
    assert set(ARRAYS) == {"train_images", "train_labels", "test_images", "test_labels"}


# ---------------------------------------------------------------------------- stage script

def test_stage_script_reads_params_and_mirror_env(tmp_path, fashion, monkeypatch):
    raw = with_overrides(yaml.safe_load((REPO / "params.yaml").read_text()),
                         {"data.image_size": 28, "subsets.fashion_mnist.train": 2})
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(raw))
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("SPARSEJEPA_DATA_MIRROR", str(tmp_path / "mirror"))
    from stages import prepare as stage

    stage.main(["fashion_mnist"])
    ds = load_prepared(tmp_path / "data" / "prepared" / "fashion_mnist")
    assert len(ds.train_labels) == 20 and ds.image_size == 28
    assert (tmp_path / "data/raw/fashion_mnist/FashionMNIST/raw/t10k-labels-idx1-ubyte.gz").is_file()
    with pytest.raises(PipelineError, match="usage"):
        stage.main([])


# ---------------------------------------------------------------------------- real data

def test_real_fashion_mnist_from_shared_mirror(tmp_path, offline, shared_data):
    ds = prepare("fashion_mnist", tmp_path / "raw", tmp_path / "out", 28, SubsetSpec(0, 0), shared_data, tmp_path / "work")
    assert ds.train_images.shape == (60000, 28, 28, 3) and ds.test_images.shape == (10000, 28, 28, 3)
    assert ds.num_classes == 10 and np.bincount(ds.test_labels).tolist() == [1000] * 10
    assert offline.urls == []
    loaded = load_prepared(tmp_path / "out", mmap=True)
    assert (loaded.meta["num_train"], loaded.meta["num_test"]) == (60000, 10000)
