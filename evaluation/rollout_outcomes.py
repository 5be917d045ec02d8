"""What the rollout did with the candidates of a benchmark: pure sums over per-rollout records.

Why pure: the benchmark (`flows/bench_online.py`) records what each rollout did (its steps,
outcome, the canary's share of the traffic served meanwhile, and the candidate's held-out
accuracy against the champion's); the figures the results quote are these sums, tested on
exact values here, so a reader can recompute them from the JSON.

A record (one rollout):
  {"kind": "live-worse" | "real", "outcome": "promoted" | "rolled_back" | "aborted" |
   "running", "decisions": ["hold", "advance", ...], "weights": [0.25, ...] (the weight of
   each analysis), "canary_predictions": int, "served": int (all predictions served while it
   ran), "batches": int (batches it served), "heldout_gap": candidate - champion (held-out)}
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from statistics import mean, median


def exposure(canary_predictions: int, served: int) -> float | None:
    """Share of the predictions served while the rollout ran that the canary served.

    >>> exposure(50, 400)
    0.125
    >>> exposure(0, 0) is None
    True
    """
    return canary_predictions / served if served else None


def rollback_weight(record: Mapping) -> float | None:
    """The canary's weight at the analysis that rolled it back (None: not rolled back).

    >>> rollback_weight({"outcome": "rolled_back", "decisions": ["hold", "rollback"],
    ...                  "weights": [0.25, 0.25]})
    0.25
    """
    if record["outcome"] != "rolled_back" or "rollback" not in record["decisions"]:
        return None
    return record["weights"][record["decisions"].index("rollback")]


def live_worse_summary(records: Iterable[Mapping]) -> dict:
    """Of live-worse candidates: how many rolled back, at which weight, their exposure."""
    rs = [r for r in records if r["kind"] == "live-worse"]
    back = [r for r in rs if r["outcome"] == "rolled_back"]
    shares = [exposure(r["canary_predictions"], r["served"]) for r in back]
    shares = [s for s in shares if s is not None]
    weights: dict[str, int] = {}
    for r in back:
        w = rollback_weight(r)
        key = "n/a" if w is None else f"{100 * w:g}%"
        weights[key] = weights.get(key, 0) + 1
    return {
        "candidates": len(rs),
        "rolled_back": len(back),
        "promoted": sum(r["outcome"] == "promoted" for r in rs),
        "still_running": sum(r["outcome"] == "running" for r in rs),
        "rollback_at_weight": weights,
        "batches_to_rollback": [r["batches"] for r in back],
        "exposure_mean": mean(shares) if shares else None,
        "exposure_max": max(shares) if shares else None,
        "canary_predictions_mean": mean(r["canary_predictions"] for r in back) if back else None,
    }


def good_candidates_summary(records: Iterable[Mapping], min_gap: float = 0.0) -> dict:
    """Of the real candidates whose held-out accuracy beats the champion's by more than
    `min_gap` ("good"): how many the rollout wrongly rolled back, held at least once, and
    the batches each took to reach 100 %.

    >>> good_candidates_summary([
    ...     {"kind": "real", "outcome": "promoted", "decisions": ["hold", "advance"],
    ...      "batches": 2, "heldout_gap": 0.2},
    ...     {"kind": "real", "outcome": "rolled_back", "decisions": ["rollback"],
    ...      "batches": 1, "heldout_gap": 0.01},
    ...     {"kind": "real", "outcome": "promoted", "decisions": ["advance"],
    ...      "batches": 1, "heldout_gap": -0.03}])["good"]
    2
    """
    real = [r for r in records if r["kind"] == "real"]
    good = [r for r in real if r["heldout_gap"] is not None and r["heldout_gap"] > min_gap]
    done = [r["batches"] for r in good if r["outcome"] == "promoted"]
    return {
        "real": len(real),
        "good": len(good),
        "promoted": sum(r["outcome"] == "promoted" for r in good),
        "wrongly_rolled_back": sum(r["outcome"] == "rolled_back" for r in good),
        "held_at_least_once": sum("hold" in r["decisions"] for r in good),
        "still_running": sum(r["outcome"] == "running" for r in good),
        "batches_to_100": done,
        "batches_to_100_median": median(done) if done else None,
        "not_good_promoted": sum(r["outcome"] == "promoted" for r in real if r not in good),
    }
