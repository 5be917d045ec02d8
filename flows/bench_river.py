"""The stream-learning anchor of `bench loop`: River's learners, prequential, on every label.

Why: a stream-learning user facing the same drifting stream would not run a retraining loop
with a label budget; they would pick River's Adaptive Random Forest (`forest.ARFClassifier`)
or Hoeffding Adaptive Tree (`tree.HoeffdingAdaptiveTreeClassifier`), which carry their own
drift detectors, and train them test-then-train on every row's label. These policies do
exactly that on the job's world (the same seed rows first, then each batch: predict every
row, measure, learn every row), so the loop's accuracy at 5-10 % of the labels can be read
against what 100 % of them buys a stream learner. The inputs are the task's `features`
(what the drift checks compare), as a dict per row: River's trees split on numbers.

No engine, no data home: nothing of loopwright decides here, which is the point.
"""

from __future__ import annotations

import time

import numpy as np

#: policy kind -> River model factory (seeded)
RIVER_KINDS = ("river-arf", "river-hat")


def make_model(kind: str, seed: int):
    """A fresh River classifier of `kind`, seeded."""
    from river import forest, tree

    if kind == "river-arf":
        return forest.ARFClassifier(seed=seed)
    if kind == "river-hat":
        return tree.HoeffdingAdaptiveTreeClassifier(seed=seed)
    raise ValueError(f"policy kind {kind!r} is not a River learner: use one of {RIVER_KINDS}")


def rows(features: np.ndarray) -> list[dict[int, float]]:
    """Feature rows as River's dicts.

    >>> rows(np.array([[1.0, 0.5]]))
    [{0: 1.0, 1: 0.5}]
    """
    return [{j: float(v) for j, v in enumerate(r)} for r in np.asarray(features, dtype=float)]


def predicted(model, xs: list[dict[int, float]]) -> list[int | None]:
    return [model.predict_one(x) for x in xs]


def accuracy(model, xs: list[dict[int, float]], y: np.ndarray) -> float:
    """Share of rows whose prediction is the true class index (no prediction yet: wrong)."""
    pred = predicted(model, xs)
    return float(
        np.mean([p is not None and int(p) == int(t) for p, t in zip(pred, y, strict=True)])
    )


def run_river(job, cfg, world, task) -> dict:
    """The job's run dict (the same keys as the engine's `observe`): learned on the seed
    rows, then per batch accuracy before its labels, on the held-out set, then learned."""
    t0, c0 = time.perf_counter(), time.process_time()
    model = make_model(job.policy.kind, job.seed)
    seed = world.seed_examples
    seed_x = rows(task.features(task.decode_inputs(list(seed.inputs))))
    for x, label in zip(seed_x, seed.labels, strict=True):
        model.learn_one(x, task.class_index(label))
    acc, hacc, cum, phases, total = [], [], [], [], 0
    for i in range(world.n_batches):
        table = world.table(i)
        xs = rows(task.features(task.decode_inputs(table.column("input").to_pylist())))
        y = world.labels(i)
        acc.append(accuracy(model, xs, y))
        hx, hy = world.heldout(i)
        hacc.append(accuracy(model, rows(task.features(hx)), hy))
        phases.append(int(world.phase(i)))
        for x, t in zip(xs, y, strict=True):  # test-then-train: every label of the batch
            model.learn_one(x, int(t))
        total += len(y)
        cum.append(total)
    return {
        "policy": job.policy.name, "kind": job.policy.kind, "budget": None, "seed": job.seed,
        "overrides": {}, "strategy": "prequential", "budget_per_batch": len(world.labels(0)),
        "phases": phases, "heldout_rows": len(world.heldout(0)[1]), "accuracy": acc,
        "heldout_accuracy": hacc, "labels_cumulative": cum, "labels_spent": total,
        "trigger_batches": [], "trigger_kinds": [], "retrain_batches": [], "promotions": [],
        "refusals": [], "rollouts": [], "degraded": [], "fit_seconds": 0.0, "rounds": [],
        "bootstrap_seconds": 0.0, "seconds": round(time.perf_counter() - t0, 2),
        "cpu_seconds": round(time.process_time() - c0, 2),
    }  # fmt: skip
