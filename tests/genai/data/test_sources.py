"""Built-in sources: sizes, labels, and the PacGAN 2-D mixtures' means and stds (statistically)."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
from scipy import stats
from sklearn.datasets import load_digits

from genai.config import DataConfig
from genai.data.sources import GRID25_STD, RING8_STD, grid25_modes, load_builtin, ring8_modes


def test_digits_is_sklearns_8x8_digits_with_labels():
    src = load_builtin(DataConfig(source="digits"))
    assert src.values.shape == (1797, 8, 8) and src.kind == "image"
    assert sorted(np.unique(src.labels)) == list(range(10))
    assert src.values.min() == 0 and src.values.max() == 16
    sklearns = load_digits()  # read from sklearn's file without importing it: the same rows
    assert np.array_equal(src.values, sklearns.images.astype(np.float32))
    assert np.array_equal(src.labels, sklearns.target) and src.labels.dtype == np.int64


def test_naming_the_digits_dataset_imports_no_sklearn():
    code = (
        "import sys; from genai.config import DataConfig; from genai.data.prepare import locate;"
        " print(locate(DataConfig(source='digits')).version, 'sklearn' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split()[1] == "False"


@pytest.mark.parametrize(
    ("source", "modes", "std"),
    [("ring8", ring8_modes(), RING8_STD), ("grid25", grid25_modes(), GRID25_STD)],
)
def test_mixtures_match_the_stated_means_and_stds(source, modes, std):
    n = 50_000
    src = load_builtin(DataConfig(source=source, n=n, seed=3))
    x, labels = src.values.astype(np.float64), src.labels
    assert x.shape == (n, 2)
    # every point is nearest its own mode (modes are far apart in units of std)
    nearest = np.argmin(((x[:, None, :] - modes[None]) ** 2).sum(-1), axis=1)
    assert np.array_equal(nearest, labels)
    counts = np.bincount(labels, minlength=len(modes))
    assert stats.chisquare(counts).pvalue > 1e-4  # equal weights
    for k, centre in enumerate(modes):
        pts = x[labels == k]
        se = std / np.sqrt(len(pts))
        assert np.all(np.abs(pts.mean(0) - centre) < 5 * se), (k, pts.mean(0), centre)
        assert np.allclose(pts.std(0), std, rtol=0.05), (k, pts.std(0))
    assert np.allclose(modes, np.asarray(src.modes)) and src.mode_std == std


def test_ring8_modes_lie_on_the_unit_circle_and_grid25_on_the_grid():
    assert np.allclose(np.linalg.norm(ring8_modes(), axis=1), 1.0)
    assert set(np.unique(grid25_modes())) == {-4.0, -2.0, 0.0, 2.0, 4.0}
    assert len(grid25_modes()) == 25


def test_generated_sources_are_seeded():
    for source in ("ring8", "grid25", "moons", "swissroll"):
        a = load_builtin(DataConfig(source=source, n=100, seed=1)).values
        b = load_builtin(DataConfig(source=source, n=100, seed=1)).values
        c = load_builtin(DataConfig(source=source, n=100, seed=2)).values
        assert a.shape == (100, 2)
        assert np.array_equal(a, b) and not np.array_equal(a, c)
