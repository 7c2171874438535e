"""JEPA (I-JEPA): the baseline, exactly the shared model with its default hooks (one linear input map,
deterministic context latents, no extra loss term)."""
from __future__ import annotations

from pipeline.model.jepa import JEPA

__all__ = ["JEPA"]
