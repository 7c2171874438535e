"""The project's JEPA step against facebookresearch/ijepa's own training step (issue 17, item 6).

tests/fixtures/ijepa_reference/reference.pt holds one step of the reference's src/train.py on a tiny
configuration (ViT width 32, depth 2, 2 heads, patch 4 on 28 px; predictor width 16, depth 2; a batch of 4
images; the reference's own masks, AdamW groups, lr/wd schedules and EMA), made by make_reference.py beside
it (its README.md has the command, the ijepa commit and the torch version). Here the project's own classes
(JEPA through its method registry, Trainer.update: JEPA.forward, AdamW on JEPA.optimizer_groups, ema_update_)
take the reference's initial weights, batch and masks, and must give its loss, every gradient, the
parameters after the AdamW step and the EMA target encoder, within float32 tolerance.

The two differences this test found are fixed in pipeline/model/vit.py: the 2-D sin-cos tables now put the
column first, as I-JEPA's get_2d_sincos_pos_embed (they had the row first: a relabelling of the residual
channels that changed every number), and the init no longer rescales attn.proj and mlp.fc2 by depth (I-JEPA's
src/helper.py init_model re-draws every Linear after its constructors' rescaling, so its runs start without it).
"""
from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import torch
from conftest import repo_params

from pipeline import methods
from pipeline.model.vit import normalize
from pipeline.pretrain.trainer import Trainer

FIXTURE = Path(__file__).parent / "fixtures" / "ijepa_reference" / "reference.pt"
REF = torch.load(FIXTURE, weights_only=True)
CFG = REF["config"]

# Both sides in float32 on the CPU. Attention kernels differ (timm's fused SDPA vs the reference's explicit
# softmax), so values agree to float32 rounding, not bit for bit.
# Measured (torch 2.15, CPU): loss equal, gradients within 1e-6 of each tensor's largest entry, parameters after
# AdamW within 1.4e-8, the EMA target within one float32 ulp (1.2e-7 at 1). The bounds keep ~30x headroom.
LOSS_TOL = dict(rtol=1e-6, atol=1e-7)
GRAD_REL = 3e-5       # per tensor: |ours - ref| <= GRAD_REL * max|ref| (+ GRAD_REL * |ref|); the encoder's
                      # gradients are ~1e-7 at init, the predictor's ~1e-2, so one absolute bound cannot fit both
PARAM_TOL = dict(rtol=1e-5, atol=1e-7)
STEP_REL = 1e-3       # what AdamW and the EMA moved each value, to 0.1% of one lr-sized step

# -- names: reference -> project -----------------------------------------------------------------------------

def project_name(ref_name: str) -> str | None:
    """The project's parameter name for a reference one ("encoder.x" / "predictor.y"), None for the reference's
    frozen position tables (Parameters with requires_grad=False there, non-persistent buffers here)."""
    part, name = ref_name.split(".", 1)
    if name in ("pos_embed", "predictor_pos_embed"):
        return None
    if part == "encoder":
        return "encoder." + name.replace("patch_embed.proj.", "patch_embed.")
    for ref_prefix, ours in (("predictor_embed.", "embed.proj."), ("predictor_blocks.", "blocks."),
                             ("predictor_norm.", "norm."), ("predictor_proj.", "out.")):
        if name.startswith(ref_prefix):
            return "predictor." + ours + name[len(ref_prefix):]
    assert name == "mask_token", ref_name
    return "predictor." + name


def mapped(state: dict[str, torch.Tensor], part: str) -> dict[str, torch.Tensor]:
    """A reference state dict of `part` (encoder or predictor) with project names, the tables left out."""
    out = {}
    for k, v in state.items():
        name = project_name(f"{part}.{k}")
        if name is not None:
            out[name.split(".", 1)[1]] = v
    return out


# -- the project's step ----------------------------------------------------------------------------------------

def project_params(**overrides):
    """params.yaml at the fixture's configuration, with the reference's loss, targets and patch-bias init chosen
    explicitly (each a documented params.yaml option)."""
    return repo_params({
        "seed": CFG["seed"], "model.patch_size": CFG["patch_size"], "model.width": CFG["embed_dim"],
        "model.depth": CFG["depth"], "model.heads": CFG["num_heads"], "model.mlp_ratio": CFG["mlp_ratio"],
        "predictor.width": CFG["pred_emb_dim"], "predictor.depth": CFG["pred_depth"],
        "predictor.heads": CFG["num_heads"], "pretrain.batch_size": CFG["batch"],
        "pretrain.loss": "smooth_l1", "pretrain.target_norm": "layer", "model.patch_bias": "zero",
        "pretrain.device": "cpu", "pretrain.compile": "off", **overrides,
    }, ["model", "predictor", "masks", "pretrain"])


def project_masks() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The reference's masks in the project's layout: context (B, Nc), target blocks (B, M, Nt), block centres
    (B, M, 2) in grid units."""
    (context,) = REF["masks_enc"]  # one context per image (nenc 1), as the project
    targets = torch.stack(REF["masks_pred"], dim=1)
    cols = CFG["crop_size"] // CFG["patch_size"]
    rows_, cols_ = targets // cols, targets % cols
    lo = torch.stack([rows_.amin(-1), cols_.amin(-1)], -1).float()
    hi = torch.stack([rows_.amax(-1), cols_.amax(-1)], -1).float() + 1
    return context, targets, (lo + hi) / 2


def project_step(tmp_path) -> dict:
    """One Trainer.update of the project's JEPA (its own position tables) from the reference's initial weights
    on its batch and masks."""
    params = project_params()
    trainer = Trainer("jepa", methods.get("jepa").build, params, REF["images_uint8"], torch.zeros(CFG["batch"]), 1,
                      tmp_path)
    model = trainer.model
    for part, module in (("encoder", model.encoder), ("encoder", model.target_encoder),
                         ("predictor", model.predictor)):
        module.load_state_dict(mapped(REF["init"][part], part), strict=True)
    # The reference's step used these exact values (its schedulers' first step and ema[0]).
    trainer.schedules = SimpleNamespace(lr=lambda step: REF["lr"], weight_decay=lambda step: REF["wd"],
                                        ema=lambda step: REF["momentum"], lr_share=lambda step: 0.0)
    out = trainer.update(0, REF["images"], *project_masks())
    named = dict(model.named_parameters())
    return {"loss": out["loss_jepa"].detach(), "autograd_loss": out["autograd_loss"].detach(),
            "grads": {n: p.grad for n, p in named.items() if p.grad is not None},
            "params": {n: p.detach() for n, p in named.items() if not n.startswith("target_encoder.")},
            "target": {n.split(".", 1)[1]: p.detach() for n, p in named.items() if n.startswith("target_encoder.")},
            "groups": trainer.optimizer.param_groups, "named": named}


def reference_results() -> dict:
    """The fixture's gradients, updated parameters, EMA target and initial parameters, under project names."""
    grads = {project_name(n): g for n, g in REF["grads"].items()}
    params = {f"{part}.{k}": v for part in ("encoder", "predictor")
              for k, v in mapped(REF["after_step"][part], part).items()}
    target = mapped(REF["target_after_ema"], "encoder")
    init = {f"{part}.{k}": v for part in ("encoder", "predictor") for k, v in mapped(REF["init"][part], part).items()}
    return {"grads": grads, "params": params, "target": target, "init": init}


def assert_step_equal(ours: dict, ref: dict) -> None:
    torch.testing.assert_close(ours["loss"], REF["loss"], **LOSS_TOL)
    torch.testing.assert_close(ours["autograd_loss"], REF["loss"], **LOSS_TOL)
    assert ours["grads"].keys() == ref["grads"].keys()
    for name, g in ref["grads"].items():
        torch.testing.assert_close(ours["grads"][name], g, rtol=GRAD_REL, atol=GRAD_REL * g.abs().max().item(),
                                   msg=lambda m: f"gradient of {name}: {m}")
    step_tol = dict(rtol=STEP_REL, atol=STEP_REL * REF["lr"])
    assert ours["params"].keys() == ref["params"].keys()
    for name, p in ref["params"].items():
        msg = lambda m: f"{name} after AdamW: {m}"  # noqa: E731
        torch.testing.assert_close(ours["params"][name], p, **PARAM_TOL, msg=msg)
        torch.testing.assert_close(ours["params"][name] - ref["init"][name], p - ref["init"][name], **step_tol, msg=msg)
    assert ours["target"].keys() == ref["target"].keys()
    for name, p in ref["target"].items():
        msg = lambda m: f"EMA target {name}: {m}"  # noqa: E731
        torch.testing.assert_close(ours["target"][name], p, **PARAM_TOL, msg=msg)
        init = ref["init"][f"encoder.{name}"]
        torch.testing.assert_close(ours["target"][name] - init, p - init, **step_tol, msg=msg)


# -- the tests --------------------------------------------------------------------------------------------------

def test_fixture_is_the_documented_configuration():
    assert CFG["mask"]["nenc"] == 1 and len(REF["masks_pred"]) == CFG["mask"]["npred"]
    assert REF["images"].shape == (CFG["batch"], 3, CFG["crop_size"], CFG["crop_size"])
    assert len(REF["ijepa_commit"]) == 40 and REF["torch"]
    assert 0 < REF["lr"] and 0 < REF["wd"] and 0 < REF["momentum"] < 1
    # Every trained reference parameter has a gradient and a project name; only the frozen tables lack both.
    frozen = {n for part in ("encoder", "predictor") for n in (f"{part}.{k}" for k in REF["init"][part])
              if project_name(n) is None}
    assert frozen == {"encoder.pos_embed", "predictor.predictor_pos_embed"}
    assert set(REF["grads"]) == {f"{part}.{k}" for part in ("encoder", "predictor")
                                 for k in REF["init"][part]} - frozen


def test_image_normalisation_equals_the_references():
    torch.testing.assert_close(normalize(REF["images_uint8"]), REF["images"], rtol=0, atol=1e-6)


def test_adamw_groups_equal_the_references(tmp_path):
    """init_opt's groups (decay: not 'bias' in name and ndim != 1) hold the same parameters as optimizer_groups'."""
    ours = project_step(tmp_path)
    names = {id(p): n for n, p in ours["named"].items()}
    by_group = {g["name"]: {names[id(p)] for p in g["params"]} for g in ours["groups"]}
    for group in ("decay", "no_decay"):
        ref = {project_name(n) for n in REF["param_groups"][group]} - {None}  # the frozen tables never step
        assert by_group[group] == ref, group
    decay = next(g for g in ours["groups"] if g["name"] == "decay")
    no_decay = next(g for g in ours["groups"] if g["name"] == "no_decay")
    assert decay["weight_decay"] == REF["wd"] and no_decay["weight_decay"] == 0.0
    assert tuple(decay["betas"]) == tuple(CFG["betas"]) and decay["eps"] == CFG["adam_eps"]


def test_position_tables_equal_the_references():
    model = methods.get("jepa").build(project_params(), CFG["crop_size"])
    torch.testing.assert_close(model.encoder.pos_embed, REF["init"]["encoder"]["pos_embed"], rtol=0, atol=1e-6)
    torch.testing.assert_close(model.predictor.pos_embed, REF["init"]["predictor"]["predictor_pos_embed"],
                               rtol=0, atol=1e-6)


def test_one_step_equals_the_references(tmp_path):
    """Loss, every gradient, the AdamW update and the EMA target, from the reference's weights."""
    assert_step_equal(project_step(tmp_path), reference_results())


# -- the initialisation (a distribution, not the fixed weights above) --------------------------------------------

INIT_STD = 0.02  # trunc_normal_(std=0.02) on every Linear and the patch embedding, in both code bases


def init_stds() -> dict[str, tuple[float, float, int]]:
    """{project name: (the project's fresh init std, the reference's (fixture) std, draws)} for every matrix."""
    torch.manual_seed(CFG["seed"])
    ours = dict(methods.get("jepa").build(project_params(), CFG["crop_size"]).named_parameters())
    out = {}
    for part in ("encoder", "predictor"):
        for k, v in REF["init"][part].items():
            name = project_name(f"{part}.{k}")
            if name is not None and name.endswith("weight") and v.ndim >= 2:
                out[name] = (ours[name].std().item(), v.std().item(), v.numel())
    return out


def test_init_scale_of_every_matrix_equals_the_references():
    """Every Linear and the patch embedding, the residual output layers (attn.proj, mlp.fc2) included, start at
    std 0.02 on both sides: no depth rescaling (which would put layer 1's at 0.014 and layer 2's at 0.010). The
    bound is 4 standard errors of a sample std from 256 draws (the smallest matrix) and more: 18%."""
    stds = init_stds()
    assert any("fc2" in n for n in stds) and any("attn.proj" in n for n in stds)
    for name, (ours, ref, draws) in stds.items():
        bound = 4 / (2 * draws) ** 0.5
        assert abs(ours / INIT_STD - 1) < bound and abs(ref / INIT_STD - 1) < bound, (name, ours, ref, draws)
