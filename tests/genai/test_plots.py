"""Pictures show the data: a grid of colour samples in data units (0..255) is drawn pixel for pixel,
not clipped to white; grey images keep their grey levels, not inverted."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image

from genai.plots import HEADER, image_grid, mosaic


def drawn(png: bytes, shape: tuple[int, int]) -> np.ndarray:
    """The samples panel of an image grid: the picture below the title and panel strips."""
    picture = np.asarray(Image.open(io.BytesIO(png)).convert("RGB"))
    return picture[2 * HEADER : 2 * HEADER + shape[0], : shape[1]]


def test_a_colour_grid_is_not_blank_and_matches_the_samples_pixel_statistics():
    rng = np.random.default_rng(0)
    samples = rng.uniform(0, 255, (16, 3, 32, 32)).astype(np.float32)  # data units, as generated
    expected = mosaic(samples, (0.0, 255.0))
    panel = drawn(image_grid(samples, value_range=(0.0, 255.0), title="t"), expected.shape)
    assert np.array_equal(panel, expected)
    assert panel.std() > 40  # not blank: the old grid clipped every value above 1 to white
    cell = panel[:64, :64].astype(np.float64)  # the first sample, each pixel drawn 2x2
    np.testing.assert_allclose(cell[::2, ::2], samples[0].transpose(1, 2, 0), atol=0.51)
    cells = [panel[r * 66 : r * 66 + 64, c * 66 : c * 66 + 64] for r in range(4) for c in range(4)]
    means = np.stack([c.reshape(-1, 3).mean(0) for c in cells])  # per sample, per channel
    np.testing.assert_allclose(means, samples.mean((2, 3)), atol=0.6)


def test_grey_levels_are_drawn_as_they_are_beside_real_rows():
    grey = np.full((4, 8, 8), 4.0, dtype=np.float32)  # a quarter of digits' range 0..16
    real = np.full((4, 8, 8), 16.0, dtype=np.float32)
    png = image_grid(grey, value_range=(0.0, 16.0), real=real)
    expected = mosaic(grey, (0.0, 16.0))
    panel = drawn(png, expected.shape)
    assert np.unique(panel[:64, :64]).tolist() == [64]  # 4/16 of white, not inverted
    picture = np.asarray(Image.open(io.BytesIO(png)).convert("RGB"))
    right = picture[2 * HEADER : 2 * HEADER + 64, expected.shape[1] + 16 :][:, :64]
    assert np.unique(right).tolist() == [255]  # the real rows' panel: 16 of 16, white


def test_loss_curves_plot_losses_not_the_step_count():
    from genai.plots import loss_curves, loss_terms

    history = [{"epoch": e, "steps": 22.0 * (e + 1), "epoch_s": 0.4, "samples_per_s": 3e3,
                "total": 1.0 / (e + 1), "kl": 0.1, "val_loss": 1.1 / (e + 1)} for e in range(3)]  # fmt: skip
    assert loss_terms(history) == ["kl", "total", "val_loss"]
    assert loss_curves(history, title="run")[:8] == b"\x89PNG\r\n\x1a\n"
