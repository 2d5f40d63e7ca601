"""Deterministic train/val/test splits, stratified by label.

Two ways to the same contract (every class keeps its share in every split; a class of three or
more rows has at least one row in each):

- :func:`split_codes`: rows held in memory (the built-in sources), one seeded permutation per
  class, as genai has always split them (their versions and splits never change);
- :func:`streamed_codes`: rows read in chunks (a user's files). Row ``j`` of a class of ``k``
  rows goes where a seeded bijection of ``0..k-1`` (a Feistel network, cycle-walked onto the
  range) sends it: positions below ``n_test`` are test, the next ``n_val`` val, the rest train.
  Any chunk's codes follow from the class sizes and the chunk's first index in each class, so
  chunks are split in parallel with exactly the counts of :func:`class_counts`.
"""

from __future__ import annotations

import numpy as np

from genai.config import SplitConfig

SPLITS = ("train", "val", "test")
ROUNDS = 4
MASK64 = (1 << 64) - 1


def class_counts(k: int, split: SplitConfig) -> tuple[int, int]:
    """(n_val, n_test) of a class of ``k`` rows."""
    n_val, n_test = round(k * split.val), round(k * split.test)
    if k >= 3:
        n_val, n_test = max(n_val, 1), max(n_test, 1)
    return n_val, n_test


def split_codes(labels: np.ndarray | None, n: int, split: SplitConfig, seed: int) -> np.ndarray:
    """Split per row (0 train, 1 val, 2 test) of rows held in memory: a seeded permutation per
    class, the first ``n_test`` rows test, the next ``n_val`` val."""
    rng = np.random.default_rng(seed)
    codes = np.zeros(n, dtype=np.int8)
    if labels is None:
        groups = [np.arange(n)]
    else:
        groups = [np.flatnonzero(labels == c) for c in np.unique(labels)]
    for idx in groups:
        idx = rng.permutation(idx)
        n_val, n_test = class_counts(len(idx), split)
        codes[idx[:n_test]] = 2
        codes[idx[n_test : n_test + n_val]] = 1
    return codes


def _mix(x: np.ndarray, key: int) -> np.ndarray:
    """A 64-bit mixer (splitmix64's finaliser) of ``x`` xor ``key``, elementwise."""
    z = (x ^ np.uint64(key & MASK64)) + np.uint64(0x9E3779B97F4A7C15)
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return z ^ (z >> np.uint64(31))


def permute(index: np.ndarray, k: int, key: int) -> np.ndarray:
    """A seeded bijection of ``0..k-1`` applied to ``index``: a balanced Feistel network on the
    smallest even power of two >= k, walked again until the value falls inside the range."""
    if k <= 1:
        return np.zeros_like(index, dtype=np.int64)
    half = max(1, (int(k - 1).bit_length() + 1) // 2)
    low = np.uint64((1 << half) - 1)

    def feistel(v: np.ndarray) -> np.ndarray:
        left, right = v >> np.uint64(half), v & low
        for r in range(ROUNDS):
            left, right = right, left ^ (_mix(right, key * 7919 + r) & low)
        return (left << np.uint64(half)) | right

    with np.errstate(over="ignore"):
        out = feistel(index.astype(np.uint64))
        outside = out >= np.uint64(k)
        while outside.any():  # cycle-walking: a bijection of [0, 4^half) restricted to [0, k)
            out[outside] = feistel(out[outside])
            outside = out >= np.uint64(k)
    return out.astype(np.int64)


def streamed_codes(
    labels: np.ndarray, within: np.ndarray, sizes: dict[int, int], split: SplitConfig, seed: int
) -> np.ndarray:
    """Split per row of one chunk: ``labels`` its class codes (0 for unlabelled data),
    ``within`` each row's index among its class's rows, ``sizes`` each class's rows overall."""
    codes = np.zeros(len(labels), dtype=np.int8)
    for c in np.unique(labels):
        rows = np.flatnonzero(labels == c)
        k = sizes[int(c)]
        where = permute(within[rows], k, seed * 1_000_003 + int(c))
        n_val, n_test = class_counts(k, split)
        codes[rows[where < n_test]] = 2
        codes[rows[(where >= n_test) & (where < n_test + n_val)]] = 1
    return codes
