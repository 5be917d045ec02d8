"""Drift transforms: pure, in range, float32."""

from __future__ import annotations

import numpy as np
import pytest

from retrain.digits import transforms
from retrain.digits.data import split_digits
from retrain.digits.scenario import PhaseParams


@pytest.fixture
def images() -> np.ndarray:
    return np.array(split_digits().pool_x[:20])


def test_identity_settings_return_the_same_images(images: np.ndarray) -> None:
    rng = np.random.default_rng(0)
    assert np.array_equal(transforms.rotate(images, 0), images)
    assert np.array_equal(transforms.thicken(images, 0), images)
    assert np.array_equal(transforms.add_noise(images, 0.0, rng), images)
    assert np.array_equal(transforms.invert(images, 0.0, rng), images)


@pytest.mark.parametrize(
    "fn",
    [
        lambda x, r: transforms.rotate(x, 33),
        lambda x, r: transforms.thicken(x, 1.5),
        lambda x, r: transforms.thicken(x, -0.5),
        lambda x, r: transforms.add_noise(x, 0.5, r),
        lambda x, r: transforms.invert(x, 0.5, r),
    ],
    ids=["rotate", "thicken", "thin", "noise", "invert"],
)
def test_outputs_stay_in_range_and_shape(images: np.ndarray, fn) -> None:
    out = fn(images, np.random.default_rng(0))
    assert out.shape == images.shape and out.dtype == np.float32
    assert out.min() >= 0.0 and out.max() <= 1.0
    assert not np.array_equal(out, images)


def test_rotation_turns_counter_clockwise() -> None:
    x = np.zeros((1, 9, 9), np.float32)
    x[0, 0, 4] = 1.0  # top middle
    assert np.argwhere(transforms.rotate(x, 90)[0] > 0.5).tolist() == [[4, 0]]  # left middle


def test_thicken_grows_and_thins_strokes(images: np.ndarray) -> None:
    ink = images.sum()
    assert transforms.thicken(images, 1).sum() > ink > transforms.thicken(images, -1).sum()
    half = transforms.thicken(images, 0.5)
    assert np.allclose(half, 0.5 * images + 0.5 * transforms.thicken(images, 1), atol=1e-6)


def test_invert_with_probability_one_flips_every_image(images: np.ndarray) -> None:
    assert np.allclose(transforms.invert(images, 1.0, np.random.default_rng(0)), 1.0 - images)


def test_apply_is_deterministic_given_the_rng(images: np.ndarray) -> None:
    params = PhaseParams(
        rotation=20,
        noise=0.1,
        thickness=0.5,
        invert=0.3,
        class_prior=(0.1,) * 10,
        attrs={},
        phase=0,
    )
    a = transforms.apply(images, params, np.random.default_rng(5))
    b = transforms.apply(images, params, np.random.default_rng(5))
    c = transforms.apply(images, params, np.random.default_rng(6))
    assert np.array_equal(a, b) and not np.array_equal(a, c)


def test_bad_arguments_say_the_fix(images: np.ndarray) -> None:
    with pytest.raises(ValueError, match=r"image\[None\]"):
        transforms.rotate(images[0], 10)
    with pytest.raises(ValueError, match="within 0..1"):
        transforms.invert(images, 2.0, np.random.default_rng(0))
