"""Child processes for the reliability tests: `python -m tests.reliability.workers CMD ...`.

Each prints one line per finished step, flushed, so that the parent knows exactly which steps
returned before it killed the child: `READY` once imports are done, then `ACK ...` lines.
"""

from __future__ import annotations

import os
import random
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np

CLASSES = [str(i) for i in range(10)]
N_FEATURES = 16


def say(line: str) -> None:
    print(line, flush=True)


def batch(ids: list[str], rng: np.random.Generator, model_version: str, ts=None):
    from storage.prediction_log import make_batch

    logits = rng.normal(size=(len(ids), len(CLASSES))) * 3
    probs = np.exp(logits - logits.max(axis=1, keepdims=True))
    probs /= probs.sum(axis=1, keepdims=True)
    return make_batch(
        request_ids=ids,
        features=rng.random((len(ids), N_FEATURES)),
        probs=probs,
        classes=CLASSES,
        model_version=model_version,
        ts=ts,
        attrs=[{"writer": model_version}] * len(ids),
    )


def open_home(home: str):
    """The worker's data home; its logs on object storage when the parent set the
    `[storage]` overrides (tests/integration/test_object_storage.py)."""
    from storage.home import DataHome

    return DataHome(
        Path(home),
        os.environ.get("LOOPWRIGHT_STORAGE__LOGS_URL", ""),
        os.environ.get("LOOPWRIGHT_STORAGE__ENDPOINT_URL", ""),
    )


def wait_for(go: Path) -> None:
    while not go.exists():
        time.sleep(0.001)


def log(home: str, prefix: str, seed: str) -> None:
    """Append batches of random size forever; `ACK <first id> <n>` after each append returns.
    Every third batch spans two UTC dates, so it is written as two parts."""
    from storage.prediction_log import PredictionLog

    rng = np.random.default_rng(int(seed))
    plog = PredictionLog(open_home(home))
    batch(["warm-up"], rng, "v0001")  # lazy imports done before the clock starts
    say("READY")
    for i in range(10**9):
        n = int(rng.integers(100, 1500))
        ids = [f"{prefix}-{i:05d}-{j:05d}" for j in range(n)]
        ts = None
        if i % 3 == 2:
            midnight = datetime(2026, 1, 2, tzinfo=UTC)
            ts = [midnight + timedelta(seconds=int(s)) for s in rng.integers(-50, 50, n)]
        plog.append(batch(ids, rng, "v0001", ts))
        say(f"ACK {prefix}-{i:05d} {n}")


def write(home: str, first: str, last: str, rows: str, version: str, go: str) -> None:
    """Log request ids r-<first>..r-<last-1> in batches of `rows`, once `go` exists."""
    from storage.prediction_log import PredictionLog

    rng = np.random.default_rng(int(first))
    plog = PredictionLog(open_home(home))
    ids = [f"r-{k:07d}" for k in range(int(first), int(last))]
    say("READY")
    wait_for(Path(go))
    written = 0
    for start in range(0, len(ids), int(rows)):
        written += plog.append(batch(ids[start : start + int(rows)], rng, version))
    say(f"DONE {written}")


def promote(home: str, version: str, expected: str, go: str) -> None:
    """Race for champion: a compare-and-swap from `expected` to `version`."""
    from storage.home import DataHome
    from storage.registry import AliasConflict, Registry

    reg = Registry(DataHome(Path(home)))
    say("READY")
    wait_for(Path(go))
    try:
        reg.set_alias("champion", version, reason=f"race to {version}", expected=expected)
    except AliasConflict:
        say("LOST")
    else:
        say("WON")


def rollback(home: str, go: str) -> None:
    from storage.home import DataHome
    from storage.registry import Registry

    reg = Registry(DataHome(Path(home)))
    say("READY")
    wait_for(Path(go))
    say(f"ROLLED {reg.rollback(reason='race rollback')}")


def register(home: str, seed: str) -> None:
    """Register small models forever; `ACK <version>` after each registration returns."""
    import torch

    from storage.home import DataHome
    from storage.registry import Registry

    reg = Registry(DataHome(Path(home)))
    g = torch.Generator().manual_seed(int(seed))
    rng = random.Random(int(seed))
    say("READY")
    while True:
        n = rng.randint(50, 400)
        state = {"w": torch.randn(n, 256, generator=g), "b": torch.zeros(n)}
        say(f"ACK {reg.register(state, {'task': 'digits', 'classes': CLASSES})}")


def load_writer(home: str, seconds: str, rows: str, pool: str, out: str) -> None:
    """Log digit predictions (inputs and features from the `pool` Parquet file) as fast as
    possible for `seconds`; write "rows appends seconds peak_rss_mb" to `out`."""
    _load(home, rows, pool, out, seconds=float(seconds))


def load_appends(home: str, appends: str, rows: str, pool: str, out: str, tag: str = "") -> None:
    """As `load_writer`, but a fixed amount of work: `appends` appends of `rows` rows each, so
    that the log the readers face does not depend on the machine's speed."""
    _load(home, rows, pool, out, appends=int(appends), tag=tag)


def _load(home, rows, pool, out, seconds: float | None = None, appends: int | None = None,
          tag: str = "") -> None:  # fmt: skip
    import pyarrow.parquet as pq

    from storage.home import DataHome
    from storage.prediction_log import PredictionLog, make_batch

    table = pq.read_table(pool)
    features = np.array(table.column("features").to_pylist(), dtype=np.float32)
    inputs = table.column("input").to_pylist()
    rng = np.random.default_rng(os.getpid())
    plog = PredictionLog(DataHome(Path(home)))
    n = int(rows)
    name = tag or str(os.getpid())
    say("READY")
    t0, i, total = time.perf_counter(), 0, 0

    def more() -> bool:
        if appends is not None:
            return i < appends
        return time.perf_counter() - t0 < seconds

    while more():
        pick = rng.integers(0, len(inputs), n)
        probs = rng.dirichlet(np.full(len(CLASSES), 0.3), size=n)
        batch = make_batch(
            request_ids=[f"load-{name}-{i:06d}-{j:05d}" for j in range(n)],
            features=features[pick],
            probs=probs,
            classes=CLASSES,
            model_version="v0001",
            inputs=[inputs[k] for k in pick],
        )
        total += plog.append(batch, classes=CLASSES)
        i += 1
    elapsed = time.perf_counter() - t0
    # VmHWM, not ru_maxrss: the latter keeps the forking parent's peak across exec
    status = Path("/proc/self/status").read_text().splitlines()
    peak = next(int(x.split()[1]) for x in status if x.startswith("VmHWM:")) / 1024
    Path(out).write_text(f"{total} {i} {elapsed:.3f} {peak:.1f}\n")
    say("DONE")


def compact(
    home: str,
    target_mb: str,
    grace_s: str,
    rounds: str = "1",
    stop: str = "",
    pause_s: str = "0",
    hold_s: str = "0",
) -> None:
    """Compact the prediction log `rounds` times (until the file `stop` exists, if given,
    `pause_s` apart), printing each step (`merging ...`, `writing <temp>`, `published ...`)
    as it happens, then `ROUND <n> <merged files> <deleted parts>`. `hold_s`: stay that long
    in each merged file's write (a slow disk), so that a kill can land there for sure."""
    from storage.compaction import compact_log
    from storage.home import DataHome
    from storage.settings import StorageSettings

    settings = StorageSettings(
        compact_target_mb=int(target_mb), compact_grace_s=int(grace_s), compact_min_age_s=0,
        compact_min_parts=2,
    )  # fmt: skip
    home_ = DataHome(Path(home))

    def hear(event: str) -> None:
        say(event)
        if event.startswith("writing"):
            time.sleep(float(hold_s))

    say("READY")
    n = 0
    while not (Path(stop).exists() if stop else n >= int(rounds)):
        report = compact_log(home_, "predictions", settings, on_event=hear)
        n += 1
        say(f"ROUND {n} {report.groups} {report.deleted}")
        time.sleep(float(pause_s))


COMMANDS = {
    "log": log,
    "write": write,
    "promote": promote,
    "rollback": rollback,
    "register": register,
    "load_writer": load_writer,
    "load_appends": load_appends,
    "compact": compact,
}

if __name__ == "__main__":
    COMMANDS[sys.argv[1]](*sys.argv[2:])
