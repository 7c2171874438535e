"""Resumable training state: where it lives, how it is named, and how it is written safely.

Checkpoints sit outside DVC (DVC deletes a stage's outputs before re-running it) in a folder
named by a fingerprint of everything that shapes the run, so a changed param never resumes
from a foreign state and an earlier experiment's checkpoints are never overwritten.
"""
from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import torch

from pipeline.atomic import atomic_path
from pipeline.config import as_dict

LAST = "last.pt"


def checkpoint_root() -> Path:
    """SPARSEJEPA_CHECKPOINTS, else <repo>/checkpoints (the real repo also inside `dvc exp run --temp`)."""
    if os.environ.get("SPARSEJEPA_CHECKPOINTS"):
        return Path(os.environ["SPARSEJEPA_CHECKPOINTS"])
    return Path(os.environ.get("DVC_ROOT") or os.getcwd()) / "checkpoints"


def fingerprint(identity: dict) -> str:
    blob = json.dumps(identity, sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:12]


def run_dir(model: str, identity: dict) -> Path:
    return checkpoint_root() / model / fingerprint(identity)


def encoder_file(encoder, kind: str, extra: dict | None = None) -> dict:
    """What an encoder file holds: enough to rebuild the frozen encoder (features.load_encoder)."""
    return {"kind": kind, "model": as_dict(encoder.cfg), "image_size": encoder.image_size,
            "state_dict": {k: v.detach().cpu() for k, v in encoder.state_dict().items()}, **(extra or {})}


def save(path: Path, state: dict) -> None:
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        # Through a file object: torch.save(path) names the archive after the (temporary) file,
        # which would make identical weights hash differently and needlessly re-run DVC stages.
        torch.save(state, f)


def load(path: Path) -> dict:
    return torch.load(path, map_location="cpu", weights_only=False)
