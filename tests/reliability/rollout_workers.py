"""Child processes of the rollout fault tests: `python -m tests.reliability.rollout_workers
CMD HOME ...`. Each prints `READY` once its imports are done, then one line per result."""

from __future__ import annotations

import sys
import time
from datetime import timedelta
from pathlib import Path


def say(line: str) -> None:
    print(line, flush=True)


def _loop(home: str):
    from dataclasses import replace

    from evaluation.rollout import RolloutRules
    from flows.config import Config
    from flows.loop.engine import Loop
    from storage.home import DataHome

    cfg = replace(Config(), rollout=RolloutRules(min_predictions=50, stats_url="off"))
    return Loop(cfg, DataHome(Path(home)))


def race(home: str, go: str) -> None:
    """Wait for the go file, then try to start a rollout of v0002: WON id / LOST message."""
    from flows.loop import rollout
    from storage.rollout_state import RolloutConflict
    from tests.rollout_support import T0

    loop = _loop(home)
    loop.registry  # noqa: B018 (imports done before the race)
    say("READY")
    while not Path(go).exists():
        time.sleep(0.001)
    try:
        say(f"WON {rollout.start(loop, 'v0002', now=T0)['id']}")
    except RolloutConflict as exc:
        say(f"LOST {exc}")


def advance_then_hang(home: str) -> None:
    """Start, serve a good step, advance to the second weight, say so, then wait to be killed."""
    from flows.loop import rollout
    from tests.rollout_support import T0, both_arms

    loop = _loop(home)
    say("READY")
    rollout.start(loop, "v0002", now=T0)
    both_arms(loop, T0 + timedelta(seconds=1), "a", canary_acc=0.9, champ_acc=0.9)
    out = rollout.step(loop, now=T0 + timedelta(hours=1))
    say(f"ADVANCED {out['weight']}")
    time.sleep(600)


if __name__ == "__main__":
    {"race": race, "advance_then_hang": advance_then_hang}[sys.argv[1]](*sys.argv[2:])
