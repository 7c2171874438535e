"""Resumable training state: where it lives, how it is named, and how it is written safely.

Checkpoints sit outside DVC (DVC deletes a stage's outputs before re-running it) in a folder
named by a fingerprint of everything that shapes the run (the method, its params, the data and the
code the pretrain stage runs), so a changed param or edited code never resumes from a foreign state
and an earlier experiment's checkpoints are never overwritten.
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

import torch

from pipeline.artifacts import checkpoint_root
from pipeline.core.atomic import save_torch
from pipeline.core.codebase import code_fingerprint
from pipeline.config.params import SECTIONS, Params, as_dict

LAST = "last.pt"
# Logging, snapshot cadence, device, compilation and process count do not change what is computed
# (only float rounding); resuming across them is fine.
NOT_SHAPING = ("log_every", "checkpoint_every", "monitor_every", "keep_every_epochs", "device", "compile",
               "processes")


def run_identity(method, params: Params, data_meta: dict) -> dict:
    """Everything that shapes a pretraining run of `method` (a registry Method); its hash names the folder."""
    identity = {"method": method.key, "build": f"{method.module}.{method.builder}", "seed": params.seed,
                "code": code_fingerprint(["stages.pretrain", f"pipeline.methods.{method.module}"]),
                "data": {k: data_meta.get(k) for k in ("name", "image_size", "num_train", "train_per_class",
                                                        "source")}}
    for name in params.loaded:
        if name in SECTIONS:
            identity[name] = as_dict(getattr(params, name))
    for key in NOT_SHAPING:
        identity.get("pretrain", {}).pop(key, None)
    return identity


def fingerprint(identity: dict) -> str:
    blob = json.dumps(identity, sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:12]


def run_dir(method: str, identity: dict) -> Path:
    return checkpoint_root() / method / fingerprint(identity)


def save(path: Path, state: dict) -> None:
    save_torch(path, state)


def load(path: Path) -> dict:
    return torch.load(path, map_location="cpu", weights_only=False)
