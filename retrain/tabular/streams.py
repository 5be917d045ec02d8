"""Rows of River's Agrawal stream, drawn for one batch's parameters (pure of the rng).

Why River draws the fields but the label is computed here: River's `Agrawal` gives the
applicant's fields and its ten classification functions; a covariate shift moves a field
*before* the concept labels it (the concept is unchanged, the inputs moved), and a gradual
switch picks each row's concept with `ConceptDriftStream`'s sigmoid, which a
`ConceptDriftStream` of two Agrawals does not report per row. So each row is: fields from
`Agrawal(seed=...)`, shifted, labelled by the concept River defines for it.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence

import numpy as np

from retrain.tabular.scenario import N_CLASSES, BatchParams

MAX_DRAWS = 60  # candidate rows per kept row before a class prior is declared unreachable


def concept_fn(k: int):
    """River's Agrawal classification function k (0..9): fields -> class 0 or 1."""
    from river.datasets import synth

    return getattr(synth.Agrawal, f"_classification_function_{k}")


def _candidates(seed: int):
    from river.datasets import synth

    for x, _ in synth.Agrawal(classification_function=0, seed=seed):
        yield x


def draw_rows(
    params: BatchParams, n: int, rng: np.random.Generator, p_new: Sequence[float] | None = None
) -> tuple[list[dict[str, float | int]], np.ndarray]:
    """`n` records and their classes for one batch's parameters.

    Row t follows `params.concept` with probability `p_new[t]` (default `params.p_new`),
    else `params.previous`; with a class prior, rows are kept until each class has its
    share (drawn from the prior), in arrival order."""
    p = np.asarray(params.p_new if p_new is None else p_new, dtype=np.float64)
    if len(p) != n:
        p = np.full(n, float(p.mean()) if len(p) else 1.0)
    new, old = concept_fn(params.concept), concept_fn(params.previous)
    shift = dict(params.shift)
    quota = None
    if params.class_prior is not None:
        wanted = rng.choice(N_CLASSES, size=n, p=np.asarray(params.class_prior))
        quota = np.bincount(wanted, minlength=N_CLASSES)
    records: list[dict[str, float | int]] = []
    labels: list[int] = []
    source = _candidates(int(rng.integers(0, 2**31 - 1)))
    for x in itertools.islice(source, MAX_DRAWS * n):
        rec = dict(x)
        for k, by in shift.items():
            rec[k] = max(0.0, float(rec[k]) + by)
        fn = new if rng.random() < p[len(records)] else old
        y = int(fn(**rec))
        if quota is not None:
            if quota[y] == 0:
                continue
            quota[y] -= 1
        rec = {k: (int(v) if isinstance(v, int) else float(np.float32(v))) for k, v in rec.items()}
        records.append(rec)
        labels.append(y)
        if len(records) == n:
            return records, np.asarray(labels, dtype=np.int64)
    raise ValueError(
        f"class_prior = {list(params.class_prior or ())} under concept {params.concept}: only "
        f"{len(records)} of {n} rows found in {MAX_DRAWS * n} draws; that concept rarely gives the "
        "class asked for: choose weights closer to the concept's own mix"
    )
