"""The ViT encoder and the narrow JEPA predictor, built from timm's transformer blocks, and the
image format they take (`normalize`: uint8 NHWC -> normalised float NCHW).

Follows I-JEPA's ViT: pre-norm blocks (LayerNorm eps 1e-6), qkv bias, no class token, a fixed
2-D sin-cos position embedding and a final LayerNorm.
"""
from __future__ import annotations

from functools import lru_cache, partial
from typing import TYPE_CHECKING

import torch
from timm.models.vision_transformer import Block
from torch import nn

from pipeline.core.errors import PipelineError

if TYPE_CHECKING:  # annotations only: a stage that builds no predictor does not run predictor config code
    from pipeline.config.model import ModelConfig
    from pipeline.config.predictor import PredictorConfig

LayerNorm = partial(nn.LayerNorm, eps=1e-6)

# ImageNet statistics, as I-JEPA; grey datasets are stored as three equal channels.
MEAN = (0.485, 0.456, 0.406)
STD = (0.229, 0.224, 0.225)


@lru_cache(maxsize=None)
def _mean_std(device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    # Made once per device: a new CUDA tensor from Python numbers is a copy that waits for the GPU
    # (measured on an H200: every training step stalled on it).
    return (torch.tensor(MEAN, device=device).view(1, 3, 1, 1), torch.tensor(STD, device=device).view(1, 3, 1, 1))


def normalize(images: torch.Tensor) -> torch.Tensor:
    """uint8 (B, H, W, 3) -> float32 (B, 3, H, W), normalised."""
    x = images.permute(0, 3, 1, 2).float().div_(255)
    mean, std = _mean_std(x.device)
    return (x - mean) / std


def sincos_2d(dim: int, grid: tuple[int, int]) -> torch.Tensor:
    """(rows*cols, dim) fixed position embedding: the first half of the channels encodes the column, the second
    the row, in I-JEPA's order (its get_2d_sincos_pos_embed; tests/test_reference_ijepa.py)."""
    rows, cols = grid
    quarter = dim // 4
    omega = 1.0 / 10000 ** (torch.arange(quarter, dtype=torch.float64) / quarter)
    r, c = torch.meshgrid(torch.arange(rows, dtype=torch.float64), torch.arange(cols, dtype=torch.float64),
                          indexing="ij")
    parts = []
    for coord in (c.flatten(), r.flatten()):
        angles = coord[:, None] * omega[None, :]
        parts += [angles.sin(), angles.cos()]
    return torch.cat(parts, dim=1).float()


def gather_tokens(x: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
    """x (B, N, D), idx (B, K) -> (B, K, D)."""
    return torch.gather(x, 1, idx.unsqueeze(-1).expand(-1, -1, x.shape[-1]))


def _blocks(width: int, depth: int, heads: int, mlp_ratio: float) -> nn.ModuleList:
    return nn.ModuleList(Block(width, heads, mlp_ratio, qkv_bias=True, norm_layer=LayerNorm) for _ in range(depth))


def _init_weights(module: nn.Module) -> None:
    """I-JEPA's init as its training runs it: src/helper.py init_model re-draws every Linear after the model's
    constructor, which undoes the constructor's depth rescaling of attn.proj and mlp.fc2, so none is applied."""
    for m in module.modules():
        if isinstance(m, nn.Linear):
            nn.init.trunc_normal_(m.weight, std=0.02)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.LayerNorm):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)


def init_patch_embed_(conv: nn.Conv2d, weight: str, bias: str) -> None:
    """Initialise the patch embedding like a linear layer on the flattened patch (`model.patch_weight`:
    trunc_normal std 0.02 as timm/I-JEPA, or xavier uniform as MAE) and its bias (`model.patch_bias`: torch
    keeps PyTorch's default, zero as I-JEPA). Either weight init draws the same number of random values, so
    the rest of the model's init is unchanged."""
    w = conv.weight.data.view(conv.weight.shape[0], -1)
    if weight == "xavier":
        nn.init.xavier_uniform_(w)
    elif weight == "trunc_normal":
        nn.init.trunc_normal_(w, std=0.02)
    else:
        raise PipelineError(f"model.patch_weight '{weight}' is unknown; use trunc_normal or xavier")
    if bias == "zero":
        nn.init.zeros_(conv.bias)
    elif bias != "torch":
        raise PipelineError(f"model.patch_bias '{bias}' is unknown; use torch or zero")


class Encoder(nn.Module):
    def __init__(self, cfg: ModelConfig, image_size: int, in_chans: int = 3):
        super().__init__()
        if image_size % cfg.patch_size:
            raise PipelineError(f"images are {image_size}px, not a multiple of model.patch_size={cfg.patch_size}; "
                                f"change data.image_size or model.patch_size")
        self.cfg = cfg
        self.image_size = image_size
        self.grid = (image_size // cfg.patch_size,) * 2
        self.width = cfg.width
        self.patch_embed = nn.Conv2d(in_chans, cfg.width, kernel_size=cfg.patch_size, stride=cfg.patch_size)
        self.register_buffer("pos_embed", sincos_2d(cfg.width, self.grid)[None], persistent=False)
        self.blocks = _blocks(cfg.width, cfg.depth, cfg.heads, cfg.mlp_ratio)
        self.norm = LayerNorm(cfg.width)
        _init_weights(self)
        init_patch_embed_(self.patch_embed, cfg.patch_weight, cfg.patch_bias)

    @property
    def num_patches(self) -> int:
        return self.grid[0] * self.grid[1]

    def forward(self, images: torch.Tensor, keep: torch.Tensor | None = None) -> torch.Tensor:
        """images (B, C, H, W) -> tokens (B, N or K, D); `keep` (B, K) selects the visible patches."""
        x = self.patch_embed(images).flatten(2).transpose(1, 2) + self.pos_embed
        if keep is not None:
            x = gather_tokens(x, keep)  # MAE-style: masked patches never enter the blocks
        for block in self.blocks:
            x = block(x)
        return self.norm(x)

    def layer_outputs(self, images: torch.Tensor, last: int) -> list[torch.Tensor]:
        """The last `last` blocks' outputs, each through the final LayerNorm (for linear probes)."""
        x = self.patch_embed(images).flatten(2).transpose(1, 2) + self.pos_embed
        outs = []
        for i, block in enumerate(self.blocks):
            x = block(x)
            if i >= len(self.blocks) - last:
                outs.append(self.norm(x))
        return outs


class LinearEmbed(nn.Module):
    """JEPA's predictor input: one linear map for every target block."""

    def __init__(self, in_dim: int, out_dim: int):
        super().__init__()
        self.proj = nn.Linear(in_dim, out_dim)
        nn.init.trunc_normal_(self.proj.weight, std=0.02)
        nn.init.zeros_(self.proj.bias)

    def forward(self, z: torch.Tensor, regions: torch.Tensor) -> torch.Tensor:
        """z (B, Nc, K), regions (B, M) -> (B*M, Nc, P): the embedded context repeated per target block."""
        return self.proj(z).repeat_interleave(regions.shape[1], dim=0)


class Predictor(nn.Module):
    def __init__(self, cfg: PredictorConfig, encoder_width: int, grid: tuple[int, int], embed: nn.Module):
        super().__init__()
        self.embed = embed
        self.register_buffer("pos_embed", sincos_2d(cfg.width, grid)[None], persistent=False)
        self.mask_token = nn.Parameter(torch.zeros(1, 1, cfg.width))
        self.blocks = _blocks(cfg.width, cfg.depth, cfg.heads, 4.0)
        self.norm = LayerNorm(cfg.width)
        self.out = nn.Linear(cfg.width, encoder_width)
        # Leave `embed` with its own initialisation: SparseJEPA's group maps are calibrated there.
        for name, child in self.named_children():
            if name != "embed":
                _init_weights(child)
        nn.init.trunc_normal_(self.mask_token, std=0.02)

    def forward(self, z: torch.Tensor, context: torch.Tensor, targets: torch.Tensor,
                regions: torch.Tensor) -> torch.Tensor:
        """Predict every target block from its image's context, all blocks in one batch.

        z (B, Nc, K) context tokens, context (B, Nc) and targets (B, M, Nt) patch indices,
        regions (B, M) group of each block. Returns (B*M, Nt, K), block-major per image.
        """
        batch, blocks, nt = targets.shape
        pos = self.pos_embed.expand(batch * blocks, -1, -1)
        x = self.embed(z, regions) + gather_tokens(pos, context.repeat_interleave(blocks, dim=0))
        queries = self.mask_token + gather_tokens(pos, targets.reshape(batch * blocks, nt))
        x = torch.cat([x, queries], dim=1)
        for block in self.blocks:
            x = block(x)
        return self.out(self.norm(x[:, -nt:]))
