"""<method>/seed<k>/<encoder>/<dataset>.npz (or pixels/<dataset>.npz): pooled features of one prepared dataset.

    train, test               float32 (N, D) pooled features
    train_labels, test_labels int64 (N,)
    num_classes               int64
    encoder_params            JSON: the params the encoder was made with (logged by the probe)
    dataset                   JSON: what the prepared data holds (DATASET_FACTS of its meta.json)
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch

from pipeline.core.atomic import atomic_path
from pipeline.core.errors import PipelineError

# What the report says about each probed dataset, taken from the prepared dataset's meta.json.
DATASET_FACTS = ("display_name", "num_train", "num_test", "train_per_class", "test_per_class", "listed",
                 "short_classes", "test_split", "source")


def dataset_summary(meta: dict) -> dict:
    return {key: meta[key] for key in DATASET_FACTS if key in meta}


def write_features(path: Path, train: torch.Tensor, train_labels: np.ndarray, test: torch.Tensor,
                  test_labels: np.ndarray, num_classes: int, encoder_params: dict, dataset: dict | None = None) -> None:
    """`encoder_params` (the pretraining params) and `dataset` (what the prepared data holds: subsets,
    sources) travel with the features, so the probe can log them and the report can show them."""
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as f:
            np.savez(f, train=train.numpy(), train_labels=np.asarray(train_labels), test=test.numpy(),
                     test_labels=np.asarray(test_labels), num_classes=np.int64(num_classes),
                     encoder_params=np.array(json.dumps(encoder_params, default=str)),
                     dataset=np.array(json.dumps(dataset or {}, default=str)))


def read_features(path: Path) -> dict:
    try:
        with np.load(path) as f:
            out = {k: f[k] for k in f.files}
        out["encoder_params"] = json.loads(str(out["encoder_params"]))
        out["dataset"] = json.loads(str(out["dataset"])) if "dataset" in out else {}
        missing = {"train", "train_labels", "test", "test_labels", "num_classes"} - set(out)
        if missing:
            raise KeyError(", ".join(sorted(missing)))
    except FileNotFoundError:
        raise PipelineError(f"features {path} not found; run `dvc repro` to extract them first") from None
    except Exception as e:
        raise PipelineError(f"features {path} are damaged or incomplete ({type(e).__name__}: {e}); "
                            f"re-extract them with `dvc repro -f` of their extract stage") from None
    return out
