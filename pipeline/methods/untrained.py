"""The random encoder: the untrained reference every probe is compared with.

It is the initialisation JEPA's encoders start from (a method seeds torch with `seed` and builds its
context encoder first), so "pretrained minus random" is what pretraining added.
"""
from __future__ import annotations

import torch

from pipeline.config.params import Params
from pipeline.model.vit import Encoder


def random_encoder(params: Params, image_size: int) -> Encoder:
    torch.manual_seed(params.seed)
    return Encoder(params.model, image_size)
