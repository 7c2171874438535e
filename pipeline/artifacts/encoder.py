"""target.pt / context.pt: a frozen encoder's weights with what rebuilds it, and the params it was trained with.

    {"method": <method key>, "model": <model params block>, "image_size": px, "state_dict": {...},
     "params": {<flattened params the encoder was made with>}, ...}   (torch.save)

The pretrain stage writes it (and periodic snapshots in the checkpoint folder); extraction reads it and
builds the network from it (pipeline/eval/features.py: this layer holds files, not networks).
"""
from __future__ import annotations

from pathlib import Path

import torch

from pipeline.config.params import as_dict
from pipeline.core.atomic import save_torch
from pipeline.core.errors import PipelineError


def encoder_record(encoder, method: str, extra: dict | None = None) -> dict:
    """What an encoder file holds for `encoder` (a ViT with `cfg`, `image_size` and a state dict)."""
    return {"method": method, "model": as_dict(encoder.cfg), "image_size": encoder.image_size,
            "state_dict": {k: v.detach().cpu() for k, v in encoder.state_dict().items()}, **(extra or {})}


def write_encoder(path: Path, encoder, method: str, extra: dict | None = None) -> None:
    save_torch(path, encoder_record(encoder, method, extra))


def damaged(path: Path, error: Exception) -> PipelineError:
    return PipelineError(f"encoder {path} is damaged or from another version ({type(error).__name__}); "
                         f"re-create it with `dvc repro -f` of its pretrain stage")


def read_encoder(path: Path) -> dict:
    """The record the pretrain stage saved (`encoder_record`'s keys)."""
    try:
        saved = torch.load(path, map_location="cpu", weights_only=False)
    except FileNotFoundError:
        raise PipelineError(f"encoder {path} not found; run `dvc repro` to pretrain it first") from None
    except Exception as e:
        raise damaged(path, e) from None
    if not isinstance(saved, dict) or not {"model", "image_size", "state_dict"} <= set(saved):
        raise damaged(path, KeyError("model, image_size or state_dict"))
    return saved
