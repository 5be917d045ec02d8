"""Rollout faults: a restart in the middle resumes at the same step and weight (new process,
after kill -9); an analysis that cannot run (no labels, serving stats down) holds and never
advances; two rollouts started at once by two processes give exactly one winner."""

from __future__ import annotations

import os
import signal
import subprocess
from datetime import timedelta

from flows.loop import rollout
from storage.rollout_state import current_rollout, read_rollouts
from storage.routing import read_routing
from tests.reliability.helpers import PYTHON, REPO, free_port
from tests.rollout_support import T0, both_arms, make_loop, serve

H = timedelta(hours=1)


def spawn(*args: object) -> subprocess.Popen:
    return subprocess.Popen(
        [PYTHON, "-m", "tests.reliability.rollout_workers", *map(str, args)],
        cwd=REPO, env=dict(os.environ), stdout=subprocess.PIPE, text=True,
    )  # fmt: skip


def line(proc: subprocess.Popen) -> str:
    text = proc.stdout.readline().strip()
    if not text:
        proc.kill()
        raise RuntimeError(f"worker said nothing (exit {proc.wait()})")
    return text


def test_restart_mid_rollout_resumes_at_the_same_step_and_weight(tmp_path):
    loop = make_loop(tmp_path / "home")
    proc = spawn("advance_then_hang", loop.home.root)
    try:
        assert line(proc) == "READY"
        assert line(proc) == "ADVANCED 0.25"
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    state = current_rollout(loop.home)  # what this new process reads after the kill
    assert (state["state"], state["step_index"], state["weight"]) == ("running", 1, 0.25)
    assert read_routing(loop.home).canary_weight == 0.25
    both_arms(loop, T0 + 2 * H, "b", canary_acc=0.9, champ_acc=0.9)
    out = rollout.step(loop, now=T0 + 3 * H)
    assert out["analysis"]["weight"] == 0.25 and out["analysis"]["decision"] == "advance"
    assert out["analysis"]["window"]["since"] == (T0 + H).isoformat()  # the step's own window
    assert current_rollout(loop.home)["weight"] == 0.5 == read_routing(loop.home).canary_weight


def test_an_analysis_that_cannot_run_holds_and_never_advances(tmp_path):
    loop = make_loop(tmp_path / "home")
    rollout.start(loop, "v0002", now=T0)
    serve(loop, "canary", "v0002", 100, start=T0 + timedelta(seconds=1), prefix="c")
    serve(loop, "champion", "v0001", 100, start=T0 + timedelta(seconds=1), prefix="h")
    no_labels = rollout.step(loop, now=T0 + H)["analysis"]
    assert no_labels["decision"] == "hold" and "too few labels" in no_labels["reasons"][0]
    both_arms(loop, T0 + timedelta(seconds=200), "lab", canary_acc=0.9, champ_acc=0.9)
    down = rollout.stats_over_http(f"http://127.0.0.1:{free_port()}/v1/stats", timeout_s=2)
    decisions = [rollout.step(loop, stats=down, now=T0 + k * H)["analysis"] for k in (2, 3, 4)]
    assert [d["decision"] for d in decisions] == ["hold"] * 3
    assert all(
        d["reasons"][0].startswith("serving stats unavailable: ConnectError") for d in decisions
    )
    state = current_rollout(loop.home)
    assert (state["step_index"], state["weight"], state["holds"]) == (0, 0.05, 4)
    assert read_routing(loop.home).canary_weight == 0.05
    # the same evidence with the server back (stats not used): it advances
    assert rollout.step(loop, now=T0 + 5 * H)["analysis"]["decision"] == "advance"


def test_two_processes_starting_rollouts_at_once_give_one_winner(tmp_path):
    loop = make_loop(tmp_path / "home")
    go = tmp_path / "go"
    procs = [spawn("race", loop.home.root, go) for _ in range(2)]
    try:
        for p in procs:
            assert line(p) == "READY"
        go.touch()
        said = sorted(line(p) for p in procs)
    finally:
        for p in procs:
            p.kill()
            p.wait()
    assert said[0].startswith("LOST rollout r-") and "is running: finish it first" in said[0]
    assert said[1].startswith("WON r-")
    data = read_rollouts(loop.home)
    assert data["current"]["id"] == said[1].split()[1] and data["history"] == []
    weights = [e for e in loop.registry.history() if e["kind"] == "weight"]
    assert [(e["from"], e["to"]) for e in weights] == [(0.0, 0.05)]
