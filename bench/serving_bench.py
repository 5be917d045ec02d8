"""Serving: throughput and p50/p99 latency of `/v1/predict` (digits) against a bare FastAPI
endpoint serving the same model with no logging, no routing, no stats, in the same run.

    .venv/bin/python -m bench.serving_bench --requests 2000 --clients 8 --seconds 30

Each mode is a real server process on 127.0.0.1 (uvicorn, one worker): `bare` (this file's
`bare_app`: pydantic body, parse_input, predict_proba, JSON answer), then `loopwright
serve-model` with `[serving] durability = "async"`, `"ack"`, and `"ack"` with a `shadow`
alias set (a second model scores every input off the response path). The client sends
one-instance requests from `--clients` concurrent httpx connections (asyncio), a bounded
count (`--requests`) within a bounded time (`--seconds`), after a warm-up. Modes are
interleaved over `--repeats` rounds (bare first in each) and each ratio is against the bare
endpoint of the same round. Goals (issue 10): async >= 0.8x bare throughput and <= +2 ms
p99; ack >= 0.5x.

The model: the digits CNN fit for 3 epochs on the seed split (a few seconds), registered
twice (v0001 champion, v0002 shadow) in a temporary data home.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from bench.common import emit, machine, median

REPO = Path(__file__).resolve().parents[1]
LOOPWRIGHT = str(Path(sys.executable).parent / "loopwright")
GOALS = {"async": 0.8, "ack": 0.5}


def bare_app(home: str):
    """The baseline: the same model and input parsing, nothing else."""
    import orjson
    from fastapi import FastAPI
    from fastapi.responses import Response

    from flows.serving.schemas import request_models
    from retrain.digits.task import TASK
    from retrain.model import load_module, predict_proba
    from storage.home import DataHome
    from storage.registry import Registry

    registry = Registry(DataHome(Path(home)))
    state, _ = registry.load(registry.get("champion"))
    module = load_module(TASK, state)
    _, PredictRequest = request_models(TASK.input_schema, 256)
    app = FastAPI()

    async def predict(body: PredictRequest) -> Response:  # type: ignore[valid-type]
        x = np.stack([TASK.parse_input(i.input) for i in body.instances])
        probs = predict_proba(module, x)
        out = [
            {"request_id": i.request_id, "pred": TASK.classes[int(p.argmax())], "probs": p.tolist()}
            for i, p in zip(body.instances, probs, strict=True)
        ]
        return Response(orjson.dumps({"predictions": out}), media_type="application/json")

    predict.__annotations__["body"] = PredictRequest
    app.post("/v1/predict")(predict)
    app.get("/healthz")(lambda: {"status": "ok"})
    return app


def make_home(root: Path) -> Path:
    from retrain.digits.data import split_digits
    from retrain.digits.task import TASK
    from retrain.training import fit
    from storage.home import DataHome
    from storage.registry import Registry

    split = split_digits()
    state = fit(TASK, split.seed_x[:, None], split.seed_y, max_epochs=3, seed=0).state_dict
    home = DataHome(root / "home").ensure()
    reg = Registry(home)
    meta = {"task": "digits", "classes": list(TASK.classes)}
    reg.register(state, meta)
    reg.register(state, meta)
    reg.set_alias("champion", "v0001", reason="bench")
    return home.root


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start(mode: str, home: Path, root: Path) -> tuple[subprocess.Popen, str]:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("LOOPWRIGHT_")}
    if mode == "bare":
        cmd = [
            sys.executable,
            "-m",
            "bench.serving_bench",
            "--bare-server",
            str(home),
            "--port",
            str(port),
        ]
    else:
        durability = "async" if mode == "async" else "ack"
        cfg = root / f"{mode}.toml"
        cfg.write_text(f'[home]\npath = "{home}"\n[serving]\ndurability = "{durability}"\n')
        cmd = [
            LOOPWRIGHT,
            "serve-model",
            "--home",
            str(home),
            "--config",
            str(cfg),
            "--port",
            str(port),
        ]
    proc = subprocess.Popen(
        cmd, cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    url = f"http://127.0.0.1:{port}"
    import httpx

    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{mode} server exited: {proc.stderr.read().decode()[-2000:]}")
        try:
            if httpx.get(f"{url}/healthz", timeout=2).status_code == 200:
                return proc, url
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    proc.kill()
    raise RuntimeError(f"{mode} server not ready")


async def load(url: str, bodies: list[bytes], clients: int, seconds: float) -> dict:
    import httpx

    latencies: list[float] = []
    errors = 0
    next_i = 0
    deadline = time.perf_counter() + seconds
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=30) as client:

        async def worker() -> None:
            nonlocal next_i, errors
            while next_i < len(bodies) and time.perf_counter() < deadline:
                body = bodies[next_i]
                next_i += 1
                t0 = time.perf_counter()
                r = await client.post(
                    "/v1/predict", content=body, headers={"content-type": "application/json"}
                )
                latencies.append((time.perf_counter() - t0) * 1000)
                errors += r.status_code != 200

        for _ in range(2 * clients):  # warm-up, not measured
            await client.post(
                "/v1/predict", content=bodies[0], headers={"content-type": "application/json"}
            )
        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(clients)))
        wall = time.perf_counter() - started
    lat = np.asarray(latencies)
    return {
        "requests": len(latencies),
        "errors": errors,
        "rps": len(latencies) / wall,
        "p50_ms": float(np.percentile(lat, 50)),
        "p99_ms": float(np.percentile(lat, 99)),
    }


def bodies_for(mode: str, n: int, round_: int) -> list[bytes]:
    import orjson
    from sklearn.datasets import load_digits

    data = load_digits().data
    return [
        orjson.dumps(
            {
                "instances": [
                    {"request_id": f"{mode}-{round_}-{i}", "input": data[i % len(data)].tolist()}
                ]
            }
        )
        for i in range(n)
    ]


def set_shadow(home: Path, on: bool) -> None:
    from storage.home import DataHome
    from storage.registry import Registry

    reg = Registry(DataHome(home))
    if on and reg.get("shadow") is None:
        reg.set_alias("shadow", "v0002", reason="bench shadow")
    elif not on and reg.get("shadow") is not None:
        reg.clear_alias("shadow", reason="bench shadow off")


def stop(proc: subprocess.Popen) -> None:
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--requests", type=int, default=2000, help="requests per mode and round")
    ap.add_argument("--clients", type=int, default=8, help="concurrent connections")
    ap.add_argument("--seconds", type=float, default=30.0, help="time bound per mode and round")
    ap.add_argument("--repeats", type=int, default=2, help="rounds of all modes")
    ap.add_argument("--modes", default="bare,async,ack,ack+shadow")
    ap.add_argument("--json", default=None, help="also write the figures to this file")
    ap.add_argument("--bare-server", default=None, help=argparse.SUPPRESS)
    ap.add_argument("--port", type=int, default=0, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.bare_server:
        import uvicorn

        uvicorn.run(
            bare_app(args.bare_server), host="127.0.0.1", port=args.port, log_level="warning"
        )
        return
    modes = args.modes.split(",")
    root = Path(tempfile.mkdtemp(prefix="serving-bench-"))
    home = make_home(root)
    rounds: list[dict] = []
    for r in range(args.repeats):
        out = {}
        for mode in modes:
            set_shadow(home, mode == "ack+shadow")
            proc, url = start(mode, home, root)
            try:
                out[mode] = asyncio.run(
                    load(url, bodies_for(mode, args.requests, r), args.clients, args.seconds)
                )
            finally:
                stop(proc)
            print(f"round {r} {mode:11s} {out[mode]}", flush=True)
        rounds.append(out)
    summary = {}
    for mode in modes:
        runs = [rd[mode] for rd in rounds]
        ratio = [rd[mode]["rps"] / rd["bare"]["rps"] for rd in rounds if "bare" in rd]
        dp99 = [rd[mode]["p99_ms"] - rd["bare"]["p99_ms"] for rd in rounds if "bare" in rd]
        summary[mode] = {
            "rps": median([x["rps"] for x in runs]),
            "p50_ms": median([x["p50_ms"] for x in runs]),
            "p99_ms": median([x["p99_ms"] for x in runs]),
            "errors": sum(x["errors"] for x in runs),
            "throughput_vs_bare": median(ratio) if ratio else None,
            "p99_minus_bare_ms": median(dp99) if dp99 else None,
        }
        goal = GOALS.get(mode.split("+")[0])
        if goal and ratio and "+" not in mode:
            summary[mode]["goal"] = f">= {goal}x bare" + (
                " and <= +2 ms p99" if mode == "async" else ""
            )
            summary[mode]["goal_met"] = median(ratio) >= goal and (
                mode != "async" or median(dp99) <= 2.0
            )
    result = {"bench": "serving", "machine": machine(), "args": vars(args), "summary": summary}
    emit({**result, "rounds": rounds}, args.json)


if __name__ == "__main__":
    main()
