"""target.pt / context.pt: a frozen encoder with what rebuilds it, and the params it was trained with.

    {"kind": <method key>, "model": <model params block>, "image_size": px, "state_dict": {...},
     "params": {<flattened params the encoder was made with>}, ...}   (torch.save)

The pretrain stage writes it (and periodic snapshots in the checkpoint folder); extraction reads it.
"""
from __future__ import annotations

from pathlib import Path

import torch

from pipeline.config.model import ModelConfig
from pipeline.core.atomic import atomic_path
from pipeline.core.errors import PipelineError
from pipeline.core.params import as_dict
from pipeline.model.vit import Encoder


def encoder_record(encoder: Encoder, method: str, extra: dict | None = None) -> dict:
    """What an encoder file holds: enough to rebuild the frozen encoder (`read_encoder`)."""
    return {"kind": method, "model": as_dict(encoder.cfg), "image_size": encoder.image_size,
            "state_dict": {k: v.detach().cpu() for k, v in encoder.state_dict().items()}, **(extra or {})}


def save_torch(path: Path, state: dict) -> None:
    """torch.save, atomically and byte-reproducibly."""
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        # Through a file object: torch.save(path) names the archive after the (temporary) file,
        # which would make identical weights hash differently and needlessly re-run DVC stages.
        torch.save(state, f)


def write_encoder(path: Path, encoder: Encoder, method: str, extra: dict | None = None) -> None:
    save_torch(path, encoder_record(encoder, method, extra))


def read_encoder(path: Path) -> tuple[Encoder, dict]:
    """The frozen encoder saved by the pretrain stage, and the params it was made with."""
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
