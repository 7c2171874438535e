"""The pretraining-recipe params on tiny tensors: the patch-embedding init and the centred JEPA targets; the
recipe command's columns and pooling."""
import pytest
import torch
import torch.nn.functional as F
from conftest import repo_params

from pipeline import methods
from pipeline.core.errors import PipelineError
from pipeline.model.functional import jepa_targets
from pipeline.model.vit import Encoder

TINY_SIZES = {"model.patch_size": 4, "model.width": 16, "model.depth": 2, "model.heads": 2,
              "predictor.width": 8, "predictor.depth": 1, "predictor.heads": 2}


def encoder(**model):
    torch.manual_seed(0)
    return Encoder(repo_params({**TINY_SIZES, **{f"model.{k}": v for k, v in model.items()}}).model, 16)


def test_zero_patch_bias_changes_nothing_else():
    torch_bias, zero_bias = encoder(patch_bias="torch"), encoder(patch_bias="zero")
    assert torch.count_nonzero(torch_bias.patch_embed.bias) > 0
    assert torch.count_nonzero(zero_bias.patch_embed.bias) == 0
    a, b = torch_bias.state_dict(), zero_bias.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a if k != "patch_embed.bias")


def test_xavier_patch_weight_draws_as_many_values_so_the_rest_of_the_init_is_unchanged():
    normal, xavier = encoder(patch_weight="trunc_normal"), encoder(patch_weight="xavier")
    fan_out, fan_in = 16, 3 * 4 * 4
    bound = (6 / (fan_in + fan_out)) ** 0.5
    w = xavier.patch_embed.weight.detach()
    assert w.abs().max() <= bound and w.std() > 0.5 * bound / 3 ** 0.5
    assert float(normal.patch_embed.weight.detach().std()) == pytest.approx(0.02, rel=0.3)  # trunc_normal, std 0.02
    a, b = normal.state_dict(), xavier.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a if k != "patch_embed.weight")


def test_unknown_patch_init_is_a_config_error():
    with pytest.raises(PipelineError, match="model.patch_bias"):
        repo_params({"model.patch_bias": "ones"})
    with pytest.raises(PipelineError, match="model.patch_weight"):
        repo_params({"model.patch_weight": "kaiming"})
    with pytest.raises(PipelineError, match="pretrain.target_norm"):
        repo_params({"pretrain.target_norm": "batch"})


def test_targets_are_layer_normed_and_centring_removes_the_per_position_mean():
    torch.manual_seed(0)
    tokens = torch.randn(5, 3, 8) + 3 * torch.randn(1, 3, 8)  # a strong per-position component
    plain = jepa_targets(tokens, "layer")
    assert torch.allclose(plain, F.layer_norm(tokens, (8,)))
    centred = jepa_targets(tokens, "center")
    assert torch.allclose(centred.mean(dim=0), torch.zeros(3, 8), atol=1e-6)
    assert torch.allclose(centred, plain - plain.mean(dim=0, keepdim=True))
    standard = jepa_targets(tokens, "standardize")
    assert torch.allclose(standard.std(dim=0), torch.ones(3, 8), atol=1e-5)
    assert torch.allclose(standard * plain.std(dim=0, keepdim=True), centred, atol=1e-5)


@pytest.mark.parametrize("norm", ["layer", "center", "standardize"])
def test_jepa_loss_with_every_target_norm(norm):
    torch.manual_seed(0)
    params = repo_params({**TINY_SIZES, "pretrain.target_norm": norm})
    model = methods.get("jepa").build(params, 16)
    images = torch.randn(4, 3, 16, 16)
    context = torch.tensor([[0, 1, 2]] * 4)
    targets = torch.tensor([[[3, 4]], [[3, 4]], [[5, 6]], [[7, 8]]])  # (B, M=1, Nt=2)
    out = model(images, context, targets, torch.zeros(4, 1, 2))
    assert torch.isfinite(out["autograd_loss"]) and out["autograd_loss"] > 0
    out["autograd_loss"].backward()
    assert model.encoder.patch_embed.weight.grad is not None


def test_the_recipe_rows_columns_are_the_base_ones_and_every_registry_methods_facts():
    from pipeline.bench import recipe

    cols = recipe.columns()
    assert cols[:len(recipe.BASE_COLUMNS)] == recipe.BASE_COLUMNS
    own = {k for under in methods.pipelines() for m in methods.pipeline_methods(under)
           for k in [*m.facts, *(g.fact for g in m.goals)]}
    assert set(cols[len(recipe.BASE_COLUMNS):]) == own and {"zero_fraction", "groups_per_latent"} <= own


def test_the_recipe_probe_reads_validation_only_unless_asked_for_test(monkeypatch):
    """Choices are made on validation: without --test the test images are never even encoded."""
    from types import SimpleNamespace

    from pipeline.bench import recipe

    gen = torch.Generator().manual_seed(0)
    labels = torch.arange(2).repeat(30)
    feats = torch.randn(60, 4, generator=gen) + 3 * labels[:, None]  # two separable classes
    pooled = []
    monkeypatch.setattr(recipe, "pooled_features", lambda encoder, images, batch, layers, pooling, label: (
        pooled.append((pooling, label)) or feats[:len(images)]))
    params = repo_params({"extract.pooling": "spatial_2x2", "probe.l2": [1.0, 0.1], "probe.widen": 0})
    data = SimpleNamespace(train_images=torch.zeros(60, 8, 8, 3), test_images=torch.zeros(20, 8, 8, 3),
                           train_labels=labels.numpy(), test_labels=labels[:20].numpy(), num_classes=2)
    found = recipe.probe(None, data, params, test=False)
    assert pooled == [("spatial_2x2", "features train")] and "top1" not in found
    assert found["val_top1"] == 100.0 and found["knn_val_top1"] == 100.0 and found["low_label_10_val_top1"] == 100.0
    assert "low_label_100_val_top1" not in found  # 27 fitting images per class cannot supply 100
    assert set(found) <= set(recipe.SCORES)
    assert recipe.probe(None, data, params, test=True)["top1"] == 100.0
    assert pooled[-1] == ("spatial_2x2", "features test")


def test_the_pixel_control_gets_a_validation_row_of_its_own(monkeypatch, tmp_path):
    """`recipe <trial> pixels <seed>` probes the raw pixels exactly as a trial's target encoder, on validation."""
    import csv
    from types import SimpleNamespace

    import numpy as np
    from conftest import REPO

    from pipeline.bench import recipe

    rng = np.random.default_rng(0)
    labels = np.arange(2).repeat(40)
    images = rng.integers(0, 60, (80, 4, 4, 1), dtype=np.uint8) + (150 * labels)[:, None, None, None].astype(np.uint8)
    data = SimpleNamespace(train_images=np.repeat(images, 3, axis=-1), train_labels=labels, num_classes=2)
    monkeypatch.setattr(recipe, "ROOT", REPO)
    monkeypatch.setattr(recipe, "RESULTS", tmp_path / "validation.csv")
    monkeypatch.setattr(recipe, "load_prepared", lambda path: data)
    recipe.main(["raw", "pixels", "1", "probe.l2=[1.0, 0.1]", "probe.widen=0"])
    row, = csv.DictReader((tmp_path / "validation.csv").open())
    assert (row["trial"], row["method"], row["seed"]) == ("raw", "pixels", "1")
    assert float(row["target_val_top1"]) == 100.0 and 0 <= float(row["target_knn_val_top1"]) <= 100
    assert row["context_val_top1"] == "" and row["effective_rank"] == ""


def test_the_recipe_command_line_takes_overrides_flags_and_a_keep_folder_anywhere():
    from pathlib import Path

    from pipeline.bench import recipe

    trial, key, seed, overrides, test, probed, keep = recipe.parse(
        ["t", "sparse_jepa", "2", "--keep", "/tmp/k", "sparsity.lambda=0.02", "--no-probe", "pretrain.ema=[0.9, 1.0]"])
    assert (trial, key, seed, test, probed, keep) == ("t", "sparse_jepa", "2", False, False, Path("/tmp/k"))
    assert overrides == {"sparsity.lambda": 0.02, "pretrain.ema": [0.9, 1.0]}
    with pytest.raises(PipelineError, match="--keep needs a value: --keep DIR"):
        recipe.parse(["t", "jepa", "0", "--keep"])
    with pytest.raises(PipelineError, match="'sparsity.lambda' is not key=value"):
        recipe.parse(["t", "jepa", "0", "sparsity.lambda"])
    with pytest.raises(PipelineError, match="usage: python -m pipeline.bench.recipe"):
        recipe.parse(["t", "jepa"])
