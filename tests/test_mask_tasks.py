"""The README's mask table is what the sampler draws: shapes the bounds admit, context patches seen."""
from conftest import REPO

from pipeline.bench.masks import OUT, mask_tasks, render
from pipeline.config.masks import MaskConfig
from pipeline.config.params import load_params

IJEPA = MaskConfig(num_targets=4, target_scale=(0.15, 0.2), target_aspect=(0.75, 1.5), context_scale=(0.85, 1.0),
                   min_context=4)


def test_a_7x7_grid_admits_one_target_shape_and_one_context_block():
    tasks = mask_tasks(IJEPA, 28, 4)
    assert tasks.grid == 7 and tasks.targets == ((3, 3),) and tasks.contexts == ((7, 7),)
    # Four 3x3 targets leave at most 49 - 9 patches; the batch minimum cuts every context further.
    assert 4 <= tasks.context_min <= tasks.context_mean <= tasks.context_max <= 40


def test_finer_grids_admit_more_shapes():
    coarse, fine = mask_tasks(IJEPA, 32, 4), mask_tasks(IJEPA, 32, 2)
    assert set(coarse.targets) == {(3, 4), (4, 3)}
    assert len(fine.targets) > len(coarse.targets) and len(fine.contexts) == 2
    assert 0.3 < fine.target_cover < 0.7


def test_committed_mask_table_matches_the_committed_params():
    assert (REPO / OUT).read_text() == render(load_params(["masks"], REPO / "params.yaml").masks), (
        "reports/benchmarks/masks.md is stale: run `python -m pipeline.bench.masks` and "
        "`python -m pipeline.report --sync-readme`")
