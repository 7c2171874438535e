"""The model's pure pieces on tiny tensors: EMA, the proximal step, the KL term, shapes, schedules."""
import math

import pytest
import torch
from conftest import repo_params

from pipeline import methods
from pipeline.core.errors import PipelineError
from pipeline.methods.jepa import JEPA
from pipeline.methods.sparse_jepa import (GroupedEmbed, SparseJEPA, brightness_correlation, groups_per_latent,
                                          groups_per_used_latent, moved_norm_share, moved_recently,
                                          spread_factors, survival_correlation, top_activating, zero_fraction)
from pipeline.model.functional import (column_ratios, dual_averaging_step_, ema_update_, fold_grad_into_mean_,
                                       gaussian_kl, group_penalty, group_soft_threshold, prox_threshold,
                                       proximal_sgd_step_)
from pipeline.model.vit import Encoder, normalize, sincos_2d
from pipeline.pretrain.augment import crop_boxes, resized_crop
from pipeline.pretrain.masks import sample_masks
from pipeline.pretrain.schedules import Schedules, cosine_increase, linear, warmup_cosine

TINY_SIZES = {"model.patch_size": 4, "model.width": 16, "model.depth": 2, "model.heads": 2,
              "predictor.width": 8, "predictor.depth": 1, "predictor.heads": 2}
TINY = repo_params(TINY_SIZES).model


def tiny(method: str, **sparsity):
    """A method's model at toy size, built from params.yaml as its stage builds it (its fixed values last)."""
    torch.manual_seed(0)
    m = methods.get(method)
    overrides = {**TINY_SIZES, **{f"sparsity.{k}": v for k, v in sparsity.items()}, **m.fixed}
    return m.build(repo_params(overrides), 32)


def test_ema_update_moves_target_by_exactly_one_minus_momentum():
    torch.manual_seed(0)
    online, target = torch.nn.Linear(3, 2), torch.nn.Linear(3, 2)
    before = [p.clone() for p in target.parameters()]
    ema_update_(target, online, 0.9)
    for t, b, o in zip(target.parameters(), before, online.parameters()):
        assert torch.allclose(t, 0.9 * b + 0.1 * o)
    ema_update_(target, online, 1.0)  # momentum 1 freezes the target
    ema_update_(target, online, 0.0)  # momentum 0 copies the online weights
    for t, o in zip(target.parameters(), online.parameters()):
        assert torch.equal(t, o)


def test_prox_zeroes_columns_at_or_below_threshold_and_shrinks_the_rest_by_exactly_t():
    w = torch.zeros(2, 3, 4)
    w[0, :, 0] = torch.tensor([3.0, 4.0, 0.0])  # norm 5
    w[0, :, 1] = torch.tensor([0.3, 0.4, 0.0])  # norm 0.5
    w[1, :, 2] = torch.tensor([0.0, 0.0, 1.0])  # norm 1, exactly the threshold
    out = group_soft_threshold(w, 1.0)
    norms = out.norm(dim=1)
    assert norms[0, 0] == pytest.approx(4.0)  # 5 - t
    assert torch.allclose(out[0, :, 0] / 4.0, w[0, :, 0] / 5.0)  # direction kept
    assert (out[0, :, 1] == 0).all() and (out[1, :, 2] == 0).all()  # exactly zero, not small
    assert (out[:, :, 3] == 0).all()  # zero columns stay zero (no NaN from 0/0)
    per_column = torch.full((2, 4), 10.0)
    per_column[0, 0] = 2.0
    assert group_soft_threshold(w, per_column).norm(dim=1)[0, 0] == pytest.approx(3.0)


def test_the_proximal_threshold_is_the_step_times_the_penaltys_weight_per_column():
    weight = torch.zeros(2, 9, 4)  # G*K = 8 columns: the mean penalty weighs each norm by lambda / 8
    assert prox_threshold(weight, step=0.5, lam=2.0) == pytest.approx(0.5 * 2.0 / 8)
    weight[0, 0, 0] = 1.0   # norm 1: survives the threshold 0.125
    weight[1, :, 3] = 0.01  # norm 0.03: dies
    avg = torch.zeros_like(weight)
    proximal_sgd_step_(weight, avg, step=0.5, lam=2.0, momentum=0.9)  # no gradient yet: the prox alone
    assert weight[0, 0, 0].item() == pytest.approx(0.875) and (weight[1, :, 3] == 0).all()
    before = weight.clone()
    proximal_sgd_step_(weight, avg, step=0.5, lam=0.0, momentum=0.9)  # lambda 0: the groups-only model
    assert torch.equal(before, weight)


def test_the_maps_step_along_the_mean_of_their_gradients_and_release_them():
    weight = torch.zeros(1, 2, 1, requires_grad=True)
    avg = torch.zeros(1, 2, 1)
    weight.grad = torch.tensor([[[1.0], [0.0]]])
    proximal_sgd_step_(weight, avg, step=1.0, lam=0.0, momentum=0.75)
    assert avg[0, 0, 0] == pytest.approx(0.25) and weight[0, 0, 0].item() == pytest.approx(-0.25)
    assert weight.grad is None  # AdamW's zero_grad never sees the maps: the step clears their gradient


def test_top_activating_images_are_the_largest_on_each_latent_largest_first():
    features = torch.tensor([[0.0, 5.0], [3.0, 1.0], [1.0, 4.0], [2.0, 0.0]])
    assert top_activating(features, torch.tensor([1, 0]), 2).tolist() == [[0, 2], [1, 3]]


def test_proximal_sgd_recovers_a_known_latent_to_group_support():
    """A linear latent-to-group problem whose true maps use only some latents per group: proximal SGD on
    the mean squared error plus the group penalty ends with exactly those columns non-zero."""
    gen = torch.Generator().manual_seed(0)
    groups, p, k, n = 3, 5, 8, 512
    support = torch.zeros(groups, k, dtype=torch.bool)
    support[0, :3], support[1, 2:5], support[2, 5:] = True, True, True
    truth = torch.randn(groups, p, k, generator=gen) * support[:, None, :]
    weight = (0.5 * torch.randn(groups, p, k, generator=gen)).requires_grad_(True)  # every column starts alive
    avg = torch.zeros_like(weight)
    for _ in range(600):
        z = torch.randn(n, k, generator=gen)
        y = torch.einsum("gpk,nk->gnp", truth, z) + 0.1 * torch.randn(groups, n, p, generator=gen)
        loss = (torch.einsum("gpk,nk->gnp", weight, z) - y).pow(2).sum(-1).mean()
        loss.backward()
        proximal_sgd_step_(weight, avg, step=0.05, lam=1.0, momentum=0.9)
    norms = weight.detach().norm(dim=1)
    assert torch.equal(norms > 0, support)
    assert zero_fraction(norms) == pytest.approx(1 - support.float().mean().item())
    assert groups_per_latent(norms) == pytest.approx(support.sum(0).float().mean().item())
    assert groups_per_used_latent(norms) == pytest.approx(support.sum(0).float().mean().item())  # each latent used
    assert groups_per_used_latent(torch.tensor([[1.0, 0.0, 0.0], [2.0, 0.0, 3.0]])) == pytest.approx(1.5)
    assert groups_per_used_latent(torch.zeros(2, 3)) == 0.0


def _settle(steps: int, step_sum: float | None, lam_per_column: float,
            warmup: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """The maps' proximal SGD over a warm-up-cosine schedule of `steps` (the quick setting's shape): steps
    summing to `step_sum`, or with step_sum None, the replaced formulation's 30 at the peak. Half the columns
    have no gradient (norms spread around the quick maps' init, 0.14); the other half a weak pull towards a_j,
    0.5 c ||w - a_j||^2, with c such that a column moves 1% of the way per step of 30. The column norms, and
    which columns have a gradient."""
    gen = torch.Generator().manual_seed(0)
    groups, latents = 4, 8
    pulled = (torch.arange(groups * latents) % 2 == 1).view(groups, latents)
    a = torch.randn(groups, 8, latents, generator=gen)
    a *= (3 * lam_per_column / (0.01 / 30)) / a.norm(dim=1, keepdim=True) * pulled[:, None, :]
    weight = torch.randn(groups, 8, latents, generator=gen)
    norms0 = 0.14 * torch.linspace(0.5, 1.5, groups * latents).view(groups, 1, latents)
    weight = (norms0 * weight / weight.norm(dim=1, keepdim=True)).requires_grad_(True)
    avg = torch.zeros_like(weight)
    lam = lam_per_column * groups * latents  # proximal_sgd_step_ divides by the (G, K) of the tensor it is given
    warmup = round(0.1 * steps) if warmup is None else warmup
    shape = [warmup_cosine(t, steps, warmup, 0.4, 1.0, 0.002) for t in range(steps)]
    scale = 30.0 if step_sum is None else step_sum / sum(shape)
    for t in range(steps):
        step = scale * shape[t]
        weight.grad = (0.01 / 30) * (weight.detach() - a) * pulled[:, None, :]
        proximal_sgd_step_(weight, avg, step=step, lam=lam, momentum=0.9)
    return weight.detach().norm(dim=1), pulled


def test_a_step_sum_gives_lambda_the_same_cuts_on_the_quick_and_the_paper_settings_schedule():
    """The prox arithmetic of issue 18 at params.yaml's lambda and step_sum, on the paper setting's schedule
    (pipeline/settings/paper.yaml: 300 epochs of CIFAR-100's 50,000 images in batches of 256, 15 of them warm-up,
    58,500 steps) and its G*K (4 regions x ViT-Tiny's 192 latents). Steps tied to the schedule's peak sum to more
    the longer the run, and so does the cumulative threshold: the lambda that cuts some columns without gradient in
    the quick setting's 234 steps cuts every one of them there. Steps summing to sparsity.step_sum cut the same
    columns on both schedules, and not every one."""
    from pipeline import settings
    paper, sparsity = settings.overrides("paper"), repo_params({}).sparsity
    per_epoch = 50_000 // paper["pretrain.batch_size"]
    steps, warmup = paper["pretrain.epochs"] * per_epoch, paper["pretrain.warmup_epochs"] * per_epoch
    assert steps == 58_500
    lam_per_column = sparsity.lambda_ / (sparsity.groups * paper["model.width"])
    quick, pulled = _settle(234, sparsity.step_sum, lam_per_column)
    long, _ = _settle(steps, sparsity.step_sum, lam_per_column, warmup)
    assert torch.equal(quick > 0, long > 0)
    assert 0 < (quick == 0).sum() < (~pulled).sum() and (quick[pulled] > 0).all()  # some cut, never a pulled one
    old_quick, _ = _settle(234, None, lam_per_column)
    assert torch.equal(old_quick > 0, quick > 0)  # the same cuts as before, at the length lambda was chosen at
    # The replaced step on the paper's schedule, by the arithmetic alone: a column with no gradient loses exactly
    # eta_t * lambda / (G*K) of its norm per step, and summed that is twice the largest init norm (0.21).
    shape = sum(warmup_cosine(t, steps, warmup, 0.4, 1.0, 0.002) for t in range(steps))
    assert 30.0 * shape * lam_per_column > 2 * 0.21


def test_dual_averaging_cuts_the_same_columns_on_the_quick_standard_and_paper_schedules():
    """Dual averaging's zeros are the selection rule (mean gradient under lambda / (G*K)), which has no length in it:
    on a stationary gradient stream, 186 steps (the quick setting), 1,172 (standard) and 58,500 (the paper's) cut
    the same columns, those whose mean gradient is under the threshold, though one batch's noise is twice it."""
    from pipeline import settings
    paper = settings.overrides("paper")
    steps = paper["pretrain.epochs"] * (50_000 // paper["pretrain.batch_size"])
    sparsity = repo_params({}).sparsity
    gen = torch.Generator().manual_seed(0)
    shape = (4, 8, 16)
    thr = prox_threshold(torch.empty(shape), 1.0, sparsity.lambda_)
    direction = torch.nn.functional.normalize(torch.randn(shape, generator=gen), dim=1)
    half = shape[0] * shape[2] // 2
    scale = torch.cat([torch.linspace(0.3, 0.7, half), torch.linspace(1.4, 3.0, half)])  # x the threshold
    scale = scale[torch.randperm(scale.numel(), generator=gen)].view(shape[0], 1, shape[2])
    mean = direction * scale * thr
    above = scale[:, 0, :] > 1
    init = torch.nn.init.trunc_normal_(torch.empty(shape), std=sparsity.init_std, generator=gen)
    supports = []
    for length in (186, 1_172, steps):
        weight, grad_avg = init.clone(), torch.zeros(shape)
        for t in range(1, length + 1):
            grad_avg.lerp_(mean + 2 * thr * torch.randn(shape, generator=gen) / shape[1] ** 0.5, 1 / t)
            dual_averaging_step_(weight, grad_avg, init, t, sparsity.map_step, sparsity.lambda_)
        live = weight.norm(dim=1) > 0
        assert torch.equal(live, above), length
        supports.append(live)
    assert steps == 58_500 and torch.equal(supports[0], supports[1]) and torch.equal(supports[1], supports[2])


def test_sparse_jepa_counts_support_changes_and_steps_its_maps_by_its_share_of_the_step_sum():
    model = tiny("sparse_jepa", step_sum=1.0)
    embed = model.group_embed
    with torch.no_grad():
        embed.weight[0, :, 0] = 1e-9  # below one step's threshold: cut by the first proximal step
    model.after_optimizer_step(1.0)
    model.after_optimizer_step(1.0)
    terms = model.log_terms()
    assert embed.weight[0, :, 0].abs().sum() == 0
    assert terms["support_flips"] == 1 and terms["support_stable_steps"] == 1
    assert terms["columns_moved_last_quarter"] == 0  # its change, at step 1 of 2, is before the last quarter
    assert model.column_changed_at[0, 0] == 1 and model.column_changed_at.sum() == 1
    old = {k: v for k, v in model.state_dict().items() if k != "column_changed_at"}  # a checkpoint from before it
    fresh = tiny("sparse_jepa", step_sum=1.0)
    fresh.load_state_dict(old)
    assert fresh.column_changed_at.sum() == 0 and fresh.support_flips == 1
    moved = []
    for step_sum, share in ((1.0, 0.5), (0.25, 2.0)):  # eta = step_sum * share: 0.5 both times
        m = tiny("sparse_jepa", step_sum=step_sum)
        m.group_embed.weight.grad = torch.ones_like(m.group_embed.weight)
        m.after_optimizer_step(share)
        moved.append(m.group_embed.weight.detach().clone())
    assert torch.equal(moved[0], moved[1])


def test_sparse_jepa_dual_averaging_restarts_its_mean_and_anchor_every_window():
    step = 2.0
    shape = tiny("sparse_jepa").group_embed.weight.shape
    gen = torch.Generator().manual_seed(1)
    grads = [torch.randn(shape, generator=gen) * 0.2 for _ in range(3)]
    # lambda puts one step's threshold at the third gradient's median column norm: window 2 cuts about half
    lam = float((step * grads[2]).norm(dim=1).median()) / step * shape[0] * shape[2]
    model = tiny("sparse_jepa", map_optimizer="dual_averaging", map_step=step, map_window=2, **{"lambda": lam})
    embed = model.group_embed
    thr = prox_threshold(embed.weight, 1.0, lam)
    start = embed.weight.detach().clone()
    seen = []
    for g in grads:
        embed.weight.grad = g.clone()
        model.after_optimizer_step(0.1)  # the schedule's share plays no part in dual averaging
        seen.append(embed.weight.detach().clone())
    # window 1 (two gradients): the threshold of start - step * 2 * their mean at step * 2 * lambda / (G*K)
    first = group_soft_threshold(start - step * (grads[0] + grads[1]), step * 2 * thr)
    assert torch.allclose(seen[1], first, atol=1e-6)
    # window 2 restarts from where window 1 ended, with the third gradient alone: one proximal step of size `step`
    assert torch.allclose(seen[2], group_soft_threshold(first - step * grads[2], step * thr), atol=1e-6)
    assert torch.allclose(embed.grad_avg, grads[2]) and torch.equal(model.map_anchor, seen[1])
    assert bool((seen[2].norm(dim=1) == 0).any()) and bool((seen[2].norm(dim=1) > 0).any())


def test_dual_averaging_warms_up_at_lambda_0_then_restarts_from_the_warm_maps():
    step, lam = 2.0, 1e6  # lambda large enough to cut every column as soon as it is on
    model = tiny("sparse_jepa", map_optimizer="dual_averaging", map_step=step, map_warmup=2, **{"lambda": lam})
    embed = model.group_embed
    start = embed.weight.detach().clone()
    grads = [torch.full(start.shape, 0.1), torch.full(start.shape, 0.3)]
    for g in grads:
        embed.weight.grad = g.clone()
        model.after_optimizer_step(0.1)
    # the warm-up: lazy dual averaging at lambda 0 is SGD at a constant step, nothing cut
    assert torch.allclose(embed.weight, start - step * (grads[0] + grads[1]), atol=1e-6)
    assert model.log_terms()["zero_fraction"] == 0.0
    warm = embed.weight.detach().clone()
    embed.weight.grad = torch.zeros_like(warm)
    model.after_optimizer_step(0.1)
    assert torch.equal(model.map_anchor, warm) and model.log_terms()["zero_fraction"] == 1.0


def test_group_penalty_is_lambda_times_mean_column_norm():
    w = torch.zeros(2, 3, 2)
    w[0, 0, 0] = 3.0
    w[1, :, 1] = torch.tensor([2.0, 0.0, 0.0])
    assert group_penalty(w, 0.5).item() == pytest.approx(0.5 * (3 + 2) / 4)


def test_gaussian_kl_matches_closed_form():
    assert gaussian_kl(torch.zeros(5, 3), torch.zeros(5, 3)).item() == pytest.approx(0.0)
    mean, logvar = torch.tensor([[1.0]]), torch.tensor([[math.log(4.0)]])
    assert gaussian_kl(mean, logvar).item() == pytest.approx(0.5 * (1 + 4 - 1 - math.log(4)))
    # matches torch.distributions on random inputs
    mean, logvar = torch.randn(4, 6), torch.randn(4, 6)
    q = torch.distributions.Normal(mean, (0.5 * logvar).exp())
    p = torch.distributions.Normal(torch.zeros(4, 6), torch.ones(4, 6))
    assert gaussian_kl(mean, logvar).item() == pytest.approx(torch.distributions.kl_divergence(q, p).mean().item(),
                                                             rel=1e-5)


def test_grouped_embed_uses_each_blocks_own_group_matrix():
    torch.manual_seed(0)
    embed = GroupedEmbed(in_dim=4, out_dim=3, groups=3)
    z = torch.randn(2, 5, 4)
    regions = torch.tensor([[0, 2], [1, 1]])
    out = embed(z, regions).view(2, 2, 5, 3)
    for b in range(2):
        for m in range(2):
            g = regions[b, m]
            assert torch.allclose(out[b, m], z[b] @ embed.weight[g].T, atol=1e-6)
    assert embed.bias is None  # no per-group bias unless asked: it would predict a region with every column cut


def test_sincos_positions_are_distinct_and_fixed():
    pos = sincos_2d(16, (4, 4))
    assert pos.shape == (16, 16)
    assert torch.cdist(pos, pos).add(torch.eye(16)).min() > 0.1


BASE_TERMS = {"objective", "autograd_loss", "loss_jepa"}


@pytest.mark.parametrize("method, sparsity, terms", [
    ("jepa", {}, BASE_TERMS),
    ("sparse_jepa", {"lambda": 0.1, "kl": False, "groups": 4}, BASE_TERMS | {"kl", "penalty"}),
    ("sparse_jepa", {"lambda": 0.1, "kl": True, "beta": 0.01, "groups": 2}, BASE_TERMS | {"kl", "sigma", "penalty"}),
    ("sparse_jepa_kl", {"lambda": 0.1, "kl": False, "beta": 0.01, "groups": 2},
     BASE_TERMS | {"kl", "sigma", "penalty"}),
])
def test_jepa_forward_backward_shapes_and_gradients(method, sparsity, terms):
    model = tiny(method, **sparsity)
    images = torch.randn(3, 3, 32, 32)
    masks = sample_masks(repo_params().masks, 3, model.encoder.grid, torch.Generator().manual_seed(0))
    out = model(images, masks.context, masks.targets, masks.target_centers)
    assert set(out) == terms and torch.isfinite(out["autograd_loss"])
    out["autograd_loss"].backward()
    assert all(p.grad is None for p in model.target_encoder.parameters())  # no gradient into the EMA copy
    assert model.encoder.patch_embed.weight.grad.abs().sum() > 0
    # The objective L is what the README states: autograd's loss plus the group lasso it does not see.
    penalty = float(out.get("penalty", 0.0))
    assert not out["objective"].requires_grad
    assert float(out["objective"]) == pytest.approx(float(out["autograd_loss"]) + penalty)
    if "penalty" in terms:
        assert penalty == pytest.approx(0.1 * float(model.group_embed.weight.norm(dim=1).mean()))
        assert model.group_embed.weight.grad is not None and not out["penalty"].requires_grad
    if "sigma" in terms:
        assert out["kl"] > 0 and model.latent_head.logvar.bias.grad is not None
        assert model.latent_head.mean.weight.grad is not None  # the KL can move q's mean, not only sigma
        assert float(out["autograd_loss"]) == pytest.approx(float(out["loss_jepa"] + 0.01 * out["kl"]))


def test_methods_are_the_shared_model_with_their_own_hooks():
    jepa, sparse = tiny("jepa"), tiny("sparse_jepa")
    assert type(jepa) is JEPA and isinstance(sparse, SparseJEPA)
    # Same seed, encoder built first: every method starts from the random reference encoder.
    reference = methods.get("random").build(repo_params({**TINY_SIZES, "seed": 0}), 32)
    for model in (jepa, sparse):
        for (name, a), b in zip(model.encoder.state_dict().items(), reference.state_dict().values()):
            assert torch.equal(a, b), name
    images = torch.randint(0, 256, (20, 32, 32, 3), dtype=torch.uint8)
    assert jepa.log_terms() == {} and jepa.summary() == {} and jepa.outputs(images) == {}
    assert {"zero_fraction", "groups_per_latent", "groups_per_used_latent", "map_norm", "encoder_gain",
            "support_flips", "support_stable_steps", "columns_moved_last_quarter", "moved_norm_share",
            "init_survival_r", "kkt_live_mean",
            "kkt_zero_max"} == set(sparse.log_terms())
    out = sparse.outputs(images)
    assert out["column_norms"].shape == (4, 16)  # tiny: 4 groups, width 16
    assert out["brightness_r"].shape == (16,) and (abs(out["brightness_r"]) <= 1 + 1e-6).all()
    assert out["top_images"].shape == (16, 8) and out["top_images"].max() < 20  # 8 images for every latent


def test_the_kl_rung_ranks_images_by_the_latent_its_maps_read_and_needs_a_kl_weight():
    model = tiny("sparse_jepa_kl", beta=0.01)
    images = torch.randint(0, 256, (20, 32, 32, 3), dtype=torch.uint8)
    with torch.no_grad():  # q's mean as a permutation: map column j reads token dimension perm[j]
        perm = torch.randperm(16, generator=torch.Generator().manual_seed(1))
        model.latent_head.mean.weight.copy_(torch.eye(16)[perm])
    out = model.outputs(images)
    feats = model.map_input(model.target_encoder(normalize(images))).mean(1)
    expected = feats[:, perm[0]].topk(8).indices.sort().values
    assert torch.equal(torch.from_numpy(out["top_images"][0]).sort().values, expected)
    with pytest.raises(PipelineError, match="sparsity.beta = 0.0 is invalid; it must be > 0 when sparsity.kl is true"):
        tiny("sparse_jepa_kl", beta=0.0)


def test_param_groups_keep_biases_and_norms_out_of_weight_decay_and_the_group_maps_out_of_adamw():
    model = tiny("sparse_jepa", groups=4)
    groups = {g["name"]: g for g in model.optimizer_groups(0.05)}
    in_adamw = {id(p) for g in groups.values() for p in g["params"]}
    decayed = {id(p) for p in groups["decay"]["params"]}
    assert id(model.group_embed.weight) not in in_adamw  # proximal SGD moves them (after_optimizer_step)
    assert all(p.ndim > 1 for p in groups["decay"]["params"])
    assert id(model.encoder.norm.weight) not in decayed and id(model.encoder.blocks[0].attn.qkv.bias) not in decayed
    n_trainable = sum(1 for p in model.parameters() if p.requires_grad)
    assert len(in_adamw) == n_trainable - 1


def test_the_adamw_rung_puts_the_maps_on_adamw_with_the_encoder_and_skips_the_proximal_step():
    model = tiny("jepa_regions_adamw")
    in_adamw = {id(p) for g in model.optimizer_groups(0.05) for p in g["params"]}
    assert id(model.group_embed.weight) in in_adamw
    model.group_embed.weight.grad = torch.ones_like(model.group_embed.weight)
    model.group_embed.grad_avg.fill_(1.0)  # a proximal step would move the weight along this
    before = model.group_embed.weight.detach().clone()
    model.after_optimizer_step(1.0)
    assert torch.equal(model.group_embed.weight, before)
    assert model.log_terms()["support_stable_steps"] == 1  # the support is still tracked
    one = tiny("jepa_map_proximal")
    assert one.group_embed.weight.shape[0] == 1 and one.sparsity.map_optimizer == "proximal"


def test_encoder_sees_only_kept_patches():
    torch.manual_seed(0)
    enc = Encoder(TINY, 16)  # 4x4 grid
    x = torch.randn(2, 3, 16, 16)
    keep = torch.tensor([[0, 1, 2], [5, 6, 15]])
    out = enc(x, keep)
    assert out.shape == (2, 3, 16)
    x2 = x.clone()
    x2[:, :, 12:, :4] = 100.0  # patch 12 is not kept by either image
    assert torch.allclose(enc(x2, keep), out, atol=1e-5)


def test_schedules():
    assert warmup_cosine(0, 100, 10, 0.1, 1.0, 0.0) == pytest.approx(0.1)
    assert warmup_cosine(10, 100, 10, 0.1, 1.0, 0.0) == pytest.approx(1.0)
    assert warmup_cosine(100, 100, 10, 0.1, 1.0, 0.0) == pytest.approx(0.0)
    assert cosine_increase(0, 100, 0.04, 0.4) == pytest.approx(0.04)
    assert cosine_increase(100, 100, 0.04, 0.4) == pytest.approx(0.4)
    assert linear(50, 100, 0.996, 1.0) == pytest.approx(0.998)
    cfg = repo_params().pretrain
    for steps_per_epoch in (10, 1000):  # the shares sum to 1 and keep the learning rate's shape on any length
        sched = Schedules.for_run(cfg, steps_per_epoch)
        shares = [sched.lr_share(t) for t in range(sched.total_steps)]
        assert sum(shares) == pytest.approx(1.0)
        assert shares[5] / shares[0] == pytest.approx(sched.lr(5) / sched.lr(0))


def test_random_resized_crop_of_full_box_is_identity_and_boxes_fit():
    images = torch.randint(0, 256, (2, 8, 8, 3), dtype=torch.uint8)
    x = normalize(images)
    full = torch.tensor([[0.0, 0.0, 8.0, 8.0]] * 2)
    assert torch.allclose(resized_crop(x, full), x, atol=1e-5)
    boxes = crop_boxes(1000, (8, 8), (0.3, 1.0), torch.Generator().manual_seed(0))
    top, left, h, w = boxes.unbind(1)
    assert (top >= 0).all() and (left >= 0).all() and (top + h <= 8 + 1e-4).all() and (left + w <= 8 + 1e-4).all()
    area = h * w / 64
    assert area.min() >= 0.3 * 0.99 - 1e-6 and area.max() <= 1.0 + 1e-6


def test_flip_mirrors_exactly_the_flagged_crops():
    images = torch.randint(0, 256, (3, 8, 8, 3), dtype=torch.uint8)
    x = normalize(images)
    full = torch.tensor([[0.0, 0.0, 8.0, 8.0]] * 3)
    out = resized_crop(x, full, torch.tensor([True, False, True]))
    assert torch.allclose(out[0], x[0].flip(-1), atol=1e-5) and torch.allclose(out[2], x[2].flip(-1), atol=1e-5)
    assert torch.allclose(out[1], x[1], atol=1e-5)
    # A flipped off-centre crop is the mirror image of the same crop unflipped.
    box = torch.tensor([[1.0, 2.0, 4.0, 5.0]])
    assert torch.allclose(resized_crop(x[:1], box, torch.tensor([True])), resized_crop(x[:1], box).flip(-1), atol=1e-5)


def test_draw_augment_flips_about_half_and_only_when_asked():
    from pipeline.pretrain.augment import draw_augment

    boxes, flip = draw_augment(2000, (8, 8), (0.3, 1.0), torch.Generator().manual_seed(0), hflip=True)
    assert boxes.shape == (2000, 4) and flip.dtype == torch.bool and 0.45 < flip.float().mean() < 0.55
    assert draw_augment(4, (8, 8), (0.3, 1.0), torch.Generator().manual_seed(0))[1] is None


def test_the_random_regions_control_ignores_where_a_block_is_and_follows_the_runs_noise_stream():
    model = tiny("sparse_jepa", regions="random")
    centers = torch.full((64, 4, 2), 1.5)  # every block in the top-left region
    draw = model.target_regions(centers, torch.Generator().manual_seed(3), (0, 1))
    again = model.target_regions(centers, torch.Generator().manual_seed(3), (0, 1))
    assert torch.equal(draw, again) and draw.shape == (64, 4)
    assert set(draw.unique().tolist()) == {0, 1, 2, 3}  # where the real rule gives region 0 to all
    assert (tiny("sparse_jepa").target_regions(centers, None, (0, 1)) == 0).all()
    halves = [model.target_regions(centers[:32], torch.Generator().manual_seed(3), (rank, 2)) for rank in (0, 1)]
    assert torch.equal(torch.cat(halves), draw)  # two processes draw what one draws


def test_spread_init_deals_log_uniform_factors_to_regions_and_latents_alike_and_draws_nothing():
    factors = spread_factors(4, 16, 4.0)
    assert factors.min().item() == pytest.approx(0.25) and factors.max().item() == pytest.approx(4.0)
    assert sorted(factors.flatten().tolist()) == pytest.approx(torch.logspace(-2, 2, 64, base=2.0).tolist())
    per_region = factors.log().mean(dim=1)
    assert per_region.abs().max() < 0.3  # no region gets the small norms (a region's mean log-factor near 0)
    assert torch.equal(spread_factors(4, 16, 1.0), torch.ones(4, 16))
    torch.manual_seed(0)
    plain = tiny("sparse_jepa")
    torch.manual_seed(0)
    spread = tiny("sparse_jepa", init_spread=4.0)
    ratio = spread.group_embed.column_norms() / plain.group_embed.column_norms()
    assert torch.allclose(ratio, spread_factors(4, 16, 4.0), rtol=1e-5)  # the same draw, scaled
    for a, b in zip(plain.encoder.parameters(), spread.encoder.parameters()):
        assert torch.equal(a, b)
    assert torch.equal(spread.init_norms, spread.group_embed.column_norms())


def test_survival_correlation_is_high_when_the_large_columns_survive_and_undefined_when_all_do():
    init = torch.tensor([[1.0, 2.0, 3.0, 4.0]])
    assert survival_correlation(init, torch.tensor([[0.0, 0.0, 1.0, 1.0]])) > 0.8
    assert survival_correlation(init, torch.tensor([[1.0, 0.0, 0.0, 1.0]])) == pytest.approx(0.0)
    assert math.isnan(survival_correlation(init, torch.ones(1, 4)))


def test_brightness_correlation_finds_the_latent_that_only_tracks_brightness():
    gen = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (50, 8, 8, 1), generator=gen, dtype=torch.uint8)
    bright = images.float().flatten(1).mean(1)
    features = torch.stack([bright * 3 + 1, -bright, torch.randn(50, generator=gen), torch.ones(50)], dim=1)
    r = brightness_correlation(features, images)
    assert r[0].item() == pytest.approx(1.0) and r[1].item() == pytest.approx(-1.0)
    assert abs(r[2].item()) < 0.4 and r[3].item() == 0.0  # unrelated; constant


def test_maps_started_at_zero_cut_every_link_and_leave_the_rest_of_the_init_as_it_was():
    plain, zero = tiny("sparse_jepa"), tiny("sparse_jepa", init_std=0.0)
    assert (zero.group_embed.weight == 0).all() and zero.log_terms()["zero_fraction"] == 1.0
    for (name, a), b in zip(plain.named_parameters(), zero.parameters()):
        if name != "predictor.embed.weight":
            assert torch.equal(a, b), name
    assert math.isnan(zero.log_terms()["init_survival_r"])  # every column starts at 0: no size to track


@pytest.mark.parametrize("power", [0.5, 1.0])
def test_dual_averaging_cuts_a_column_iff_its_mean_gradient_is_under_the_threshold(power):
    # G = 1, K = 2: threshold lambda / 2. Column 0's gradients average 3 (above 2), column 1's average 1 (below),
    # each with batch noise of +-2 that would cut or revive a column on a single step's reading.
    lam, step = 4.0, 1.0
    anchor = torch.zeros(1, 2, 2)
    anchor[0, 0, :] = 0.5
    weight, grad_sum = anchor.clone(), torch.zeros_like(anchor)
    for t in range(1, 401):
        noise = 2.0 if t % 2 else -2.0
        grad_sum[0, 0, 0] += 3.0 + noise
        grad_sum[0, 0, 1] += 1.0 - noise
        dual_averaging_step_(weight, grad_sum / t, anchor, t, step, lam, power)
    norms = weight.norm(dim=1)[0]
    assert norms[1] == 0 and norms[0] > 0
    # at t, a = t ** power: column 0 = -(a * 3 - 0.5 - a * 2) = -(a - 0.5) along the gradient's sign
    assert torch.allclose(weight[0, 0, 0], torch.tensor(-(400 ** power - 0.5)))


@pytest.mark.parametrize("as_tensor", [False, True])
def test_fold_grad_into_mean_keeps_the_mean_of_every_gradient_since_t_1_and_clears_it(as_tensor):
    gen = torch.Generator().manual_seed(0)
    weight, mean = torch.zeros(2, 3, 4, requires_grad=True), torch.full((2, 3, 4), 7.0)  # 7: stale, forgotten at t 1
    grads = [torch.randn(2, 3, 4, generator=gen) for _ in range(5)] + [None]  # a step with no gradient counts as 0
    for t, grad in enumerate(grads, start=1):
        weight.grad = grad
        fold_grad_into_mean_(weight, mean, torch.tensor(t) if as_tensor else t)
        assert weight.grad is None
    assert torch.allclose(mean, torch.stack(grads[:-1]).sum(0) / len(grads), atol=1e-6)


def test_the_first_dual_averaging_step_is_a_plain_proximal_step():
    gen = torch.Generator().manual_seed(0)
    anchor, grad = torch.randn(2, 3, 4, generator=gen), torch.randn(2, 3, 4, generator=gen)
    rda = anchor.clone()
    dual_averaging_step_(rda, grad.clone(), anchor, 1, 0.5, 40.0)
    prox = anchor.clone()
    prox.grad = grad.clone()
    proximal_sgd_step_(prox, torch.zeros_like(prox), 0.5, 40.0, momentum=0.0)
    cut = rda.norm(dim=1) == 0
    assert torch.allclose(rda, prox) and bool(cut.any()) and not bool(cut.all())


def test_column_ratios_read_live_and_zero_columns_against_the_threshold():
    grad = torch.zeros(2, 3, 2)
    grad[0, :, 0] = torch.tensor([3.0, 4.0, 0.0])  # norm 5, live
    grad[1, :, 1] = torch.tensor([0.0, 0.6, 0.8])  # norm 1, cut
    support = torch.tensor([[True, False], [False, False]])
    assert column_ratios(grad, support, 2.0) == (2.5, 0.5)
    live, dead = column_ratios(grad, torch.zeros(2, 2, dtype=torch.bool), 1.0)
    assert math.isnan(live) and dead == 5.0


def test_columns_moved_counts_distinct_columns_not_flips():
    changed_at = torch.tensor([[0, 100, 76, 75], [99, 0, 3, 80]])  # 0: never changed
    assert moved_recently(changed_at, 100) == 4  # steps 76-100; 75 and 3 are older
    assert moved_recently(changed_at, 100, share=0.5) == 5
    assert moved_recently(torch.zeros(2, 3, dtype=torch.long), 0) == 0
    norms = torch.tensor([[0.0, 0.1, 1.0, 2.0], [3.0, 1.0, 0.0, 2.9]])  # total 10; the moved: 0.1 + 1 + 3 + 2.9
    assert moved_norm_share(norms, changed_at, 100) == pytest.approx(0.7)
    assert math.isnan(moved_norm_share(torch.zeros(2, 4), changed_at, 100))
