"""One `bench loop` job on the engine against the same job on the old replica, in one run.

    .venv/bin/python -m bench.loop_speed_bench --policy loop-uncertainty@20 --seed 7
    .venv/bin/python -m bench.loop_speed_bench --policy oracle --seed 7 --replica /tmp/replica
    .venv/bin/python -m bench.loop_speed_bench --no-replica --profile /tmp/h2/engine.prof
    .venv/bin/python -m bench.loop_speed_bench --run-json /tmp/h2/after.json

Why this script: the speed goal of issue 9 (`bench loop` within 1.3x the replica's time) is a
ratio, and both sides move with the machine's load, so both are measured here in the same
run. The replica (commit f7d9b18, checked out at `--replica`) runs in a subprocess from its own
tree, started first, while the engine job runs in this process (`--sequential`: one after the
other). Each side reports the CPU seconds (user + sys) and the wall time of the job itself,
measured inside its own process, module imports left out on both sides (`WARM_IMPORTS`);
the subprocess's CPU as seen by this process (`RUSAGE_CHILDREN`, its start-up and imports
included) is printed too. Both jobs bootstrap
their first champion from the seed rows, so the job times include that fit on both sides.

`--profile PATH` writes the engine job's cProfile stats there (read them with `pstats`) and
prints the top functions by cumulative time; profiled CPU is slower, so the ratio printed
then is not the one to report. `--run-json PATH` saves the engine job's run dict (its
per-batch decisions); `--same-as PATH` compares this run's decisions with such a file (a
change meant for speed must print "identical").
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.common import emit, machine

#: what the replica's subprocess runs: one job of its own `bench loop`, timed inside
REPLICA_JOB = r"""
import json, resource, sys, time
scenario, seed, kind, budget = sys.argv[1], int(sys.argv[2]), sys.argv[3], int(sys.argv[4])
from flows.bench import _init_worker, _job
from flows.bench_replay import Policy
from flows.bench_world import settings_from_config
from flows.config import load_config
from retrain.digits.scenario import find_scenario

settings = settings_from_config(
    load_config(None), periodic_every=5, degraded_checks=3, candidate_batches=10
)
_init_worker()
ru0, t0 = resource.getrusage(resource.RUSAGE_SELF), time.perf_counter()
run = _job((str(find_scenario(scenario)), seed, Policy(kind, budget), settings, None))
ru1, wall = resource.getrusage(resource.RUSAGE_SELF), time.perf_counter() - t0
cpu = (ru1.ru_utime - ru0.ru_utime) + (ru1.ru_stime - ru0.ru_stime)
print("REPLICA-RESULT " + json.dumps({"cpu_s": cpu, "wall_s": wall,
      "fit_s": run.get("fit_seconds"), "retrains": run.get("retrain_batches"), "promotions": len(run.get("promotions", []))}))
"""

#: what the engine's job imports on first use (the replica's job imports them at module
#: level, before its timer): imported before the engine's timer starts, so that both job
#: times leave out the imports, which `bench loop` pays once per worker process, not per job
WARM_IMPORTS = (
    "flows.loop.engine", "flows.loop.score", "flows.loop.drift", "flows.loop.curate",
    "flows.loop.sync", "flows.loop.retrain", "flows.loop.card", "flows.loop.triggers",
    "retrain.training", "retrain.digits.simulation", "curation.labelstudio_memory",
    "curation.drift", "evaluation.report_card", "storage.queries", "storage.datasets",
)  # fmt: skip

#: run-dict keys that are measurements of time, not decisions
TIMINGS = ("seconds", "cpu_seconds", "bootstrap_seconds", "fit_seconds")


def cpu_seconds(who: int) -> float:
    ru = resource.getrusage(who)
    return ru.ru_utime + ru.ru_stime


def decisions(run: dict) -> dict:
    """A run dict without its timings: two runs of the same job must be equal on this."""
    return {k: v for k, v in run.items() if k not in TIMINGS}


def replica_kind(policy: str, batch_size: int) -> tuple[str, int]:
    """The replica's (kind, budget) for an engine policy name; the replica has no `configured`.

    >>> replica_kind("loop-uncertainty@20", 200), replica_kind("oracle", 200)
    (('loop-uncertainty', 20), ('oracle', 200))
    """
    kind, _, budget = policy.partition("@")
    if kind == "configured":
        raise ValueError(
            "policy configured: the replica has no such policy; use loop-uncertainty@N"
        )
    if kind == "oracle":
        return kind, batch_size
    return kind, int(budget or 0)


def start_replica(replica: Path, scenario: str, seed: int, kind: str, budget: int):
    env = {**os.environ, "PYTHONPATH": str(replica), "PREFECT_SERVER_ANALYTICS_ENABLED": "false"}
    return subprocess.Popen(
        [str(replica / ".venv/bin/python"), "-c", REPLICA_JOB, scenario, str(seed), kind,
         str(budget)],
        cwd=replica, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip


def finish_replica(proc, t0: float, children0: float) -> dict:
    out, err = proc.communicate()
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise RuntimeError(f"replica job failed (exit {proc.returncode}):\n{err[-3000:]}")
    line = next(x for x in out.splitlines() if x.startswith("REPLICA-RESULT "))
    res = json.loads(line.removeprefix("REPLICA-RESULT "))
    res["process_cpu_s"] = cpu_seconds(resource.RUSAGE_CHILDREN) - children0
    res["process_wall_s"] = wall
    return res


def engine_job(
    scenario: str, seed: int, policy: str, root: str, profile: str | None, cache_parts: bool
) -> dict:
    """The engine's job as `bench loop` runs it (`flows.bench_run.run_job`), in this process."""
    import torch

    from flows.bench_policies import parse_policy
    from flows.bench_run import Job, run_job

    torch.set_num_threads(1)
    for name in WARM_IMPORTS:  # the replica imports its modules before its timer starts too
        importlib.import_module(name)
    pol = parse_policy(policy, batch_size(scenario))
    job = Job(
        scenario=scenario, seed=seed, policy=pol, config=None, root=root,
        degraded_checks=3 if pol.kind == "loop-uncertainty" else 0,
        **({} if cache_parts else {"cache_parts": False}),
    )  # fmt: skip
    prof = None
    if profile:
        import cProfile

        prof = cProfile.Profile(time.process_time)  # CPU seconds, as the figures
        prof.enable()
    c0, t0 = cpu_seconds(resource.RUSAGE_SELF), time.perf_counter()
    run = run_job(job)
    cpu, wall = cpu_seconds(resource.RUSAGE_SELF) - c0, time.perf_counter() - t0
    if prof is not None:
        import pstats

        prof.disable()
        prof.dump_stats(profile)
        pstats.Stats(prof, stream=sys.stderr).sort_stats("cumulative").print_stats(45)
    return {"cpu_s": cpu, "wall_s": wall, "run": run}


def batch_size(scenario: str) -> int:
    import tomllib

    return int(tomllib.loads(Path(scenario).read_text()).get("batch_size", 200))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--scenario", default="scenarios/rotation-ramp.toml")
    ap.add_argument("--policy", default="loop-uncertainty@20")
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--replica", default="/tmp/replica", help="checkout of the replica (f7d9b18)")
    ap.add_argument("--no-replica", action="store_true", help="engine job only")
    ap.add_argument("--sequential", action="store_true", help="replica after the engine")
    ap.add_argument(
        "--no-cache-parts", action="store_true", help="engine reads the Parquet parts every query"
    )
    ap.add_argument("--profile", help="write the engine job's cProfile stats here")
    ap.add_argument("--run-json", help="write the engine job's run dict here")
    ap.add_argument("--same-as", help="a --run-json file: are this run's decisions the same?")
    ap.add_argument("--json", help="write the figures here")
    a = ap.parse_args()
    scenario = str(Path(a.scenario).resolve())
    replica = Path(a.replica)
    proc = None
    if not a.no_replica and not (replica / "flows" / "bench_replay.py").is_file():
        print(f"replica not found at {replica} (no flows/bench_replay.py): engine job only; "
              "check out commit f7d9b18 there or pass --replica PATH", file=sys.stderr)  # fmt: skip
        a.no_replica = True
    kind, budget = replica_kind(a.policy, batch_size(scenario))
    children0 = cpu_seconds(resource.RUSAGE_CHILDREN)
    t_rep = time.perf_counter()
    if not a.no_replica and not a.sequential:
        proc = start_replica(replica, Path(scenario).stem, a.seed, kind, budget)
    with tempfile.TemporaryDirectory(prefix="loop-speed-") as root:
        eng = engine_job(scenario, a.seed, a.policy, root, a.profile, not a.no_cache_parts)
    if a.run_json:
        Path(a.run_json).write_text(json.dumps(eng["run"], indent=1, sort_keys=True) + "\n")
    if not a.no_replica and a.sequential:
        t_rep = time.perf_counter()
        proc = start_replica(replica, Path(scenario).stem, a.seed, kind, budget)
    rep = finish_replica(proc, t_rep, children0) if proc is not None else None
    run = eng["run"]
    out = {
        "job": {"scenario": a.scenario, "policy": a.policy, "seed": a.seed},
        "mode": "sequential" if a.sequential else "concurrent",
        "profiled": bool(a.profile),
        "cache_parts": not a.no_cache_parts,
        "engine": {
            "cpu_s": round(eng["cpu_s"], 2),
            "wall_s": round(eng["wall_s"], 2),
            "fit_s": run.get("fit_seconds"),
            "retrains": run.get("retrain_batches"),
            "promotions": len(run.get("promotions", [])),
        },
        "machine": machine(),
    }
    if a.same_as:
        before = decisions(json.loads(Path(a.same_as).read_text()))
        now = decisions(json.loads(json.dumps(run)))  # as saved: tuples become lists
        differ = sorted(k for k in set(before) | set(now) if before.get(k) != now.get(k))
        out["decisions"] = "identical" if not differ else f"differ in {differ}"
    if rep is not None:
        out["replica"] = {k: round(v, 2) if isinstance(v, float) else v for k, v in rep.items()}
        out["ratio_cpu"] = round(eng["cpu_s"] / rep["cpu_s"], 3)
        out["ratio_wall"] = round(eng["wall_s"] / rep["wall_s"], 3)
    emit(out, a.json)


if __name__ == "__main__":
    main()
