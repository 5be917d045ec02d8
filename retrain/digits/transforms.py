"""Drift as pure functions on (N, 8, 8) float32 images in 0..1.

Why pure functions: the stream must be a pure function of (scenario, seed, batch), so
every random choice comes from the `rng` the caller passes, and nothing is cached.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
from scipy import ndimage

if TYPE_CHECKING:
    from retrain.digits.scenario import PhaseParams

# 4-connected footprint: a 3x3 square would make an 8x8 digit a blob after one step.
_CROSS = np.array([[0, 1, 0], [1, 1, 1], [0, 1, 0]], dtype=bool)


def _check(images: np.ndarray) -> np.ndarray:
    images = np.asarray(images, dtype=np.float32)
    if images.ndim != 3:
        raise ValueError(
            f"images have shape {images.shape}: pass a stack (N, H, W); for one image use image[None]"
        )
    return images


def rotate(images: np.ndarray, degrees: float) -> np.ndarray:
    """Rotate every image by `degrees` (counter-clockwise) about its centre, same size.

    >>> x = np.random.default_rng(0).random((2, 8, 8), dtype=np.float32)
    >>> bool(np.array_equal(rotate(x, 0.0), x))
    True
    """
    images = _check(images)
    if degrees == 0:
        return images.copy()
    out = ndimage.rotate(
        images, float(degrees), axes=(2, 1), reshape=False, order=1, mode="constant", cval=0.0
    )
    return np.clip(out, 0.0, 1.0).astype(np.float32)


def _morph(images: np.ndarray, steps: int) -> np.ndarray:
    op = ndimage.grey_dilation if steps > 0 else ndimage.grey_erosion
    out = images
    for _ in range(abs(steps)):
        # footprint per image only (no mixing across the stack axis)
        out = op(out, footprint=_CROSS[None, :, :], mode="constant", cval=0.0)
    return out


def thicken(images: np.ndarray, pixels: float) -> np.ndarray:
    """Dilate strokes by `pixels` (negative: erode, i.e. thin them).

    A fractional amount blends the two neighbouring whole steps, so that a linear ramp of
    thickness changes the images gradually rather than in jumps.

    >>> x = np.zeros((1, 8, 8), np.float32); x[0, 4, 4] = 1.0
    >>> int(thicken(x, 1).sum()), int(thicken(x, -1).sum())
    (5, 0)
    """
    images = _check(images)
    if pixels == 0:
        return images.copy()
    lo = int(np.floor(pixels))
    frac = float(pixels) - lo
    out = _morph(images, lo)
    if frac > 0:
        out = (1.0 - frac) * out + frac * _morph(images, lo + 1)
    return np.clip(out, 0.0, 1.0).astype(np.float32)


def add_noise(images: np.ndarray, std: float, rng: np.random.Generator) -> np.ndarray:
    """Add Gaussian noise of standard deviation `std`, clipped back to 0..1."""
    images = _check(images)
    if std < 0:
        raise ValueError(f"noise std = {std}: must be >= 0")
    if std == 0:
        return images.copy()
    noisy = images + rng.normal(0.0, std, size=images.shape).astype(np.float32)
    return np.clip(noisy, 0.0, 1.0).astype(np.float32)


def invert(images: np.ndarray, prob: float, rng: np.random.Generator) -> np.ndarray:
    """Invert (x -> 1 - x) each image independently with probability `prob`.

    The draw happens even when prob is 0 or 1, so that the rng advances the same way for any
    prob and later draws do not shift when a scenario changes only this number.
    """
    images = _check(images)
    if not 0.0 <= prob <= 1.0:
        raise ValueError(f"invert probability = {prob}: must be within 0..1")
    flip = rng.random(len(images)) < prob
    out = images.copy()
    out[flip] = 1.0 - out[flip]
    return out


def apply(images: np.ndarray, params: PhaseParams, rng: np.random.Generator) -> np.ndarray:
    """Apply one batch's drift: thickness, then rotation, then inversion, then noise.

    Order matters: strokes are thickened before the page turns; sensor noise comes last,
    on top of whatever the scanner produced (inverted or not).
    """
    out = thicken(images, params.thickness)
    out = rotate(out, params.rotation)
    out = invert(out, params.invert, rng)
    out = add_noise(out, params.noise, rng)
    return out
