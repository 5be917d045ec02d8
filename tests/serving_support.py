"""What the serving tests share: digits weights trained once (a few seconds, not a `retrain`
flow), a data home whose champion they are, request bodies, and a real `serve-model`
process on 127.0.0.1."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import httpx
import numpy as np

from tests.support import LOOPWRIGHT, REPO, clean_env, free_port, write_config

DIGITS_META = {"task": "digits", "classes": [str(d) for d in range(10)]}


@lru_cache(maxsize=1)
def trained_digits() -> tuple[dict, float]:
    """(state_dict, holdout accuracy) of the digits CNN fit on the seed split (5 epochs)."""
    from retrain.digits.data import split_digits
    from retrain.digits.task import TASK
    from retrain.model import load_module, predict_proba
    from retrain.training import fit

    split = split_digits()
    result = fit(TASK, split.seed_x[:, None], split.seed_y, max_epochs=5, seed=0)
    module = load_module(TASK, result.state_dict)
    acc = float(
        (predict_proba(module, split.holdout_x[:, None]).argmax(1) == split.holdout_y).mean()
    )
    return result.state_dict, acc


def digits_home(root: Path, versions: int = 2) -> Path:
    """A data home with `versions` registered copies of the trained weights (v0001 champion)."""
    from storage.home import DataHome
    from storage.registry import Registry

    home = DataHome(root).ensure()
    registry = Registry(home)
    state, _ = trained_digits()
    for _ in range(versions):
        registry.register(state, DIGITS_META)
    registry.set_alias("champion", "v0001", reason="serving test")
    return root


def digit_inputs(n: int, offset: int = 0) -> tuple[list[list[float]], list[int]]:
    """`n` holdout digits in the serving JSON form (0..16 numbers) and their labels."""
    from retrain.digits.data import split_digits

    split = split_digits()
    idx = np.arange(offset, offset + n) % len(split.holdout_y)
    return [(split.holdout_x[i].reshape(-1) * 16).tolist() for i in idx], split.holdout_y[
        idx
    ].tolist()


def instances(prefix: str, n: int, offset: int = 0, **extra) -> dict:
    xs, _ = digit_inputs(n, offset)
    return {
        "instances": [
            {"request_id": f"{prefix}-{i}", "input": x, **extra} for i, x in enumerate(xs)
        ]
    }


@dataclass
class Server:
    proc: subprocess.Popen
    url: str
    home: Path
    log: Path

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        return self.proc.returncode

    def kill9(self) -> None:
        os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait(10)


def start_server(tmp: Path, home: Path, timeout: float = 60, **serving: object) -> Server:
    """`loopwright serve-model --home HOME --port P` on 127.0.0.1, ready (healthz 200)."""
    port = free_port()
    cfg = write_config(tmp / f"serve-{port}.toml", home, serving=dict(serving))
    log = tmp / f"serve-{port}.log"
    out = open(log, "w")  # noqa: SIM115 (kept open for the child's lifetime)
    proc = subprocess.Popen(
        [LOOPWRIGHT, "serve-model", "--home", str(home), "--config", str(cfg), "--port", str(port)],
        cwd=REPO,
        env=clean_env(),
        stdout=out,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"serve-model exited {proc.returncode}: {log.read_text()[-3000:]}")
        try:
            if httpx.get(f"{url}/healthz", timeout=2).status_code == 200:
                return Server(proc, url, home, log)
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    proc.kill()
    raise RuntimeError(f"serve-model not ready in {timeout} s: {log.read_text()[-3000:]}")


def logged_ids(home: Path) -> list[str]:
    """Every request id in the prediction log's visible parts (duplicates kept)."""
    import pyarrow.parquet as pq

    ids: list[str] = []
    for part in sorted((home / "predictions").rglob("*.parquet")):
        ids += pq.read_table(part, columns=["request_id"]).column("request_id").to_pylist()
    return ids
