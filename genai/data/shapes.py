"""Generated colour images of shapes: a circle, a square or a triangle on a background, each in a
random colour, size and place, labelled by the shape.

The built-in source ``shapes`` (32x32, streamed in chunks like a user's files) and
:func:`save_folder`, which writes the same images as a folder of PNGs labelled by subfolder
(``circle/00017.png``): what the benchmarks and tests prepare as a user's image folder.
Deterministic for a seed: chunk ``k`` of ``n`` images is a pure function of (seed, k).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

SHAPES = ("circle", "square", "triangle")
CHUNK = 1024  # images generated per chunk (a read unit of the streamed preparation)
SIZE = 32  # the built-in source's images: 32x32 colour


def _colours(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    """A background and a shape colour per image (n, 3), far enough apart to see the shape."""
    back = rng.uniform(0, 255, (n, 3))
    shift = rng.uniform(90, 165, (n, 3)) * rng.choice([-1, 1], (n, 3))
    return back, np.clip(back + shift, 0, 255)


def draw(n: int, *, seed: int, size: int = 32) -> tuple[np.ndarray, np.ndarray]:
    """``n`` images (n, size, size, 3) uint8 and their labels (n,) int64, index of SHAPES."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, len(SHAPES), n)
    radius = rng.uniform(size / 6, size / 3, n)  # (n,)
    cx = rng.uniform(radius, size - radius)
    cy = rng.uniform(radius, size - radius)
    back, fore = _colours(rng, n)
    yy, xx = np.mgrid[0:size, 0:size] + 0.5  # (size, size) pixel centres
    dx = xx[None] - cx[:, None, None]  # (n, size, size)
    dy = yy[None] - cy[:, None, None]
    r = radius[:, None, None]
    circle = dx**2 + dy**2 <= r**2
    square = (np.abs(dx) <= r * 0.8) & (np.abs(dy) <= r * 0.8)
    # an upward triangle: below the two slanted edges, above the base
    triangle = (dy <= r * 0.6) & (dy >= -r + 1.5 * np.abs(dx))
    mask = np.select([labels[:, None, None] == k for k in range(3)], [circle, square, triangle])
    images = np.where(mask[..., None], fore[:, None, None], back[:, None, None])  # (n, s, s, 3)
    images = images + rng.normal(0, 6, images.shape)  # a little sensor noise
    return np.clip(np.rint(images), 0, 255).astype(np.uint8), labels.astype(np.int64)


def chunk(index: int, n: int, *, seed: int, size: int = 32) -> tuple[np.ndarray, np.ndarray]:
    """Images ``index * CHUNK`` .. of a set of ``n``: their own seed, so any chunk is made alone."""
    count = min(CHUNK, n - index * CHUNK)
    return draw(count, seed=seed * 1_000_003 + index, size=size)


def save_folder(root: str | Path, n: int, *, seed: int = 0, size: int = 32) -> Path:
    """Write ``n`` shape images as PNGs in a subfolder per shape; the folder's path."""
    root = Path(root)
    for name in SHAPES:
        (root / name).mkdir(parents=True, exist_ok=True)
    for k in range(0, -(-n // CHUNK)):
        images, labels = chunk(k, n, seed=seed, size=size)
        for i, (img, label) in enumerate(zip(images, labels, strict=True)):
            Image.fromarray(img, "RGB").save(root / SHAPES[label] / f"{k * CHUNK + i:06d}.png")
    return root
