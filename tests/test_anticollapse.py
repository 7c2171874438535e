"""The anti-collapse bases: VICReg's variance and covariance terms and LeJEPA's SIGReg on small tensors, the
two methods that add them to JEPA's loss, and their params block."""
import pytest
import torch
from conftest import REPO

from pipeline.config.params import params_from_dict, read_params_file, section_from_dict, with_overrides
from pipeline.core.errors import PipelineError
from pipeline.methods.jepa import JEPA
from pipeline.methods.sigreg_jepa import SIGRegJEPA
from pipeline.methods.sparse_jepa import SparseJEPA
from pipeline.methods.sparse_vicreg_jepa import SparseVICRegJEPA
from pipeline.methods.vicreg_jepa import VICRegJEPA
from pipeline.model.anticollapse import (as_samples, covariance_penalty, random_directions, sigreg, sigreg_null,
                                         variance_hinge)
from pipeline.pretrain.masks import sample_masks
from pipeline.pretrain.trainer import Trainer

TINY = {"model.patch_size": 4, "model.width": 16, "model.depth": 1, "model.heads": 2,
        "predictor.width": 8, "predictor.depth": 1, "predictor.heads": 2, "masks.min_context": 1}
# The tests' own block (not params.yaml's): each test sets the weights it checks.
BLOCK = {"variance_weight": 0.0, "covariance_weight": 0.0, "sigreg_weight": 0.0, "sigreg_directions": 16,
         "pooling": "mean"}
SECTIONS = ["seeds", "model", "predictor", "masks", "pretrain", "anticollapse"]


def toy_params(overrides: dict | None = None, **anticollapse):
    """params.yaml at toy size with this test's `anticollapse` block, for run seed 0."""
    raw = with_overrides(read_params_file(REPO / "params.yaml"), {**TINY, **(overrides or {})})
    raw["anticollapse"] = {**BLOCK, **anticollapse}
    return params_from_dict(raw, SECTIONS).for_seed(0)


def gen(seed=0):
    return torch.Generator().manual_seed(seed)


# -- the pure terms -----------------------------------------------------------------------------------

def test_variance_hinge_is_zero_at_unit_std_and_gamma_at_a_collapse():
    x = torch.randn(64, 8, generator=gen())
    unit = (x - x.mean(0)) / x.std(0)  # every column's std exactly 1
    assert float(variance_hinge(unit)) == 0.0
    assert float(variance_hinge(2 * unit)) == 0.0  # a hinge: more spread costs nothing
    collapsed = torch.randn(1, 8, generator=gen(1)).expand(64, 8)
    assert float(variance_hinge(collapsed)) == pytest.approx(1.0 - 1e-2, abs=1e-6)  # gamma - sqrt(eps)
    half = float(variance_hinge(0.5 * unit))
    assert half == pytest.approx(1 - (0.25 + 1e-4) ** 0.5, rel=1e-5)


def test_covariance_penalty_is_near_zero_for_independent_columns_and_large_for_duplicated_ones():
    x = torch.randn(4096, 16, generator=gen())
    independent = float(covariance_penalty(x))
    assert independent < 0.01  # sampling noise only: about (D - 1) / S
    duplicated = float(covariance_penalty(torch.cat([x, x], dim=1)))  # 16 pairs of covariance ~1, twice, over D = 32
    assert duplicated == pytest.approx(1.0, rel=0.05)
    assert float(covariance_penalty(torch.ones(8, 4))) == 0.0  # a constant has no covariance at all


def test_random_directions_are_unit_vectors_drawn_from_the_generator():
    a = random_directions(8, 5, gen(3))
    assert a.shape == (5, 8) and torch.allclose(a.norm(dim=1), torch.ones(5))
    assert torch.equal(a, random_directions(8, 5, gen(3))) and not torch.equal(a, random_directions(8, 5, gen(4)))


def test_sigreg_is_near_its_null_value_for_standard_normal_samples_and_far_above_it_otherwise():
    null = sigreg_null()
    assert null == pytest.approx(1.05, abs=0.02)  # integral of (1 - e^{-t^2}) e^{-t^2/2} over [-3, 3]
    directions = random_directions(16, 64, gen(1))
    x = torch.randn(2048, 16, generator=gen(2))
    gaussian = float(sigreg(x, directions))
    assert abs(gaussian - null) < 0.5 * null
    for name, other in {"collapsed": torch.zeros_like(x), "nearly collapsed": 0.01 * x, "shifted": x + 1,
                        "scaled": 2 * x, "one dimension": x * (torch.arange(16) == 0)}.items():
        assert float(sigreg(other, directions)) > 50 * null, name


def test_sigreg_follows_the_formula_it_documents():
    """S * sum_k c_k |phi_hat(t_k) - phi(t_k)|^2 by a direct complex evaluation, for one direction."""
    x = torch.randn(50, 3, generator=gen(5), dtype=torch.float64)
    a = random_directions(3, 1, gen(6)).double()
    y = (x @ a.T)[:, 0]
    t = torch.linspace(0, 3, 17, dtype=torch.float64)
    ecf = torch.exp(1j * t[None, :] * y[:, None]).mean(0)
    phi = torch.exp(-t ** 2 / 2)
    c = torch.full((17,), 2 * 3 / 16, dtype=torch.float64)
    c[0] = c[-1] = 3 / 16
    expected = 50 * float(((ecf - phi).abs() ** 2 * c * phi).sum())
    assert float(sigreg(x, a)) == pytest.approx(expected, rel=1e-5)


def test_sigregs_gradient_spreads_a_collapsed_batch_toward_an_isotropic_gaussian():
    g = gen(0)
    x = (0.01 * torch.randn(256, 8, generator=g) + 0.5).requires_grad_()
    directions = random_directions(8, 32, g)
    before = sigreg(x, directions)
    before.backward()
    stepped = (x - x.grad).detach()  # one gradient step
    assert float(sigreg(stepped, directions)) < 0.95 * before.item()
    assert stepped.std(0).mean() > x.std(0).mean() and stepped.mean(0).abs().mean() < x.mean(0).abs().mean()
    opt = torch.optim.Adam([x], lr=0.05)
    for _ in range(200):  # fresh directions each step, as in training
        opt.zero_grad()
        sigreg(x, random_directions(8, 32, g)).backward()
        opt.step()
    x = x.detach()
    assert torch.allclose(x.std(0), torch.ones(8), atol=0.1) and x.mean(0).abs().max() < 0.1
    assert float(covariance_penalty(x)) < 0.01


def test_samples_are_mean_pooled_images_or_every_token():
    z = torch.randn(3, 5, 4, generator=gen())
    assert torch.allclose(as_samples(z, "mean"), z.mean(1)) and as_samples(z, "tokens").shape == (15, 4)
    assert torch.equal(as_samples(z, "tokens")[5], z[1, 0])


# -- the methods ----------------------------------------------------------------------------------------

def batch(params, grid, size=4):
    images = torch.randn(size, 3, 32, 32, generator=gen(7))
    masks = sample_masks(params.masks, size, grid, gen(8))
    return images, masks.context, masks.targets, masks.target_centers


def same_weights_as_jepa(cls, params):
    torch.manual_seed(0)
    jepa = JEPA(params, 32)
    model = cls(params, 32)
    model.load_state_dict(jepa.state_dict())  # strict: the method adds no module to JEPA's
    return jepa, model


@pytest.mark.parametrize("cls, weights, terms", [
    (VICRegJEPA, {"variance_weight": 0.7, "covariance_weight": 0.0}, {"variance": 0.7, "covariance": 0.0}),
    (VICRegJEPA, {"variance_weight": 0.0, "covariance_weight": 3.0}, {"variance": 0.0, "covariance": 3.0}),
    (VICRegJEPA, {"variance_weight": 0.7, "covariance_weight": 3.0, "pooling": "tokens"},
     {"variance": 0.7, "covariance": 3.0}),
    (SIGRegJEPA, {"sigreg_weight": 0.05}, {"sigreg": 0.05}),
    (SIGRegJEPA, {"sigreg_weight": 0.05, "pooling": "tokens"}, {"sigreg": 0.05}),
])
def test_a_methods_loss_is_jepas_plus_its_weighted_terms_and_jepas_at_weight_zero(cls, weights, terms):
    params = toy_params(**weights)
    jepa, model = same_weights_as_jepa(cls, params)
    inputs = batch(params, model.encoder.grid)
    plain, out = jepa(*inputs), model(*inputs, noise=gen(9))
    assert set(out) == {"objective", "autograd_loss", "loss_jepa", *terms}
    assert torch.isfinite(out["autograd_loss"]) and all(out[k].item() > 0 for k in terms)
    assert torch.equal(out["loss_jepa"], plain["loss_jepa"])  # the predictor sees the same context tokens
    added = sum(w * out[k].item() for k, w in terms.items())
    assert (out["autograd_loss"] - out["loss_jepa"]).item() == pytest.approx(added, rel=1e-5)
    assert out["objective"].item() == pytest.approx(out["autograd_loss"].item())  # nothing outside autograd
    out["autograd_loss"].backward()
    assert model.encoder.patch_embed.weight.grad.abs().sum() > 0
    assert all(p.grad is None for p in model.target_encoder.parameters())

    _, zero = same_weights_as_jepa(cls, toy_params(**{k: 0.0 for k in weights if k.endswith("_weight")}))
    assert torch.equal(zero(*inputs, noise=gen(9))["autograd_loss"], plain["autograd_loss"])


def test_the_terms_gradient_reaches_the_context_encoder_only_through_z():
    """With the prediction loss's gradient removed, a weighted term alone still moves the context encoder."""
    params = toy_params(variance_weight=1.0, covariance_weight=1.0)
    _, model = same_weights_as_jepa(VICRegJEPA, params)
    out = model(*batch(params, model.encoder.grid))
    (out["autograd_loss"] - out["loss_jepa"]).backward()
    assert model.encoder.patch_embed.weight.grad.abs().sum() > 0 and model.encoder.norm.weight.grad.abs().sum() > 0
    assert all(p.grad is None or p.grad.abs().sum() == 0 for p in model.predictor.parameters())


def test_sigreg_draws_new_directions_each_step_reproducibly():
    params = toy_params(sigreg_weight=1.0)
    _, model = same_weights_as_jepa(SIGRegJEPA, params)
    inputs = batch(params, model.encoder.grid)
    with torch.no_grad():
        noise = gen(11)
        first, second = (float(model(*inputs, noise=noise)["sigreg"]) for _ in range(2))
        assert first != second  # the same batch along other directions
        assert float(model(*inputs, noise=gen(11))["sigreg"]) == first  # the same generator state, the same draw
        # Without the trainer's generator: the module's own, from a fixed seed, advanced by each call.
        fallback = [float(model(*inputs)["sigreg"]) for _ in range(2)]
        _, fresh = same_weights_as_jepa(SIGRegJEPA, params)
        assert fallback[0] != fallback[1] and float(fresh(*inputs)["sigreg"]) == fallback[0]


def test_a_killed_sigreg_run_resumes_to_the_same_weights(tmp_path):
    params = toy_params({"pretrain.epochs": 2, "pretrain.batch_size": 8, "pretrain.warmup_epochs": 0.5,
                         "pretrain.log_every": 1, "pretrain.checkpoint_every": 2, "pretrain.monitor_every": 0,
                         "pretrain.device": "cpu", "pretrain.compile": "off"},
                        sigreg_weight=0.1, sigreg_directions=8)
    images = torch.randint(0, 256, (24, 24, 24, 3), dtype=torch.uint8, generator=gen())
    labels = torch.arange(24) % 4

    def make(run_dir):
        return Trainer("sigreg_jepa", SIGRegJEPA, params, images, labels, 4, run_dir)

    straight = make(tmp_path / "a").run()
    make(tmp_path / "b").run(stop_after=3)
    resumed = make(tmp_path / "b")
    assert resumed.resumed_from == 3
    result = resumed.run()
    for (name, a), (_, b) in zip(straight.target_encoder.state_dict().items(),
                                 result.target_encoder.state_dict().items()):
        assert torch.equal(a, b), name
    assert [r["sigreg"] for r in straight.history] == [r["sigreg"] for r in result.history]
    assert straight.summary.own == {"sigreg_weight": 0.1, "sigreg_directions": 8.0}


# -- the params block -------------------------------------------------------------------------------------

@pytest.mark.parametrize("key, value, message", [
    ("variance_weight", -0.1, "anticollapse.variance_weight = -0.1 is invalid; it must be >= 0"),
    ("covariance_weight", -1.0, "anticollapse.covariance_weight = -1.0 is invalid; it must be >= 0"),
    ("sigreg_weight", -0.05, "anticollapse.sigreg_weight = -0.05 is invalid; it must be >= 0"),
    ("sigreg_directions", 0, "anticollapse.sigreg_directions = 0 is invalid"),
    ("sigreg_directions", 1.5, "anticollapse.sigreg_directions must be an integer"),
    ("pooling", "cls", "anticollapse.pooling = 'cls' is invalid; it must be one of mean, tokens"),
])
def test_bad_anticollapse_params_fail_with_one_line_naming_the_key(key, value, message):
    with pytest.raises(PipelineError) as err:
        section_from_dict("anticollapse", {**BLOCK, key: value})
    assert message in str(err.value) and "\n" not in str(err.value)


def test_a_missing_anticollapse_key_is_a_one_line_error_naming_it():
    block = dict(BLOCK)
    del block["sigreg_weight"]
    with pytest.raises(PipelineError, match=r"^params.yaml has no 'anticollapse.sigreg_weight'; [^\n]*$"):
        section_from_dict("anticollapse", block)


# -- composition: SparseJEPA's maps and lasso on an anti-collapse base ---------------------------------
def sparse_params(**anticollapse):
    raw = with_overrides(read_params_file(REPO / "params.yaml"), TINY)
    raw["anticollapse"] = {**BLOCK, **anticollapse}
    return params_from_dict(raw, [*SECTIONS, "sparsity"]).for_seed(0)


def test_sparse_jepa_on_a_base_runs_both_methods_hooks():
    params = sparse_params(variance_weight=0.7, covariance_weight=3.0)
    torch.manual_seed(0)
    sparse = SparseJEPA(params, 32)
    torch.manual_seed(0)
    both = SparseVICRegJEPA(params, 32)
    both.load_state_dict(sparse.state_dict())  # strict: the base adds no module, SparseJEPA's maps are there
    inputs = batch(params, both.encoder.grid)
    alone, out = sparse(*inputs), both(*inputs, noise=gen(9))
    assert set(out) == {*alone, "variance", "covariance"}  # the lasso's penalty and KL terms, and the base's
    assert torch.equal(out["loss_jepa"], alone["loss_jepa"]) and torch.equal(out["penalty"], alone["penalty"])
    added = 0.7 * out["variance"].item() + 3.0 * out["covariance"].item()
    assert (out["autograd_loss"] - alone["autograd_loss"]).item() == pytest.approx(added, rel=1e-5)
    assert out["objective"].item() == pytest.approx(out["autograd_loss"].item() + out["penalty"].item())
    summary = both.summary()
    assert {"zero_fraction", "final_penalty", "variance_weight", "covariance_weight"} <= set(summary)
    # The maps stay off AdamW (the lasso's proximal steps move them) and the step still moves them.
    adamw = {id(p) for g in both.optimizer_groups(0.04) for p in g["params"]}
    assert id(both.group_embed.weight) not in adamw
    out["autograd_loss"].backward()
    before = both.group_embed.weight.detach().clone()
    both.after_optimizer_step(0.01)
    assert not torch.equal(before, both.group_embed.weight)
