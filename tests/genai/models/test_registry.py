"""Every family x every allowed loss in every slot x both bodies: build tiny, step, sample."""

from __future__ import annotations

import pytest
import torch

from genai.config import RunConfig
from genai.configfile import load_config
from genai.losses.slots import FAMILY_SLOTS
from genai.models import DataSpec, build_model
from genai.strict import ConfigError

IMAGE = DataSpec((8, 8), "image", 0.0, 1.0)
POINTS = DataSpec((2,), "points", -2.0, 2.0)
TINY_ARCH = {
    "model.arch.width": 8,
    "model.arch.depth": 1,
    "model.arch.latent_dim": 3,
    "model.arch.d_model": 16,
    "model.arch.heads": 2,
    "model.arch.layers": 1,
}
TINY_OPTIONS = {  # each family's own options (model.<family>.*), only where they apply
    "diffusion": {"model.diffusion.timesteps": 10, "model.diffusion.sample_steps": 4},
    "autoregressive": {"model.autoregressive.bins": 8},
}


def tiny(family: str) -> dict:
    return {**TINY_ARCH, "model.family": family, **TINY_OPTIONS.get(family, {})}


def tiny_features(x: torch.Tensor) -> list[torch.Tensor]:
    """A frozen stand-in for the domain feature network: two fixed random projections."""
    g = torch.Generator().manual_seed(0)
    w1 = torch.randn(x[0].numel(), 6, generator=g)
    h = torch.tanh(x.flatten(1) @ w1)
    return [h, h[:, :3] ** 2]


def combos():
    for family, slots in FAMILY_SLOTS.items():
        for slot, (allowed, _required) in slots.items():
            for name in allowed:
                extra = {f"loss.{slot}.name": name}
                if slot == "gradient_penalty":
                    extra["loss.adversarial.name"] = "wasserstein"
                for body in ("mlp", "conv"):
                    yield pytest.param(family, body, extra, id=f"{family}-{slot}={name}-{body}")


@pytest.mark.parametrize(("family", "body", "extra"), list(combos()))
def test_build_step_backward_sample(family, body, extra):
    cfg = load_config(RunConfig, data={**tiny(family), "model.arch.body": body, **extra})
    torch.manual_seed(0)
    model = build_model(cfg.model, cfg.loss, IMAGE, features=tiny_features)
    batch = torch.rand(5, 8, 8)
    for player in model.players:
        model.zero_grad()
        terms = model(batch, player)
        assert terms.total.shape == () and torch.isfinite(terms.total)
        assert set(terms.terms) <= set(cfg.loss) and all(
            torch.isfinite(v) for v in terms.terms.values()
        )
        terms.total.backward()
        grads = [p.grad for p in model.player_parameters(player) if p.grad is not None]
        assert grads and all(torch.isfinite(g).all() for g in grads)
        assert any(g.abs().sum() > 0 for g in grads)
    samples = model.sample(3, generator=torch.Generator().manual_seed(1))
    assert samples.shape == (3, 8, 8) and torch.isfinite(samples).all()
    again = model.sample(3, generator=torch.Generator().manual_seed(1))
    torch.testing.assert_close(samples, again)
    assert torch.isfinite(model.validation_loss(batch).total)


@pytest.mark.parametrize("family", list(FAMILY_SLOTS))
def test_points_with_mlp(family):
    cfg = load_config(RunConfig, data={**tiny(family)})
    model = build_model(cfg.model, cfg.loss, POINTS)
    terms = model(torch.randn(7, 2), model.players[0])
    terms.total.backward()
    assert model.sample(4).shape == (4, 2)


def test_misspelt_family_lists_the_families():
    with pytest.raises(
        ConfigError, match="'vea' is not one of 'vae', 'gan', 'diffusion', 'autoregressive'"
    ):
        load_config(RunConfig, data={"model.family": "vea"})


def test_data_of_the_wrong_kind_is_a_clear_error():
    cfg = load_config(RunConfig, data={"model.arch.body": "conv"})
    with pytest.raises(ValueError, match="'conv' needs image data; this data is points"):
        build_model(cfg.model, cfg.loss, POINTS)
    bce = load_config(RunConfig, data={"loss.reconstruction.name": "bce"})
    with pytest.raises(ValueError, match="'bce' needs data in \\[0, 1\\]"):
        build_model(bce.model, bce.loss, POINTS)
    perceptual = load_config(RunConfig, data={"loss.perceptual.weight": 1.0})
    with pytest.raises(ValueError, match="loss.perceptual: needs a feature network"):
        build_model(perceptual.model, perceptual.loss, IMAGE)


def test_gan_critic_steps_per_generator_step():
    cfg = load_config(
        RunConfig,
        data={
            **TINY_ARCH,
            "model.family": "gan",
            "loss.adversarial.name": "wasserstein",
            "model.gan.n_critic": 3,
        },
    )
    model = build_model(cfg.model, cfg.loss, POINTS)
    schedule = [model.players_at(s) for s in range(6)]
    assert [("generator" in p) for p in schedule] == [False, False, True, False, False, True]
    assert all(p[0] == "discriminator" for p in schedule)


@pytest.mark.parametrize("family", ["vae", "gan", "diffusion"])
@pytest.mark.parametrize("activation", ["relu", "leaky_relu", "gelu", "silu"])
def test_the_activation_lever_sets_the_mlp_bodies(family, activation):
    from genai.models.blocks import ACTIVATIONS

    cfg = load_config(
        RunConfig,
        data={**tiny(family), "model.arch.activation": activation},
    )
    model = build_model(cfg.model, cfg.loss, POINTS)
    body = {"vae": "decoder", "gan": "generator", "diffusion": "eps"}[family]
    kinds = {type(m) for m in getattr(model, body).modules()} & set(ACTIVATIONS.values())
    assert kinds == {ACTIVATIONS[activation]}
    if family == "vae":
        assert {type(m) for m in model.encoder.modules()} & kinds == kinds
    terms = model(torch.randn(7, 2), model.players[0])
    terms.total.backward()
    assert model.sample(4).shape == (4, 2)


def test_a_misspelt_activation_lists_the_allowed_ones():
    with pytest.raises(ConfigError, match="model.arch.activation.*'silu', 'relu'"):
        load_config(RunConfig, data={"model.arch.activation": "tanh"})


@pytest.mark.parametrize("penalty", ["gradient_penalty", "r1"])
def test_gan_critic_pays_the_named_penalty_on_its_input_gradient(penalty):
    from genai.losses import gradient_penalty, r1_penalty

    gan = {"model.family": "gan", "loss.gradient_penalty": {"name": penalty, "weight": 3.0}}
    cfg = load_config(RunConfig, data={**TINY_ARCH, **gan})
    model = build_model(cfg.model, cfg.loss, POINTS)
    batch = torch.randn(16, 2)
    torch.manual_seed(5)
    terms = model(batch, "discriminator")
    if penalty == "r1":  # on the real rows only: no randomness, the same value again
        expected = r1_penalty(model.discriminator, batch)
    else:  # on lines between real and the same fakes: replay the step's random draws
        torch.manual_seed(5)
        fake = model.generate(torch.randn(16, cfg.model.arch.latent_dim)).detach()
        expected = gradient_penalty(model.discriminator, batch, fake)
    torch.testing.assert_close(terms.terms["gradient_penalty"], expected)
    torch.testing.assert_close(terms.total, terms.terms["adversarial"] + 3.0 * expected)


@pytest.mark.parametrize("body", ["transformer", "made"])
def test_autoregressive_bodies_see_only_earlier_values(body):
    """model.autoregressive.body: row i of the logits is a function of tokens < i alone (each
    later token changed, row i stays; an earlier one changed, it moves), so one pass gives every
    conditional; the model steps and samples with either body."""
    cfg = load_config(RunConfig, data={**tiny("autoregressive"),
                                       "model.autoregressive.body": body})  # fmt: skip
    torch.manual_seed(0)
    model = build_model(cfg.model, cfg.loss, IMAGE)
    tokens = torch.randint(0, 8, (4, 64))
    base = model.logits(tokens)
    assert base.shape == (4, 64, 8)
    for j in (0, 1, 31, 63):
        changed = tokens.clone()
        changed[:, j] = (changed[:, j] + 3) % 8
        moved = (model.logits(changed) - base).abs().amax(dim=(0, 2)) > 1e-6  # per row
        assert not moved[: j + 1].any(), (j, moved.nonzero().flatten().tolist())
        assert moved[j + 1 :].all() or j == 63, (j, moved.nonzero().flatten().tolist())
    terms = model(torch.rand(5, 8, 8), "model")
    terms.total.backward()
    assert all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None)
    samples = model.sample(3, generator=torch.Generator().manual_seed(1))
    assert samples.shape == (3, 8, 8)
    torch.testing.assert_close(samples * 7, (samples * 7).round())  # on the 8 levels


@pytest.mark.parametrize("width", [8, 200])
def test_made_hidden_layers_reach_every_token(width):
    """Fewer hidden units than tokens (8 for 64 pixels) still spread their degrees over every
    token: with the direct skip zeroed, the last row moves with each earlier token, the first
    as with the last but one; 200 units cycle through the degrees."""
    cfg = load_config(RunConfig, data={**tiny("autoregressive"),
                                       "model.autoregressive.body": "made",
                                       "model.arch.width": width})  # fmt: skip
    torch.manual_seed(0)
    model = build_model(cfg.model, cfg.loss, IMAGE)
    with torch.no_grad():
        model.made.skip.weight.zero_()
    tokens = torch.randint(0, 8, (4, 64))
    base = model.logits(tokens)[:, 63]
    for j in (0, 31, 62):
        changed = tokens.clone()
        changed[:, j] = (changed[:, j] + 3) % 8
        assert (model.logits(changed)[:, 63] - base).abs().max() > 1e-6, j


def test_diffusion_eta_draws_seeded_noise_and_names_itself():
    cfg = load_config(RunConfig, data={**tiny("diffusion"), "model.diffusion.eta": 1.0})
    model = build_model(cfg.model, cfg.loss, IMAGE, features=tiny_features).eval()

    def draw(**options):
        return model.sample(6, generator=torch.Generator().manual_seed(3), **options)

    options, name = model.sampler_options("fast", 4)  # the model's eta
    assert name == "ddim 4 steps, eta 1" and options["eta"] == 1.0
    torch.testing.assert_close(draw(**options), draw(**options))  # a seed, the same samples
    assert not torch.allclose(draw(**options), draw(**model.sampler_options("fast", 4, 0.0)[0]))
    assert model.sampler_options("fast", 4, 0.0)[1] == "ddim 4 steps"  # evaluate's --eta wins
    with pytest.raises(ConfigError, match="eta"):
        load_config(RunConfig, data={**tiny("diffusion"), "model.diffusion.eta": 1.5})
