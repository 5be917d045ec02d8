"""Behavioural tests for a digits model (Made-With-ML's invariance / minimum functionality).

Why these: accuracy on the latest labels says nothing about what a retrain may have broken.
A model fine-tuned on rotated digits must still read upright ones (no forgetting), and a
sound digit reader should not change its mind for a tilt of a few degrees or faint noise.
Thresholds are arguments, so that a stricter gate is a config change, not a code change.
"""

from __future__ import annotations

import numpy as np

from retrain.digits import transforms
from retrain.task import Expectation, ExpectationResult, PredictProba


def _images(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float32)
    if len(x) == 0:
        raise ValueError("expectation got no inputs: pass held-out examples (N, 1, 8, 8)")
    return x.reshape(len(x), 8, 8)


def _predict(predict_proba: PredictProba, images: np.ndarray) -> np.ndarray:
    return np.asarray(predict_proba(images[:, None, :, :])).argmax(axis=1)


def rotation_invariance(degrees: float = 5.0, min_unchanged: float = 0.85) -> Expectation:
    """Predictions survive a tilt of ±degrees: share unchanged (both directions) >= min_unchanged.

    Why 0.85 and not 0.90: on 8x8 digits a 5° turn moves most pixels, and healthy
    seed-trained CNNs (97% accurate) measured 0.90-0.94 on 500 clean holdout digits over
    five split seeds; at 0.90 one first champion in five would fail the gate by chance.
    """

    def run(predict_proba: PredictProba, x: np.ndarray, y: np.ndarray) -> ExpectationResult:
        images = _images(x)
        base = _predict(predict_proba, images)
        same = [
            _predict(predict_proba, transforms.rotate(images, d)) == base
            for d in (degrees, -degrees)
        ]
        value = float(np.mean(np.concatenate(same)))
        return ExpectationResult(
            name=f"rotation_invariance_{degrees:g}deg",
            passed=value >= min_unchanged,
            value=value,
            threshold=min_unchanged,
            detail=f"{value:.1%} of {len(images)} predictions unchanged when tilted by ±{degrees:g}°",
        )

    return Expectation(
        name=f"rotation_invariance_{degrees:g}deg",
        description=f"a tilt of ±{degrees:g}° leaves at least {min_unchanged:.0%} of predictions unchanged",
        run=run,
    )


def noise_invariance(std: float = 0.05, min_unchanged: float = 0.90, seed: int = 0) -> Expectation:
    """Predictions survive faint Gaussian noise (std on 0..1 pixels), seeded for repeatability."""

    def run(predict_proba: PredictProba, x: np.ndarray, y: np.ndarray) -> ExpectationResult:
        images = _images(x)
        base = _predict(predict_proba, images)
        noisy = transforms.add_noise(images, std, np.random.default_rng(seed))
        value = float(np.mean(_predict(predict_proba, noisy) == base))
        return ExpectationResult(
            name=f"noise_invariance_{std:g}",
            passed=value >= min_unchanged,
            value=value,
            threshold=min_unchanged,
            detail=f"{value:.1%} of {len(images)} predictions unchanged with noise std {std:g}",
        )

    return Expectation(
        name=f"noise_invariance_{std:g}",
        description=f"noise of std {std:g} leaves at least {min_unchanged:.0%} of predictions unchanged",
        run=run,
    )


def clean_digits_accuracy(min_accuracy: float = 0.85) -> Expectation:
    """Minimum functionality: accuracy on the canonical clean holdout digits >= min_accuracy.

    It ignores the inputs it is given (which may be drifted) on purpose: it checks that a
    model adapted to drift has not forgotten how to read ordinary, upright digits.
    """

    def run(predict_proba: PredictProba, x: np.ndarray, y: np.ndarray) -> ExpectationResult:
        from retrain.digits.data import split_digits

        split = split_digits()
        value = float(np.mean(_predict(predict_proba, split.holdout_x) == split.holdout_y))
        return ExpectationResult(
            name="clean_digits_accuracy",
            passed=value >= min_accuracy,
            value=value,
            threshold=min_accuracy,
            detail=f"{value:.1%} accuracy on {len(split.holdout_y)} clean, upright holdout digits",
        )

    return Expectation(
        name="clean_digits_accuracy",
        description=f"reads clean upright digits with at least {min_accuracy:.0%} accuracy (no forgetting)",
        run=run,
    )


def every_class_recalled(min_recall: float = 0.5, min_count: int = 5) -> Expectation:
    """Minimum functionality per class: each class with >= min_count given examples is
    recalled at least `min_recall` of the time.

    Why: after a label-shift fine-tune a model can drop a rare class entirely while overall
    accuracy barely moves; this catches the forgotten class. Classes with fewer examples
    are skipped: one miss out of two is noise, not forgetting.
    """

    def run(predict_proba: PredictProba, x: np.ndarray, y: np.ndarray) -> ExpectationResult:
        images = _images(x)
        y = np.asarray(y)
        pred = _predict(predict_proba, images)
        classes, counts = np.unique(y, return_counts=True)
        judged = [int(c) for c, n in zip(classes, counts, strict=True) if n >= min_count]
        if not judged:
            return ExpectationResult(
                name="every_class_recalled",
                passed=True,
                value=1.0,
                threshold=min_recall,
                detail=f"no class has {min_count} examples among {len(y)}: nothing to judge",
            )
        recalls = {c: float(np.mean(pred[y == c] == c)) for c in judged}
        worst = min(recalls, key=recalls.get)
        value = recalls[worst]
        return ExpectationResult(
            name="every_class_recalled",
            passed=value >= min_recall,
            value=value,
            threshold=min_recall,
            detail=(
                f"lowest recall is class {worst} at {value:.1%}, over the {len(judged)} classes "
                f"with >= {min_count} examples"
            ),
        )

    return Expectation(
        name="every_class_recalled",
        description=(
            f"every class (with >= {min_count} examples) is recalled at least {min_recall:.0%} of the time"
        ),
        run=run,
    )


def default_expectations() -> tuple[Expectation, ...]:
    """The digits task's suite with default thresholds."""
    return (
        rotation_invariance(),
        noise_invariance(),
        clean_digits_accuracy(),
        every_class_recalled(),
    )
