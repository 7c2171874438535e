"""Feature extraction: every pooling keeps the tokens it should, and `mean` is the paper's protocol."""
import numpy as np
import pytest
import torch

from conftest import repo_params
from pipeline.core.errors import PipelineError
from pipeline.eval.features import pool_tokens, pooled_features
from pipeline.model.vit import Encoder, normalize


def test_pool_tokens_on_a_2x2_grid():
    tokens = torch.arange(2 * 4 * 3, dtype=torch.float32).view(2, 4, 3)  # 2 images, 2x2 patches, 3 dims
    assert torch.equal(pool_tokens(tokens, (2, 2), "mean"), tokens.mean(dim=1))
    assert torch.equal(pool_tokens(tokens, (2, 2), "tokens"), tokens.flatten(1))
    # On a 2x2 grid each quarter is one patch: the spatial pool keeps every token, dimension-major.
    assert torch.equal(pool_tokens(tokens, (2, 2), "spatial_2x2"), tokens.transpose(1, 2).flatten(1))
    with pytest.raises(PipelineError, match="extract.pooling"):
        pool_tokens(tokens, (2, 2), "max")


def test_spatial_pool_averages_each_quarter_of_the_grid():
    tokens = torch.zeros(1, 16, 1)
    tokens[0, [0, 1, 4, 5], 0] = 4.0  # the top-left quarter of a 4x4 grid
    assert pool_tokens(tokens, (4, 4), "spatial_2x2").tolist() == [[4.0, 0.0, 0.0, 0.0]]


@pytest.mark.parametrize("pooling, width", [("mean", 16), ("spatial_2x2", 64), ("tokens", 256)])
def test_pooled_features_shape_and_mean_is_the_mean_token(pooling, width):
    torch.manual_seed(0)
    encoder = Encoder(repo_params({"model.width": 16, "model.depth": 1, "model.heads": 2}).model, 16).eval()
    images = np.random.default_rng(0).integers(0, 256, (5, 16, 16, 3), dtype=np.uint8)
    feats = pooled_features(encoder, images, 2, 1, pooling)
    assert feats.shape == (5, width)
    if pooling == "mean":
        expected = encoder(normalize(torch.from_numpy(images))).mean(dim=1)
        assert torch.allclose(feats, expected, atol=1e-6)
