"""Frozen-encoder features: average-pooled patch tokens, computed once per (model, dataset)."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch

from pipeline.atomic import atomic_path
from pipeline.augment import normalize
from pipeline.config import ModelConfig
from pipeline.errors import PipelineError
from pipeline.progress import StepProgress
from pipeline.vit import Encoder


def load_encoder(path: Path) -> tuple[Encoder, dict]:
    """The frozen encoder saved by the pretrain stage, and the params it was trained with."""
    try:
        saved = torch.load(path, map_location="cpu", weights_only=False)
        encoder = Encoder(ModelConfig(**saved["model"]), saved["image_size"])
        encoder.load_state_dict(saved["state_dict"])
    except FileNotFoundError:
        raise PipelineError(f"encoder {path} not found; run `dvc repro` to pretrain it first") from None
    except Exception as e:
        raise PipelineError(f"encoder {path} is damaged or from another version ({type(e).__name__}); "
                            f"re-create it with `dvc repro -f` of its pretrain stage") from None
    return encoder.eval().requires_grad_(False), saved.get("params", {})


@torch.no_grad()
def pooled_features(encoder: Encoder, images: torch.Tensor | np.ndarray, batch_size: int, layers: int = 1,
                    device: torch.device | str = "cpu", label: str = "features") -> torch.Tensor:
    """uint8 (N, H, W, 3) -> float32 (N, layers * D): the mean over patch tokens of the last `layers` blocks.

    `images` may be a memory-mapped array: only one batch of it is in memory at a time.
    """
    if images.shape[1] != encoder.image_size or images.shape[2] != encoder.image_size:
        raise PipelineError(f"images are {images.shape[1]}x{images.shape[2]} but the encoder was pretrained at "
                            f"{encoder.image_size}px; prepare the dataset with data.image_size={encoder.image_size}")
    if layers > len(encoder.blocks):
        raise PipelineError(f"extract.layers={layers} exceeds the encoder's depth {len(encoder.blocks)}; lower it")
    device = torch.device(device)
    encoder = encoder.to(device)
    out = torch.empty(len(images), layers * encoder.width)
    with StepProgress(label, len(images)) as bar:
        for start in range(0, len(images), batch_size):
            batch = images[start:start + batch_size]
            if isinstance(batch, np.ndarray):
                batch = torch.from_numpy(np.array(batch))  # a copy: a read-only memmap slice cannot back a tensor
            x = normalize(batch.to(device))
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda"):
                tokens = encoder.layer_outputs(x, layers)
            pooled = torch.cat([t.float().mean(dim=1) for t in tokens], dim=1)
            out[start:start + len(x)] = pooled.cpu()
            bar.update(min(start + batch_size, len(images)))
    if not torch.isfinite(out).all():
        raise PipelineError(f"{label}: the encoder produced NaN or infinite features; its pretraining diverged "
                            f"(see reports/pretrain), so re-run pretraining with a lower pretrain.lr")
    return out


# What the report says about each probed dataset, taken from the prepared dataset's meta.json.
DATASET_FACTS = ("display_name", "num_train", "num_test", "train_per_class", "test_per_class", "listed",
                 "short_classes", "test_split", "source")


def dataset_summary(meta: dict) -> dict:
    return {key: meta[key] for key in DATASET_FACTS if key in meta}


def save_features(path: Path, train: torch.Tensor, train_labels: np.ndarray, test: torch.Tensor,
                  test_labels: np.ndarray, num_classes: int, encoder_params: dict, dataset: dict | None = None) -> None:
    """`encoder_params` (the pretraining params) and `dataset` (what the prepared data holds: subsets,
    sources) travel with the features, so the probe can log them and the report can show them."""
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as f:
            np.savez(f, train=train.numpy(), train_labels=np.asarray(train_labels), test=test.numpy(),
                     test_labels=np.asarray(test_labels), num_classes=np.int64(num_classes),
                     encoder_params=np.array(json.dumps(encoder_params, default=str)),
                     dataset=np.array(json.dumps(dataset or {}, default=str)))


def load_features(path: Path) -> dict:
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
