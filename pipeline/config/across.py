"""Checks between params blocks, made wherever a stage loads both blocks, so that a combination that cannot
work stops the first stage that reads it (e.g. preparation, before minutes of image conversion) rather than a
later one."""
from __future__ import annotations

from pipeline.config.checks import require


def check_across(blocks: dict) -> None:
    """`blocks`: the loaded config by block name (those a stage did not load are absent)."""
    data, model = blocks.get("data"), blocks.get("model")
    if data is not None and model is not None:
        require(data.image_size % model.patch_size == 0, "data.image_size", data.image_size,
                f"a multiple of model.patch_size = {model.patch_size} (or change model.patch_size)")
