"""The benchmark's rollout check: does the online rollout stop a candidate that passes the
offline gate but is worse on live traffic, and does it let the good ones through?

`python -m flows.bench_online --scenario S --seeds 7,8,9 --json OUT` runs, per seed, the
engine (`run_round`, as `bench loop` does) with the `online` policy (rollouts on, in process:
no serving stats). Two kinds of rollouts are observed:
- real: every candidate the loop itself trained and the gate passed, rolled out on the
  stream as configured; "good" when its held-out accuracy on the next batch beats the
  champion's (the simulation's truth, never seen by the loop);
- live-worse: after each of the first `checks` real promotions, in a throwaway copy of the
  home (as `bench_run.degraded_check` does for the gate), a candidate fine-tuned from the
  first champion on the same labeled rows WITHOUT the newest phase's, offered to the gate
  (its verdict recorded) and rolled out through the engine's own rollout stage on the next
  batches of the stream (at most `horizon`), until it is promoted or rolled back.

Why a separate command rather than a step of `bench loop`: the check needs rollouts on,
which changes the loop it observes (a candidate waits for its rollout), and a copy of the
home per check; `bench loop`'s policies stay comparable with their earlier runs. Why the
first champion as the live-worse candidate's start: a pipeline that lost the newest data
fits what the seed rows and the older rows teach, and the gate's eval set (a split of all
labeled rows, mostly older ones) sees little of the gap.
"""

from __future__ import annotations

import argparse
import copy
import json
import shutil
import time
from pathlib import Path

from evaluation.rollout_outcomes import good_candidates_summary, live_worse_summary
from flows.bench_policies import online
from flows.bench_run import Job, _home, _open_loop, _world, accuracy, gate_reasons
from flows.loop.feedback import simulated_feedback
from flows.loop.round import run_round
from flows.summary import canary_predictions


def rows_before_phase(request_ids, phase_of: dict[str, int], newest: int) -> list[bool]:
    """Which labeled rows a pipeline that lost the newest phase's data still has: every row
    whose batch is of an older phase, and rows of no batch (the seed).

    >>> rows_before_phase(["s1", "a", "b"], {"a": 0, "b": 2}, 2)
    [True, True, False]
    """
    return [phase_of.get(r, -1) < newest for r in request_ids]


def _phase_of(world, upto: int) -> dict[str, int]:
    out: dict[str, int] = {}
    for j in range(upto + 1):
        p = int(world.phase(j))
        for r in world.table(j).column("request_id").to_pylist():
            out[r] = p
    return out


def _heldout_gap(loop, candidate: str, champion: str, world, i: int) -> dict:
    x, y = world.heldout(min(i + 1, world.n_batches - 1))  # the traffic it would serve next
    can, champ = accuracy(loop.predictor(candidate), x, y), accuracy(loop.predictor(champion), x, y)
    return {"heldout_candidate": can, "heldout_champion": champ, "heldout_gap": can - champ}


def _by_id(home, rid: str) -> dict:
    """A rollout's summary by id, running or finished."""
    from storage.rollout_state import all_rollouts, summary

    return summary(next(s for s in all_rollouts(home) if s["id"] == rid))


def _record(kind: str, state: dict, served: int, batches: int, gap: dict, **extra) -> dict:
    steps = state["steps"]
    return {
        "kind": kind,
        "candidate": state["candidate"],
        "outcome": state["outcome"],
        "decisions": [s["decision"] for s in steps],
        "weights": [s["weight"] for s in steps],
        "reasons": state.get("reason"),
        "canary_predictions": canary_predictions(steps),
        "served": served,
        "batches": batches,
        **gap,
        **extra,
    }


def _real(state: dict, rec: dict) -> dict:
    return _record(
        "real", state, rec["served"], rec["batches"], rec["gap"], after_batch=rec["start"]
    )


#: where a live-worse candidate's fine-tune starts: the first champion (seed rows only) or
#: the current champion (it then forgets part of the newest phase)
BASES = ("first", "champion")


def live_worse_check(
    loop, world, i: int, seed: int, memory, horizon: int, scratch: Path, base: str = "first"
) -> dict:
    """Train the live-worse candidate in a copy of the home after round `i` (fine-tuned from
    `base` on the labeled rows but the newest phase's), offer it to the gate, and roll it
    out on batches i+1.. (at most `horizon`) through `run_round`."""
    if base not in BASES:
        raise ValueError(f"base {base!r}: use one of {list(BASES)}")
    from flows.loop import rollout
    from flows.loop.card import report_card
    from flows.loop.clock import traffic_now
    from flows.loop.retrain import form_dataset, train

    shutil.copytree(loop.home.root, scratch)
    try:
        mem = copy.deepcopy(memory)  # the run's Label Studio is not touched by the copy's rounds
        other = _open_loop(
            loop.cfg,
            scratch,
            cache_parts=loop.cache_parts,
            labelstudio=lambda: mem,
            annotator=world.annotator(loop.cfg.labeling.error_rate, loop.cfg.labeling.annotator),
        )
        other.decoded = loop.decoded
        other.traffic_time = loop.traffic_time  # the rollout's clock: the replay's
        champion = other.registry.get("champion")
        first = next(
            (h["to"] for h in other.registry.history() if h.get("alias") == "champion"), champion
        )  # the first champion: fitted on the seed rows only
        labeled = other.queries.labeled_examples()
        keep = rows_before_phase(
            labeled.column("request_id").to_pylist(), _phase_of(world, i), int(world.phase(i))
        )
        import pyarrow as pa

        ds = form_dataset(other, labeled, champion)
        start_from = first if base == "first" else champion
        version = train(other, ds, labeled.filter(pa.array(keep)), start_from)
        gate = report_card(other, ds, labeled, version, champion)["gate"]
        gap = _heldout_gap(other, version, champion, world, i)
        rid = rollout.start(other, version, actor="bench", now=traffic_now(other))["id"]
        served = batches = 0
        for j in range(i + 1, min(world.n_batches, i + 1 + horizon)):
            table = world.table(j)
            ids = table.column("request_id").to_pylist()
            said = simulated_feedback(ids, world.truth, other.cfg.demo.feedback_share)
            run_round(other, table, j, seed, feedback=said)
            served, batches = served + table.num_rows, batches + 1
            if _by_id(other.home, rid)["outcome"] != "running":
                break
        state = _by_id(other.home, rid)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return _record(
        "live-worse",
        state,
        served,
        batches,
        gap,
        after_batch=i,
        base=base,
        rows_dropped=keep.count(False),
        gate_passed=bool(gate["promote"]),
        gate_reasons=gate_reasons(gate),
    )


def run_online(scenario: str, seed: int, config: str | None, root: str, checks: int,
               horizon: int, bases: tuple[str, ...] = BASES) -> dict:  # fmt: skip
    """One seed: the online run (real rollouts) and its live-worse checks."""
    from curation.labelstudio_memory import InMemoryLabelStudio
    from flows.bench_policies import policy_config
    from storage.rollout_state import current_rollout

    t0 = time.perf_counter()
    job = Job(scenario, seed, online(), config, root)
    cfg = policy_config(job.policy, config)
    world = _world(cfg, scenario, seed)
    home, _ = _home(job, world)
    memory = InMemoryLabelStudio()
    loop = _open_loop(
        cfg,
        home,
        labelstudio=lambda: memory,
        annotator=world.annotator(cfg.labeling.error_rate, cfg.labeling.annotator),
    )
    records, open_real, acc = [], {}, []
    pending_checks = 0
    try:
        for i in range(world.n_batches):
            table = world.table(i)
            hx, hy = world.heldout(i)
            acc.append(accuracy(loop.predictor(loop.registry.get("champion")), hx, hy))
            ids = table.column("request_id").to_pylist()
            said = simulated_feedback(ids, world.truth, cfg.demo.feedback_share)
            done = run_round(loop, table, i, seed, feedback=said)
            r = done.round
            for rec in open_real.values():  # the real rollouts running during this batch
                rec["served"] += table.num_rows
                rec["batches"] += 1
            state = current_rollout(loop.home)
            if r.rollout_decision == "started":
                gap = _heldout_gap(loop, state["candidate"], state["champion_at_start"], world, i)
                open_real[state["id"]] = {"served": 0, "batches": 0, "gap": gap, "start": i}
            for rid in [k for k in open_real if _by_id(loop.home, k)["outcome"] != "running"]:
                rec = open_real.pop(rid)
                st = _by_id(loop.home, rid)
                records.append(_real(st, rec))
                if st["outcome"] == "promoted":
                    pending_checks += 1
            idle = state is None or state["state"] not in ("running", "paused")
            made = len({x["after_batch"] for x in records if x["kind"] == "live-worse"})
            if pending_checks and idle and made < checks and i + 1 < world.n_batches:
                pending_checks -= 1
                scratch = Path(str(loop.home.root) + "-liveworse")
                for base in bases:
                    records.append(
                        live_worse_check(loop, world, i, seed, memory, horizon, scratch, base)
                    )
        for rid, rec in open_real.items():  # still running at the stream's end
            records.append(_real(_by_id(loop.home, rid), rec))
    finally:
        shutil.rmtree(home, ignore_errors=True)
    return {
        "scenario": world.scenario.name,
        "seed": seed,
        "overrides": dict(job.policy.overrides),
        "heldout_accuracy": acc,
        "rollouts": records,
        "seconds": round(time.perf_counter() - t0, 1),
    }


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(prog="python -m flows.bench_online", description=__doc__)
    ap.add_argument("--scenario", action="append", required=True, help="scenario TOML")
    ap.add_argument("--seeds", default="7,8,9", help="comma-separated stream seeds")
    ap.add_argument("--config", default=None)
    ap.add_argument("--checks", type=int, default=2, help="live-worse candidates per seed")
    ap.add_argument("--horizon", type=int, default=6, help="batches a live-worse rollout may run")
    ap.add_argument("--bases", default=",".join(BASES), help="live-worse fine-tune starts")
    ap.add_argument("--json", dest="json_out", default=None)
    ap.add_argument("--root", default=None, help="scratch folder (default: a temporary one)")
    a = ap.parse_args(argv)
    import tempfile

    root = a.root or tempfile.mkdtemp(prefix="lw-bench-online-")
    runs = []
    for scenario in a.scenario:
        for seed in [int(s) for s in a.seeds.split(",") if s.strip()]:
            bases = tuple(b.strip() for b in a.bases.split(",") if b.strip())
            run = run_online(scenario, seed, a.config, root, a.checks, a.horizon, bases)
            runs.append(run)
            print(json.dumps({k: run[k] for k in ("scenario", "seed", "seconds")}), flush=True)
    out = {"runs": runs, "summary": {}}
    for name in sorted({r["scenario"] for r in runs}):
        recs = [x for r in runs if r["scenario"] == name for x in r["rollouts"]]
        worse = [x for x in recs if x["kind"] == "live-worse"]
        out["summary"][name] = {
            "live_worse": live_worse_summary(worse),
            "live_worse_gate_passed": live_worse_summary([x for x in worse if x["gate_passed"]]),
            "live_worse_truly_worse": live_worse_summary(
                [x for x in worse if x["heldout_gap"] < 0]
            ),
            **{
                f"live_worse_from_{b}": live_worse_summary([x for x in worse if x["base"] == b])
                for b in BASES
            },
            "gate_passed": f"{sum(x['gate_passed'] for x in worse)} of {len(worse)}",
            "good": good_candidates_summary(recs),
        }
    print(json.dumps(out["summary"], indent=2))
    if a.json_out:
        Path(a.json_out).write_text(json.dumps(out, indent=2, default=str))
    shutil.rmtree(root, ignore_errors=True) if not a.root else None
    return out


if __name__ == "__main__":
    main()
