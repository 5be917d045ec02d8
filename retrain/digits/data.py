"""scikit-learn's handwritten digits, split into seed / stream pool / holdout by base image.

Why split by base image: the stream replays pool images under drift, and "true accuracy"
is measured on holdout images transformed the same way. If a holdout image could also
appear in the stream (and so be labeled and trained on), that measurement would flatter
the model. The seed set is what the first champion learns from; it is disjoint too.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

N_CLASSES = 10
N_IMAGES = 1797  # size of sklearn's digits: a check that the bundled data is what we expect


@lru_cache(maxsize=1)
def _load_cached() -> tuple[np.ndarray, np.ndarray]:
    # Imported here so that importing this module stays cheap and does nothing.
    from sklearn.datasets import load_digits

    bunch = load_digits()
    images = (bunch.images / 16.0).astype(np.float32)  # pixel values are 0..16 in the dataset
    labels = bunch.target.astype(np.int64)
    images.setflags(write=False)
    labels.setflags(write=False)
    return images, labels


def load_images() -> tuple[np.ndarray, np.ndarray]:
    """All 1797 digits as float32 (N, 8, 8) in 0..1 and int64 labels 0..9 (fresh copies).

    >>> images, labels = load_images()
    >>> images.shape, images.dtype, float(images.min()), float(images.max()), labels.dtype
    ((1797, 8, 8), dtype('float32'), 0.0, 1.0, dtype('int64'))
    """
    images, labels = _load_cached()
    return images.copy(), labels.copy()


@dataclass(frozen=True)
class DigitsSplit:
    """Three disjoint sets of base images. Arrays are read-only: the split is shared."""

    seed_x: np.ndarray  # (n_seed, 8, 8) float32: the first champion's training set
    seed_y: np.ndarray  # (n_seed,) int64
    pool_x: np.ndarray  # base images the production stream samples from
    pool_y: np.ndarray
    holdout_x: np.ndarray  # never streamed, never trained on: honest "true accuracy"
    holdout_y: np.ndarray


def _stratified_take(labels: np.ndarray, order: np.ndarray, n_rows: int) -> np.ndarray:
    """Take n_rows indices from `order`, spreading them over classes in proportion.

    Why not sklearn's train_test_split: this is ten lines, deterministic given `order`, and
    keeps the data module free of a second source of randomness.
    """
    classes, counts = np.unique(labels[order], return_counts=True)
    quota = np.floor(counts * n_rows / len(order)).astype(int)
    # hand the rounding remainder to the classes with the largest fractional parts
    remainder = n_rows - quota.sum()
    fractions = counts * n_rows / len(order) - quota
    quota[np.argsort(-fractions, kind="stable")[:remainder]] += 1
    taken = [order[labels[order] == c][:q] for c, q in zip(classes, quota, strict=True)]
    return np.sort(np.concatenate(taken))


@lru_cache(maxsize=8)
def split_digits(seed_rows: int = 600, holdout_rows: int = 500, seed: int = 0) -> DigitsSplit:
    """Split the digits into seed, pool and holdout, stratified by class, disjoint by image.

    Deterministic for given arguments (and cached: callers share one read-only split).

    >>> s = split_digits()
    >>> len(s.seed_y), len(s.pool_y), len(s.holdout_y)
    (600, 697, 500)
    """
    images, labels = _load_cached()
    if seed_rows < 1 or holdout_rows < 1:
        raise ValueError(
            f"split_digits(seed_rows={seed_rows}, holdout_rows={holdout_rows}): both must be >= 1"
        )
    if seed_rows + holdout_rows > len(labels) - 100:
        raise ValueError(
            f"split_digits: seed_rows + holdout_rows = {seed_rows + holdout_rows} leaves fewer than "
            f"100 of the {len(labels)} images for the stream pool: lower one of them"
        )
    order = np.random.default_rng(seed).permutation(len(labels))
    holdout = _stratified_take(labels, order, holdout_rows)
    rest = order[~np.isin(order, holdout)]
    seed_idx = _stratified_take(labels, rest, seed_rows)
    pool = np.sort(rest[~np.isin(rest, seed_idx)])

    def ro(a: np.ndarray) -> np.ndarray:
        a = a.copy()
        a.setflags(write=False)
        return a

    return DigitsSplit(
        seed_x=ro(images[seed_idx]),
        seed_y=ro(labels[seed_idx]),
        pool_x=ro(images[pool]),
        pool_y=ro(labels[pool]),
        holdout_x=ro(images[holdout]),
        holdout_y=ro(labels[holdout]),
    )
