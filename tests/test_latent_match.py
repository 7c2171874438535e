import numpy as np
import pytest
import torch
from conftest import repo_params
from dataset_fixtures import save_prepared

from pipeline import artifacts
from pipeline.artifacts.encoder import write_encoder
from pipeline.artifacts.prepared import PreparedDataset
from pipeline.artifacts.records import write_outputs
from pipeline.bench.support_stability import main, pairs, table_md
from pipeline.core.errors import PipelineError
from pipeline.eval.latent_match import jaccard, match_latents, shuffled_regions, support_agreement
from pipeline.model.vit import Encoder


def relabelled(features: torch.Tensor, support: np.ndarray, seed: int = 1):
    """Run b as run a with its latents renumbered and some signs flipped, plus a little noise."""
    gen = torch.Generator().manual_seed(seed)
    k = features.shape[1]
    p = torch.randperm(k, generator=gen)
    signs = torch.where(torch.rand(k, generator=gen) < 0.5, -1.0, 1.0)
    b = torch.empty_like(features)
    b[:, p] = features * signs + 0.05 * torch.randn(features.shape, generator=gen)
    support_b = np.zeros_like(support)
    support_b[:, p.numpy()] = support
    return b, support_b, p.numpy()


def toy(k: int = 24, groups: int = 4, n: int = 300):
    gen = torch.Generator().manual_seed(0)
    features = torch.randn(n, k, generator=gen)
    support = np.random.default_rng(0).random((groups, k)) < 0.5
    return features, support


def test_matching_recovers_renumbered_latents_whatever_their_sign():
    features, support = toy()
    b, _, p = relabelled(features, support)
    perm, r = match_latents(features, b)
    assert np.array_equal(perm, p) and r.min() > 0.95


def test_a_support_that_carries_over_beats_both_baselines_and_one_that_does_not_meets_the_regions_baseline():
    features, support = toy()
    b, support_b, _ = relabelled(features, support)
    same = support_agreement(support, support_b, features, b)
    assert same.jaccard == 1.0 and same.used_agree == 1.0
    assert same.matched_r > 0.95 and same.any_pair_r < 0.2  # independent toy latents: only the partner correlates
    assert same.jaccard_random_pairs < 0.8 and same.jaccard_random_regions < 0.8
    # Each latent keeps how many regions it serves, not which: only the count carries over.
    rng = np.random.default_rng(5)
    recounted = shuffled_regions(support_b.T, rng).T
    which_lost = np.mean([support_agreement(support, shuffled_regions(support_b.T, np.random.default_rng(s)).T,
                                            features, b).jaccard for s in range(30)])
    assert abs(which_lost - same.jaccard_random_regions) < 0.05
    assert (recounted.sum(0) == support_b.sum(0)).all()


def test_jaccard_and_shuffled_regions_on_small_rows():
    a = np.array([[1, 1, 0, 0], [0, 0, 0, 0], [1, 0, 0, 0]], dtype=bool)
    b = np.array([[1, 0, 1, 0], [0, 0, 0, 0], [0, 1, 0, 0]], dtype=bool)
    assert np.allclose(jaccard(a, b), [1 / 3, 1.0, 0.0])
    shuffled = shuffled_regions(a, np.random.default_rng(0))
    assert (shuffled.sum(1) == a.sum(1)).all() and shuffled.dtype == bool


def same_run_twice(root, image_size: int = 16) -> None:
    """Seeds 0 and 3 of method `m` under `root`, in the pipeline's layout: one encoder and support, copied."""
    model = repo_params({"model.patch_size": 4, "model.width": 16, "model.depth": 1, "model.heads": 2}).model
    torch.manual_seed(0)
    encoder = Encoder(model, image_size)
    norms = np.random.default_rng(0).random((4, 16)) * (np.random.default_rng(1).random((4, 16)) < 0.5)
    for seed in (0, 3):
        write_outputs(artifacts.outputs_path("m", seed, root / "reports"), {"column_norms": norms})
        write_encoder(artifacts.encoder_path("m", seed, "target", root / "data"), encoder, "m")


def test_the_stability_bench_reads_a_root_in_the_pipelines_layout_and_a_seed_matches_its_own_copy(tmp_path):
    same_run_twice(tmp_path)
    images = np.random.default_rng(2).integers(0, 256, (64, 16, 16, 3), dtype=np.uint8)
    [(a, b, agreement)] = pairs("m", tmp_path, images)
    assert (a, b) == (0, 3) and agreement.matched_r == pytest.approx(1.0) and agreement.jaccard == 1.0
    assert "| same |" in table_md({"same": [(a, b, agreement)]})
    with pytest.raises(PipelineError, match="fewer than 2 seeds of other"):
        pairs("other", tmp_path, images)


def test_the_stability_bench_reads_recipe_data_and_writes_where_out_says(tmp_path, monkeypatch):
    same_run_twice(tmp_path / "runs", image_size=8)
    rng = np.random.default_rng(0)
    save_prepared(tmp_path / "prepared", PreparedDataset(
        "toy", ["a", "b"], rng.integers(0, 256, (40, 8, 8, 3), dtype=np.uint8), np.arange(40) % 2,
        rng.integers(0, 256, (4, 8, 8, 3), dtype=np.uint8), np.arange(4) % 2))
    monkeypatch.setenv("RECIPE_DATA", str(tmp_path / "prepared"))
    monkeypatch.chdir(tmp_path)  # the default output is relative: nothing may land there
    main(["m", f"same={tmp_path / 'runs'}", "--out", str(tmp_path / "out" / "stability")])
    rows = (tmp_path / "out" / "stability.csv").read_text().splitlines()
    assert rows[0].startswith("trial,seed_a,seed_b,") and rows[1].startswith("same,0,3,")
    assert "| same | 1 |" in (tmp_path / "out" / "stability.md").read_text()
    assert not (tmp_path / "reports" / "recipe").exists()
