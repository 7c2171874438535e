"""Multi-block mask statistics, including the reference sampler's defects that must stay fixed."""
import dataclasses

import pytest
import torch
from conftest import repo_params

from pipeline.core.errors import PipelineError
from pipeline.model.regions import region_grid, region_of
from pipeline.pretrain.masks import check_feasible, context_shapes, sample_masks, valid_shapes

CFG = repo_params().masks  # I-JEPA's: 4 targets, scale (0.15, 0.2), aspect (0.75, 1.5), context (0.85, 1)


def draws(grid, batches=200, batch=16, cfg=CFG, seed=0):
    gen = torch.Generator().manual_seed(seed)
    return [sample_masks(cfg, batch, grid, gen) for _ in range(batches)]


@pytest.mark.parametrize("grid", [(7, 7), (8, 8), (14, 14)])
def test_target_blocks_respect_scale_and_aspect(grid):
    n = grid[0] * grid[1]
    for m in draws(grid, batches=50):
        rows = m.targets // grid[1]
        cols = m.targets % grid[1]
        h = rows.amax(-1) - rows.amin(-1) + 1
        w = cols.amax(-1) - cols.amin(-1) + 1
        # Each block is a full rectangle: its patch count equals its bounding box.
        assert torch.equal(h * w, torch.full_like(h, m.targets.shape[-1]))
        scale = (h * w).float() / n
        aspect = h.float() / w.float()
        assert ((scale >= CFG.target_scale[0] - 1e-9) & (scale <= CFG.target_scale[1] + 1e-9)).all()
        assert ((aspect >= CFG.target_aspect[0] - 1e-9) & (aspect <= CFG.target_aspect[1] + 1e-9)).all()


@pytest.mark.parametrize("grid", [(7, 7), (8, 8), (14, 14)])
def test_context_is_disjoint_from_every_target(grid):
    for m in draws(grid, batches=50):
        ctx = m.context[:, None, :, None]
        tgt = m.targets.flatten(1)[:, None, None, :]
        assert not (ctx == tgt).any()
        assert m.context.shape[1] >= CFG.min_context
        # indices are valid, sorted and unique per image
        assert (m.context.diff(dim=1) > 0).all()
        assert m.context.max() < grid[0] * grid[1]


@pytest.mark.parametrize("grid", [(7, 7), (8, 8), (14, 14)])
def test_every_patch_reachable_by_context_and_by_targets(grid):
    n = grid[0] * grid[1]
    seen_ctx = torch.zeros(n, dtype=torch.bool)
    seen_tgt = torch.zeros(n, dtype=torch.bool)
    for m in draws(grid, batches=100):
        seen_ctx[m.context.flatten()] = True
        seen_tgt[m.targets.flatten()] = True
    # The reference never reached the last row/column with either.
    assert seen_ctx.all() and seen_tgt.all()


def test_context_truncation_keeps_late_patches():
    # The reference cut every context to the batch minimum by dropping its highest indices,
    # so the bottom-right patches were under-represented. A random subset is not biased.
    grid = (8, 8)
    counts = torch.zeros(64)
    for m in draws(grid, batches=300):
        counts += torch.bincount(m.context.flatten(), minlength=64)
    first_row, last_row = counts[:8].mean(), counts[-8:].mean()
    assert last_row > 0.8 * first_row


def test_shape_draws_are_independent_of_each_other():
    # One uniform for both scale and aspect (the reference) ties big blocks to tall ones. On a
    # 14x14 grid several shapes are valid; both orientations must appear at both sizes.
    shapes = set()
    for m in draws((14, 14), batches=300, batch=1):
        rows, cols = m.targets[0, 0] // 14, m.targets[0, 0] % 14
        shapes.add((int(rows.max() - rows.min() + 1), int(cols.max() - cols.min() + 1)))
    tall = {s for s in shapes if s[0] > s[1]}
    wide = {s for s in shapes if s[0] < s[1]}
    assert tall and wide and len(shapes) >= 4


def test_small_grid_terminates_and_is_checked_up_front():
    # 8x8 with min_keep above the smallest block made the reference loop forever.
    cfg = dataclasses.replace(CFG, min_context=10)
    check_feasible(cfg, (8, 8))
    m = draws((8, 8), batches=20, cfg=cfg)[-1]
    assert m.context.shape[1] >= 10
    impossible = dataclasses.replace(CFG, min_context=40)
    with pytest.raises(PipelineError, match="min_context"):
        check_feasible(impossible, (8, 8))
    with pytest.raises(PipelineError, match="target block"):
        check_feasible(dataclasses.replace(CFG, target_scale=(0.01, 0.011)), (8, 8))


def test_valid_shapes_on_8x8_are_the_two_3x4_blocks():
    assert set(valid_shapes((8, 8), (0.15, 0.2), (0.75, 1.5))) == {(3, 4), (4, 3)}


def test_context_shapes_are_square_where_the_grid_allows_else_nearest_to_square():
    assert context_shapes((7, 7), (0.85, 1.0)) == ((7, 7),)
    assert context_shapes((8, 8), (0.85, 1.0)) == ((8, 8),)
    # 4x8: a square covers at most half the grid, so the context is the near-square rectangles of that scale.
    rect = context_shapes((4, 8), (0.85, 1.0))
    assert rect and all(h != w and 0.85 <= h * w / 32 <= 1.0 for h, w in rect)


def test_same_seed_same_masks():
    a = draws((8, 8), batches=3, seed=7)[-1]
    b = draws((8, 8), batches=3, seed=7)[-1]
    assert torch.equal(a.context, b.context) and torch.equal(a.targets, b.targets)


def test_regions_tile_the_grid():
    assert region_grid(4) == (2, 2) and region_grid(2) == (1, 2) and region_grid(6) == (2, 3)
    centers = torch.tensor([[[1.5, 1.5], [1.5, 6.5], [6.5, 1.5], [6.5, 6.5]]])
    assert region_of(centers, (8, 8), 4).tolist() == [[0, 1, 2, 3]]
    assert region_of(centers, (8, 8), 1).tolist() == [[0, 0, 0, 0]]


def test_a_centre_on_a_boundary_alternates_between_the_regions_it_touches():
    middle = torch.full((1, 4, 2), 3.5)  # the centre of a 7x7 grid lies on both boundaries
    assert sorted(region_of(middle, (7, 7), 4).flatten().tolist()) == [0, 1, 2, 3]
    edge = torch.tensor([[[3.5, 1.5], [3.5, 1.5]]])  # on the row boundary only: one block above, one below
    assert sorted(region_of(edge, (7, 7), 4).flatten().tolist()) == [0, 2]
    assert region_of(torch.tensor([[[0.0, 7.0]]]), (7, 7), 4).tolist() == [[1]]  # the grid's own edges: no tie


@pytest.mark.parametrize("grid", [(6, 6), (7, 7), (8, 8), (14, 14)])
def test_every_region_receives_a_quarter_of_the_target_blocks(grid):
    counts = torch.zeros(4)
    for masks in draws(grid, batches=300):
        counts += torch.bincount(region_of(masks.target_centers, grid, 4).flatten(), minlength=4)
    share = 100 * counts / counts.sum()
    assert (share - 25).abs().max() < 2, share.tolist()
