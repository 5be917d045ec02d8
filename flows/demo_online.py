"""The demo's online side: `loopwright serve-model` in front of the demo's data home, and
the simulator as its HTTP client (predictions, user feedback).

Why a subprocess on a free port of 127.0.0.1: the demo runs the serving endpoint exactly as a
user starts it, and the loop's flows read what it logged (with `[serving] durability = "ack"`
a response arrives only once its rows are in the prediction log, so the next stage sees the
whole batch). The server is stopped when the demo ends, also on an error.
"""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pyarrow as pa


def demo_environment(cfg) -> dict[str, str]:
    """The environment overrides the demo runs its stages (and the server) with.

    Why the environment: every stage is its own Prefect flow run that reads the config
    afresh (as a deployment does), so an override must reach each `load_config`, and the
    server subprocess too. `[demo] rollout = true` turns `[rollout] enabled` on for the demo
    only: the demo shows every promotion going through the rollout's steps, while the loop's
    general default stays direct promotion (docs/contracts.md, "Rollout").

    The rollout's sizing comes from `[demo] rollout_steps`, `rollout_min_labels` and
    `rollout_min_predictions` (the demo's traffic is small); with `[rollout] enabled` already
    true, the loop's own `[rollout]` is left as written.

    >>> from flows.config import load_config
    >>> demo_environment(load_config(overrides={"demo.rollout": True, "rollout.enabled": False}))
    {'LOOPWRIGHT_ROLLOUT__ENABLED': 'true', 'LOOPWRIGHT_ROLLOUT__STEPS': '25.0,100.0', 'LOOPWRIGHT_ROLLOUT__MIN_LABELS': '10', 'LOOPWRIGHT_ROLLOUT__MIN_PREDICTIONS': '40'}
    >>> demo_environment(load_config(overrides={"demo.rollout": False}))
    {}
    """
    demo = cfg.demo
    if not demo.rollout or cfg.rollout.enabled:
        return {}
    return {
        "LOOPWRIGHT_ROLLOUT__ENABLED": "true",
        "LOOPWRIGHT_ROLLOUT__STEPS": ",".join(str(float(s)) for s in demo.rollout_steps),
        "LOOPWRIGHT_ROLLOUT__MIN_LABELS": str(demo.rollout_min_labels),
        "LOOPWRIGHT_ROLLOUT__MIN_PREDICTIONS": str(demo.rollout_min_predictions),
    }


@contextlib.contextmanager
def environment(overrides: dict[str, str]):
    """`os.environ` with `overrides` while the block runs, restored after (also on errors)."""
    before = {k: os.environ.get(k) for k in overrides}
    os.environ.update(overrides)
    try:
        yield
    finally:
        for key, value in before.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def json_inputs(task, inputs: Sequence[bytes]) -> list | None:
    """The task's JSON form of logged inputs (what a client sends), or None when the task
    does not say how (`Task.input_json`; digits: 64 numbers in 0..16, row-major)."""
    to_json = getattr(task, "input_json", None)
    x = task.decode_inputs(list(inputs))
    if to_json is not None:
        return [to_json(xi) for xi in x]
    if task.name == "digits":  # parse_input divides by 16: exact for the 8-bit pixels
        return [(xi.astype(np.float64) * 16.0).reshape(-1).tolist() for xi in x]
    return None


def online_capable(task, table: pa.Table) -> bool:
    """Can the demo put the endpoint in front of this task's traffic (a JSON form to send)?"""
    if task.parse_input is None or table.num_rows == 0:
        return False
    return json_inputs(task, table.column("input").to_pylist()[:1]) is not None


class ModelServer:
    """`loopwright serve-model --home HOME --port P` as a subprocess, stopped on exit."""

    def __init__(
        self,
        home: Path,
        config_path: str | None,
        max_instances: int = 256,
        start_timeout_s: float = 120.0,
    ):
        self.home, self.config_path = Path(home), config_path
        self.max_instances = int(max_instances)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.timeout = start_timeout_s
        self.proc: subprocess.Popen | None = None
        self.log = self.home / "state" / "serve-model.log"

    def launch(self) -> ModelServer:
        """Start the process (it imports torch and FastAPI for a while: launch it early, the
        demo bootstraps its champion meanwhile); `wait_ready` waits for it."""
        cmd = [sys.executable, "-m", "flows.cli", "serve-model", "--home", str(self.home)]
        if self.config_path:
            cmd += ["--config", str(self.config_path)]
        cmd += ["--host", "127.0.0.1", "--port", str(self.port)]
        env = {**os.environ, "LOOPWRIGHT_SERVING__DURABILITY": "ack"}
        self.log.parent.mkdir(parents=True, exist_ok=True)
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=env)
        return self

    def wait_ready(self) -> ModelServer:
        """Until /healthz answers 200 (a champion is served), or a clear error."""
        import httpx

        if self.proc is None:
            self.launch()
        deadline = time.monotonic() + self.timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(
                    f"serve-model exited with {self.proc.returncode}: see {self.log}"
                )
            try:
                if httpx.get(f"{self.url}/healthz", timeout=2.0).status_code == 200:
                    self.client = httpx.Client(base_url=self.url, timeout=60.0)
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"serve-model did not answer on {self.url} in {self.timeout:.0f} s")

    def __enter__(self) -> ModelServer:
        try:
            return self.wait_ready()
        except BaseException:
            self.stop()
            raise

    def __exit__(self, *exc) -> None:
        self.stop()

    def stop(self) -> None:
        client = getattr(self, "client", None)
        if client is not None:
            client.close()
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)

    def predict(self, table: pa.Table, instances: list, max_instances: int) -> dict:
        """POST the batch in request order, at most `max_instances` per request; what each
        role served."""
        ids = table.column("request_id").to_pylist()
        attrs = (
            [dict(a or {}) for a in table.column("attrs").to_pylist()]
            if "attrs" in table.column_names
            else [{}] * len(ids)
        )
        served: dict[str, int] = {}
        versions: dict[str, str] = {}
        for start in range(0, len(ids), max_instances):
            chunk = [
                {"request_id": r, "input": x, "attrs": a}
                for r, x, a in zip(
                    ids[start : start + max_instances],
                    instances[start : start + max_instances],
                    attrs[start : start + max_instances],
                    strict=True,
                )
            ]
            response = self.client.post("/v1/predict", json={"instances": chunk})
            if response.status_code != 200:
                raise RuntimeError(
                    f"POST /v1/predict answered {response.status_code}: {response.text[:500]}"
                )
            for p in response.json()["predictions"]:
                served[p["role"]] = served.get(p["role"], 0) + 1
                versions[p["role"]] = p["model_version"]
        return {"rows": len(ids), "written": served, "versions": versions}

    def feedback(self, pairs: Sequence[tuple[str, str]]) -> int:
        for request_id, label in pairs:
            response = self.client.post(
                "/v1/feedback", json={"request_id": request_id, "label": label}
            )
            if response.status_code != 200:
                raise RuntimeError(
                    f"POST /v1/feedback answered {response.status_code}: {response.text[:300]}"
                )
        return len(pairs)
