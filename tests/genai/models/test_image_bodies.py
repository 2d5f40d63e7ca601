"""The 32-64 px bodies (dcgan, unet, pixelcnn) in plain PyTorch: shapes at 32 and 64 px, each
one's loss goes down on a few steps of a fixed batch of shape images, PixelCNN sees only the
values before each one, and its sampling on a pixel's receptive field gives the whole image's
logits."""

from __future__ import annotations

import pytest
import torch

from genai.config import RunConfig
from genai.configfile import load_config
from genai.data import shapes
from genai.models import DataSpec, build_model
from genai.models.pixelcnn import PixelCNN

BODIES = {
    "vae-dcgan": {"model.arch.body": "dcgan", "model.arch.width": 16, "model.arch.depth": 3,
                  "model.arch.latent_dim": 32, "loss.reconstruction.name": "mse"},
    "gan-dcgan": {"model.family": "gan", "model.arch.body": "dcgan", "model.arch.width": 16,
                  "model.arch.depth": 3, "model.arch.latent_dim": 32},
    "diffusion-unet": {"model.family": "diffusion", "model.arch.body": "unet",
                       "model.arch.width": 16, "model.arch.depth": 2,
                       "model.diffusion.attention": True},
    "autoregressive-pixelcnn": {"model.family": "autoregressive", "model.arch.width": 32,
                                "model.autoregressive.body": "pixelcnn", "model.arch.depth": 3,
                                "model.autoregressive.bins": 16},
}  # fmt: skip


STEPS = 20


def batch(size: int, n: int = 32) -> torch.Tensor:
    """n shape images (n, 3, size, size) in [0, 1]: what min-max normalisation gives."""
    images, _ = shapes.draw(n, seed=3, size=size)
    return torch.tensor(images).permute(0, 3, 1, 2).float() / 255


def built(name: str, size: int):
    torch.manual_seed(0)
    cfg = load_config(RunConfig, data={"data.source": "photos", **BODIES[name]})
    return build_model(cfg.model, cfg.loss, DataSpec((3, size, size), "image", 0.0, 1.0))


@pytest.mark.parametrize("size", [32, 64])
@pytest.mark.parametrize("name", list(BODIES))
def test_loss_goes_down_on_a_fixed_batch(name, size):
    model, x = built(name, size), batch(size)
    for player in model.players:  # a GAN: each player against the other held still
        # a GAN's players at DCGAN's Adam settings (Radford et al. 2016)
        lr, betas = (2e-4, (0.5, 0.999)) if name.startswith("gan") else (2e-3, (0.9, 0.999))
        opt = torch.optim.Adam(model.player_parameters(player), lr=lr, betas=betas)
        torch.manual_seed(1)  # the same noise draws for the first and the last loss
        first = float(model(x, player).total)
        for _ in range(STEPS):
            opt.zero_grad()
            model(x, player).total.backward()
            opt.step()
        torch.manual_seed(1)
        last = float(model(x, player).total)
        assert last < 0.95 * first, (player, first, last)
    model.eval()
    samples = model.sample(2) if size == 32 or name != "autoregressive-pixelcnn" else x[:2]
    assert samples.shape == (2, 3, size, size) and torch.isfinite(samples).all()


def test_another_familys_body_is_an_error_naming_the_allowed_ones():
    with pytest.raises(ValueError, match="'unet' is not a body of the gan family; it takes"
                       " 'mlp', 'conv', 'dcgan'"):  # fmt: skip
        load_config(RunConfig, data={"model.family": "gan", "model.arch.body": "unet"})
    with pytest.raises(ValueError, match="model.autoregressive.body: 'pixelcnn' needs image data"):
        load_config(RunConfig, data={"data.source": "moons", "model.family": "autoregressive",
                                     "model.autoregressive.body": "pixelcnn"})  # fmt: skip
    with pytest.raises(ValueError, match="attention: true needs arch.body 'unet'.*is 'conv'"):
        load_config(RunConfig, data={"model.family": "diffusion", "model.arch.body": "conv",
                                     "model.diffusion.attention": True})  # fmt: skip


@pytest.mark.parametrize("width", [7, 15])
def test_a_unet_of_odd_width(width):
    cfg = load_config(RunConfig, data={"data.source": "photos", "model.family": "diffusion",
                                       "model.arch.body": "unet", "model.arch.width": width})  # fmt: skip
    model = build_model(cfg.model, cfg.loss, DataSpec((3, 16, 16), "image", 0.0, 1.0))
    assert torch.isfinite(model(batch(16, 4)).total)


def test_pixelcnn_sees_only_the_values_before_each_one():
    torch.manual_seed(0)
    net = PixelCNN(3, 8, 16, 2)
    tokens = torch.randint(0, 8, (1, 3, 6, 6))
    order = [(i, j, c) for i in range(6) for j in range(6) for c in range(3)]  # raster, channel
    base = net(tokens)  # (1, C, H, W, bins)
    for at in [(0, 0, 0), (2, 3, 1), (5, 5, 2), (3, 0, 0)]:
        changed = tokens.clone()
        i, j, c = at
        changed[0, c, i, j] = (changed[0, c, i, j] + 3) % 8
        diff = (net(changed) - base).abs().amax(-1)[0]  # (C, H, W)
        k = order.index(at)
        for i2, j2, c2 in order[: k + 1]:  # no logit up to and including its own may move
            assert diff[c2, i2, j2] == 0, (at, (i2, j2, c2))
        assert at == order[-1] or diff.sum() > 0  # and some later one does


def test_pixelcnn_samples_on_the_receptive_field_as_on_the_whole_image():
    torch.manual_seed(0)
    net = PixelCNN(3, 8, 16, 2)  # reach 3 + 2 = 5 rows up, columns either side
    tokens = torch.randint(0, 8, (2, 3, 16, 16))
    full = net.trunk(net.values(tokens))
    for i, j in [(0, 0), (9, 4), (15, 15), (7, 0), (12, 10)]:
        r = net.reach
        top, left, right = max(0, i - r), max(0, j - r), min(16, j + r + 1)
        crop = net.trunk(net.values(tokens[:, :, top : i + 1, left:right]))
        torch.testing.assert_close(crop[:, :, i - top, j - left], full[:, :, i, j])
    # sampling is the model's own: at a temperature near 0 each value is its logits' argmax
    torch.manual_seed(1)
    net = PixelCNN(3, 8, 16, 2)
    for layer in [net.first, *net.blocks]:  # a trunk whose features carry far
        layer.weight.data.mul_(3)
    cold = net.sample(3, 10, 10, temperature=1e-4, generator=torch.Generator().manual_seed(0))
    assert torch.equal(net(cold).argmax(-1), cold) and cold.unique().numel() > 2
    # and sampling is reproducible for a generator
    a = net.sample(2, 6, 6, temperature=1.0, generator=torch.Generator().manual_seed(4))
    b = net.sample(2, 6, 6, temperature=1.0, generator=torch.Generator().manual_seed(4))
    assert torch.equal(a, b) and a.shape == (2, 3, 6, 6) and a.max() < 8
