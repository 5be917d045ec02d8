"""The `loopwright bench loop` summary: per-run metrics, medians over seeds, label
efficiency and the issue's goals, in the JSON of docs/bench-loop.md.

Runs come from `flows/bench_run.py` (one per seed and policy); the metrics themselves are
`evaluation/bench_metrics.py`. Nothing here knows the task: the scenario comes from the
task's simulation, phases and held-out sizes from the runs.
"""

from __future__ import annotations

import json
import math
import statistics

import numpy as np

from evaluation import bench_metrics as bm
from flows.bench_policies import GATED, Policy

SCHEMA = "loopwright.bench_loop/1"


def _median(values: list) -> float | None:
    """Median with None read as +infinity ("never"); None when that is where the median falls."""
    vals = [np.inf if v is None else float(v) for v in values]
    if not vals:
        return None
    m = statistics.median(vals)
    return None if not np.isfinite(m) else float(m)


def _harm(promotions: list[dict]) -> int | None:
    """Harmful promotions (a drop > 0.5 point, significant on the paired held-out images);
    None when a promotion lacks its discordant counts (runs from before they were kept)."""
    if any("b" not in p or "c" not in p for p in promotions):
        return None
    return sum(
        bm.harmful_promotion(p["heldout_before"], p["heldout_after"], p["b"], p["c"])
        for p in promotions
    )


def _run_metrics(
    run: dict, oracle: dict | None, onset: int | None, n: int, stable: list[bool] | None = None
) -> dict:
    auc = bm.curve_auc(run["accuracy"], onset)
    if oracle is None:  # a run without the oracle policy: ratios to it are unknown
        oracle = {"accuracy": [math.nan], "heldout_accuracy": [math.nan], "labels_spent": 0}
    oauc = _auc_or_nan(oracle["accuracy"], onset)
    gated = run["kind"] in GATED
    deltas = [p["delta"] for p in run["promotions"]]
    recover = (
        None
        if math.isnan(oauc)
        else bm.batches_to_recover(run["accuracy"], oracle["accuracy"], onset)
    )
    estimates = [rd.get("estimate") for rd in run.get("rounds", [])]
    out = {
        "auc": auc,
        "heldout_auc": bm.curve_auc(run["heldout_accuracy"], onset),
        "auc_vs_oracle": auc / oauc,
        "heldout_auc_vs_oracle": bm.curve_auc(run["heldout_accuracy"], onset)
        / _auc_or_nan(oracle["heldout_accuracy"], onset),
        "labels_spent": run["labels_spent"],
        "label_share_vs_oracle": run["labels_spent"] / max(oracle["labels_spent"], 1),
        "n_triggers": len(run["trigger_batches"]),
        "triggers_per_100_batches": 100.0 * len(run["trigger_batches"]) / n,
        "triggers": bm.triggers_per_100(run["trigger_batches"], n, onset),
        "n_retrains": len(run["retrain_batches"]),
        "n_promotions": len(run["promotions"]),
        "false_triggers": bm.false_triggers(run["trigger_batches"], onset) if gated else None,
        "detection_delay": bm.detection_delay(run["trigger_batches"], onset) if gated else None,
        "batches_to_recover": recover,
        "retrains_after_recovery": None
        if stable is None or recover is None or onset is None
        else bm.retrains_after_recovery(run["retrain_batches"], stable, onset + recover),
        "harmful_promotions": _harm(run["promotions"]),
        "drops_over_half_point": sum(
            bm.harmful(p["heldout_before"], p["heldout_after"]) for p in run["promotions"]
        ),
        "estimate_mae": bm.estimate_mae(estimates, run["accuracy"])
        if len(estimates) == len(run["accuracy"])
        else None,
        "worst_promotion_delta": min(deltas) if deltas else None,
        "degraded_offered": len(run["degraded"]),
        "degraded_promoted": sum(d["promoted"] for d in run["degraded"]),
    }
    return {k: None if isinstance(v, float) and math.isnan(v) else v for k, v in out.items()}


def stable_of(sc) -> list[bool] | None:
    """Per batch of scenario `sc`: in a stable phase (drift parameters constant over the
    phase: `bm.stable_batches`)? None when the task's scenario cannot say its parameters."""
    n = sc.n_batches
    try:
        params = [sc.params_at(i).data_params() for i in range(n)]
    except AttributeError:
        return None
    return bm.stable_batches([sc.locate(i)[0] for i in range(n)], params)


def _auc_or_nan(acc: list[float], onset: int | None) -> float:
    return math.nan if math.isnan(acc[0]) else bm.curve_auc(acc, onset)


def _efficiency(
    by_seed: dict[int, dict[str, dict]],
    budgets: list[int],
    multipliers: list[int],
    key: str,
    batch_size: int,
) -> dict:
    out = {}
    for b in budgets:
        per_seed = []
        for runs in by_seed.values():
            rb = [min(b * m, batch_size) for m in multipliers]
            if (
                any(f"loop-random@{x}" not in runs for x in rb)
                or f"loop-uncertainty@{b}" not in runs
            ):
                continue
            aucs = [runs[f"loop-random@{x}"]["metrics"][key] for x in rb]
            target = runs[f"loop-uncertainty@{b}"]["metrics"][key]
            eff, bound = bm.label_efficiency(rb, aucs, target, b)
            per_seed.append(
                {
                    "efficiency": eff,
                    "bound": bound,
                    "uncertainty_auc": target,
                    "random_budgets": rb,
                    "random_aucs": aucs,
                }
            )
        if not per_seed:
            continue
        out[str(b)] = {
            "budget": b,
            "median": _median([p["efficiency"] for p in per_seed]),
            "seeds": per_seed,
        }
    return out


def load_scenario(cfg, path: str):
    """The scenario as the config's task simulation reads it."""
    from flows.bench_run import simulation_of
    from retrain.task import load_task

    return simulation_of(load_task(cfg.task.plugin, cfg.task.classes)).load_scenario(path)


def phase_spans(phases: list[int], scenario) -> list[dict]:
    """Consecutive batches of one phase index, with the scenario's attrs of that phase (if
    its phases say any).

    >>> phase_spans([0, 1, 1], None)
    [{'index': 0, 'first_batch': 0, 'last_batch': 0, 'attrs': {}}, \
{'index': 1, 'first_batch': 1, 'last_batch': 2, 'attrs': {}}]
    """
    spans: list[dict] = []
    for i, ph in enumerate(phases):
        if spans and spans[-1]["index"] == ph:
            spans[-1]["last_batch"] = i
            continue
        declared = getattr(scenario, "phases", ())
        attrs = getattr(declared[ph], "attrs", {}) if 0 <= ph < len(declared) else {}
        spans.append({"index": ph, "first_batch": i, "last_batch": i, "attrs": dict(attrs)})
    return spans


def summarise(
    path: str,
    seeds: list[int],
    policies: list[Policy],
    cfg,
    results: list[dict],
    seconds: float,
    command: str,
    multipliers: list[int],
) -> dict:
    sc = load_scenario(cfg, path)
    onset, n = sc.onset_batch, sc.n_batches
    stable = stable_of(sc)
    by_seed: dict[int, dict[str, dict]] = {s: {} for s in seeds}
    for r in results:
        by_seed[r["seed"]][r["policy"]] = {"run": r}
    for runs in by_seed.values():
        for v in runs.values():
            oracle = runs["oracle"]["run"] if "oracle" in runs else None
            v["metrics"] = _run_metrics(v["run"], oracle, onset, n, stable)
    phases = phase_spans(results[0]["phases"], sc) if results else []
    out_policies = {}
    for p in policies:
        runs = [by_seed[s][p.name] for s in seeds]
        keys = runs[0]["metrics"].keys()
        med = {k: _median([r["metrics"][k] for r in runs]) for k in keys}
        # the issues' names (a run's own `promotions` is its list of promotions)
        med["labels"], med["promotions"] = med["labels_spent"], med["n_promotions"]
        for curve in ("accuracy", "heldout_accuracy", "labels_cumulative"):
            med[curve] = np.median([r["run"][curve] for r in runs], axis=0).round(4).tolist()
        first = runs[0]["run"]
        budget = first.get("budget_per_batch", p.budget) if p.budget is None else p.budget
        out_policies[p.name] = {
            "kind": p.kind,
            "budget": budget,
            "budget_share": budget / sc.batch_size,
            "strategy": None if p.kind in ("static", "oracle") else first.get("strategy"),
            "overrides": dict(p.overrides),
            "median": med,
            "seeds": [
                {**{k: v for k, v in r["run"].items() if k != "rounds"}, **r["metrics"]}
                for r in runs
            ],
        }
    budgets = sorted({p.budget for p in policies if p.kind == "loop-uncertainty"})
    eff = {
        "auc": _efficiency(by_seed, budgets, multipliers, "auc", sc.batch_size),
        "heldout_auc": _efficiency(by_seed, budgets, multipliers, "heldout_auc", sc.batch_size),
    }
    doc = {
        "schema": SCHEMA,
        "command": command,
        "scenario": {
            "name": sc.name,
            "path": str(path),
            "seed": sc.seed,
            "n_batches": n,
            "batch_size": sc.batch_size,
            "onset_batch": onset,
            "phases": phases,
            # per batch: in a stable phase (constant drift parameters), where
            # `retrains_after_recovery` counts
            "stable": stable,
        },
        "seeds": seeds,
        "heldout": {
            "rows": results[0]["heldout_rows"] if results else None,
            "description": "the task simulation's held-out set of each batch (world.heldout(i)): "
            "inputs drifted like the batch, never streamed, labeled or trained on",
        },
        "policies": out_policies,
        "runs": [
            {
                "policy": r["policy"],
                "kind": r["kind"],
                "seed": r["seed"],
                "overrides": r["overrides"],
                "labels_spent": r["labels_spent"],
                "seconds": r["seconds"],
                "rounds": r["rounds"],
            }
            for r in sorted(results, key=lambda r: (r["seed"], r["policy"]))
        ],
        "efficiency": eff,
        "seconds": round(seconds, 1),
    }
    doc["goals"] = goals(doc)
    return doc


def goals(doc: dict) -> dict:
    """The issue's goals, each with what was measured (medians over seeds) and a verdict."""
    pol, onset = doc["policies"], doc["scenario"]["onset_batch"]
    g: dict[str, dict] = {}
    for share, need_eff, need_auc in ((0.05, 3.0, 0.93), (0.10, 4.0, 0.95)):
        name = next(
            (
                k
                for k, v in pol.items()
                if v["kind"] == "loop-uncertainty" and abs(v["budget_share"] - share) < 1e-9
            ),
            None,
        )
        if name is None:
            continue
        b = str(pol[name]["budget"])
        eff = doc["efficiency"]["auc"].get(b, {})
        e = eff.get("median")
        # one random budget only (--multipliers 1) bounds efficiency, it does not measure it
        spans = all(len(x["random_budgets"]) > 1 for x in eff.get("seeds", []))
        if onset is not None and eff and spans:
            g[f"label_efficiency_{int(share * 100)}pct"] = {
                "measured": e,
                "goal": f">= {need_eff}",
                "met": e is not None and e >= need_eff,
            }
        m = pol[name]["median"]
        r = m["auc_vs_oracle"]
        if r is None or math.isnan(r):
            continue
        g[f"auc_vs_oracle_{int(share * 100)}pct"] = {
            "measured": r,
            "label_share": m["label_share_vs_oracle"],
            "goal": f">= {need_auc}",
            "met": r >= need_auc and m["label_share_vs_oracle"] <= share + 1e-9,
        }
    gated = [v for v in pol.values() if v["kind"] in GATED]
    main = [v for v in gated if v["kind"] == "loop-uncertainty"]
    if not main:
        pass
    elif onset is None:
        worst = max(v["median"]["triggers_per_100_batches"] for v in main)
        promos = max(s["n_promotions"] for v in main for s in v["seeds"])
        g["no_drift_triggers_per_100"] = {"measured": worst, "goal": "<= 1", "met": worst <= 1}
        g["no_drift_promotions"] = {"measured": promos, "goal": "0", "met": promos == 0}
    else:
        delays = [v["median"]["detection_delay"] for v in main]
        ok = all(d is not None and d <= 3 for d in delays)
        g["detection_delay"] = {"measured": delays, "goal": "<= 3 batches", "met": ok}
    offered = sum(s["degraded_offered"] for v in main for s in v["seeds"])
    promoted = sum(s["degraded_promoted"] for v in main for s in v["seeds"])
    g["degraded_refused"] = {
        "measured": f"{promoted} promoted of {offered} offered",
        "met": promoted == 0,
    }
    harms = [s["harmful_promotions"] for v in gated for s in v["seeds"]]
    drops = sum(s["drops_over_half_point"] for v in gated for s in v["seeds"])
    total = sum(s["n_promotions"] for v in gated for s in v["seeds"])
    worst = [
        s["worst_promotion_delta"]
        for v in gated
        for s in v["seeds"]
        if s["worst_promotion_delta"] is not None
    ]
    known = None if any(h is None for h in harms) else sum(harms)
    g["no_harmful_promotion"] = {
        "measured": f"{'unknown' if known is None else known} of {total} gated promotions "
        "lowered held-out accuracy by > 0.5 pt significantly (one-sided exact McNemar, "
        f"p < 0.05); {drops} by > 0.5 pt at all",
        "worst_delta": min(worst) if worst else None,
        "met": None if known is None else known == 0,  # None: runs without paired counts
    }
    if main:
        mh = [s["harmful_promotions"] for v in main for s in v["seeds"]]
        g["harmful_promotions_loop_uncertainty"] = {
            "measured": None if any(h is None for h in mh) else sum(mh),
            "goal": "0",
            "met": None if any(h is None for h in mh) else all(h == 0 for h in mh),
        }
        settle = [v["median"]["retrains_after_recovery"] for v in main]
        if onset is not None:
            g["retrains_after_recovery"] = {
                "measured": settle,
                "goal": "<= 1 per 10 stable batches after recovery",
                "met": all(x is not None and x <= 1 for x in settle),
            }
    return g


def read_runs_log(path) -> list[dict]:
    """The runs of a `bench loop` runs log (`<json>.runs.jsonl`, one {"key", "run"} a line),
    the last of each (seed, policy) kept: what a resumed benchmark would reuse."""
    from pathlib import Path

    runs: dict[tuple[int, str], dict] = {}
    for line in Path(path).read_text().splitlines():
        if line.strip():
            r = json.loads(line)["run"]
            runs[(r["seed"], r["policy"])] = r
    return list(runs.values())


def policies_of(runs: list[dict]) -> list[Policy]:
    """The policies the runs ran, in order of first appearance (from each run's kind,
    budget and overrides: the same `Policy` the benchmark made)."""
    out: dict[str, Policy] = {}
    for r in runs:
        p = Policy(r["kind"], r["budget"], dict(r["overrides"]))
        if p.name != r["policy"]:
            raise ValueError(f"run {r['policy']!r} (seed {r['seed']}) reads back as {p.name!r}")
        out.setdefault(p.name, p)
    return list(out.values())


def complete_seeds(runs: list[dict], policies: list[Policy]) -> list[int]:
    """Seeds for which every policy has a run (a summary compares policies on the same seeds).

    >>> complete_seeds([{"seed": 1, "policy": "static"}, {"seed": 2, "policy": "static"},
    ...                 {"seed": 2, "policy": "oracle"}],
    ...                [Policy("static", 0), Policy("oracle", None)])
    [2]
    """
    have: dict[int, set[str]] = {}
    for r in runs:
        have.setdefault(r["seed"], set()).add(r["policy"])
    names = {p.name for p in policies}
    return sorted(s for s, got in have.items() if names <= got)
