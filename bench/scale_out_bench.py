"""Flow-run overhead through a process worker against `loopwright serve`, same run, same
Prefect server (on PostgreSQL), same deployment.

    .venv/bin/python -m bench.scale_out_bench --runs 5

Starts a PostgreSQL cluster (scripts/postgres.sh) and a Prefect server on it
(scripts/prefect_server.sh), then, for each mode, starts `--runs` runs of
`drift-check/drift-check` one after the other on an empty data home (the check answers
"waiting: no champion", so the run is mostly the dispatch and the flow process's start-up):
- `serve`: `loopwright serve` (the runner polls every 1 s: PREFECT_RUNNER_POLL_FREQUENCY=1);
- `worker`: `loopwright deploy --pool bench` and one `loopwright worker --poll-seconds 1`.
Both start each run in a new process; the difference is the worker's extra hop (the work
pool's queue, the process job template). Per run: `pickup` = Prefect's start_time minus the
run's creation, `run` = end_time - start_time, `total` = wall clock from the create call to
a final state seen by the client (polled every 0.2 s). The ratio is worker / serve of the
medians. Everything started is stopped (worker with SIGINT before the server).
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.common import emit, machine, median

REPO = Path(__file__).resolve().parents[1]
LOOPWRIGHT = str(Path(sys.executable).parent / "loopwright")
NEVER = "0 0 1 1 *"


def _script(name: str, action: str, env: dict) -> str:
    proc = subprocess.run(
        [str(REPO / "scripts" / name), action], env=env, capture_output=True, text=True,
        timeout=300,
    )  # fmt: skip
    if proc.returncode != 0:
        raise RuntimeError(f"{name} {action}: {proc.stdout}{proc.stderr}")
    return proc.stdout.strip()


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _runs(api: str, n: int) -> list[dict]:
    from prefect.client.orchestration import get_client
    from prefect.settings import PREFECT_API_URL, temporary_settings

    out = []
    with temporary_settings(updates={PREFECT_API_URL: api}), get_client(sync_client=True) as c:
        deadline = time.monotonic() + 180
        while True:  # serve registers its deployments a few seconds after it starts
            try:
                dep = c.read_deployment_by_name("drift-check/drift-check")
                break
            except Exception:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.5)
        for _ in range(n):
            t0 = time.perf_counter()
            run = c.create_flow_run_from_deployment(dep.id)
            while True:
                run = c.read_flow_run(run.id)
                if run.state and run.state.is_final():
                    break
                time.sleep(0.2)
            total = time.perf_counter() - t0
            if not run.state.is_completed():
                raise RuntimeError(f"run {run.name} ended {run.state.type}: {run.state.message}")
            out.append(
                {
                    "pickup_s": (run.start_time - run.created).total_seconds(),
                    "run_s": (run.end_time - run.start_time).total_seconds(),
                    "total_s": total,
                }
            )
    return out


def _summary(runs: list[dict]) -> dict:
    return {k: round(median([r[k] for r in runs]), 2) for k in ("pickup_s", "run_s", "total_s")}


def _stop(proc: subprocess.Popen, sig: int) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, sig)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--json", dest="json_out", default=None)
    args = ap.parse_args()

    root = Path(tempfile.mkdtemp(prefix="lw-bench-scale-"))
    root.chmod(0o755)  # PostgreSQL runs as `postgres` under root: it must reach its folder
    pg_env = {**os.environ, "PG_PORT": str(_free_port()), "PG_DATA_DIR": str(root / "pg")}
    port = _free_port()
    pf_env = {
        **os.environ,
        "PREFECT_PORT": str(port),
        "PREFECT_SERVER_DIR": str(root / "server"),
        "LOOPWRIGHT_VENV": str(Path(sys.executable).parents[1]),
    }
    api = f"http://127.0.0.1:{port}/api"
    cfg = root / "loopwright.toml"
    crons = (
        "drift_check_cron",
        "curate_cron",
        "trigger_check_cron",
        "retrain_cron",
        "rollout_cron",
    )
    cfg.write_text(
        f'[home]\npath = "{root / "home"}"\n[schedule]\n'
        + "".join(f'{k} = "{NEVER}"\n' for k in crons)
        + 'compact_cron = ""\nsync_labels_interval_s = 86400\n'
    )
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("LOOPWRIGHT_", "PREFECT_"))},
        "PREFECT_API_URL": api,
        "PREFECT_HOME": str(root / "client"),
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "PREFECT_RUNNER_POLL_FREQUENCY": "1",
    }
    result: dict = {"machine": machine(), "runs_per_mode": args.runs}
    try:
        t0 = time.perf_counter()
        _script("postgres.sh", "start", pg_env)
        result["postgres_start_s"] = round(time.perf_counter() - t0, 2)
        pf_env["PREFECT_DB_URL"] = _script("postgres.sh", "url", pg_env)
        t0 = time.perf_counter()
        _script("prefect_server.sh", "start", pf_env)
        result["prefect_server_start_s"] = round(time.perf_counter() - t0, 2)

        serve = subprocess.Popen(
            [LOOPWRIGHT, "serve", "--config", str(cfg)], env=env, cwd=root,
            stdout=open(root / "serve.log", "w"), stderr=subprocess.STDOUT,  # noqa: SIM115
            start_new_session=True,
        )  # fmt: skip
        try:
            served = _runs(api, args.runs)
        finally:
            _stop(serve, signal.SIGTERM)
        t0 = time.perf_counter()
        subprocess.run(
            [LOOPWRIGHT, "deploy", "--pool", "bench", "--config", str(cfg)],
            env=env, cwd=root, check=True, capture_output=True, timeout=300,
        )  # fmt: skip
        result["deploy_s"] = round(time.perf_counter() - t0, 2)
        worker = subprocess.Popen(
            [LOOPWRIGHT, "worker", "--pool", "bench", "--poll-seconds", "1"], env=env, cwd=root,
            stdout=open(root / "worker.log", "w"), stderr=subprocess.STDOUT,  # noqa: SIM115
            start_new_session=True,
        )  # fmt: skip
        try:
            pooled = _runs(api, args.runs)
        finally:
            _stop(worker, signal.SIGINT)
    finally:
        _script("prefect_server.sh", "stop", pf_env)
        _script("postgres.sh", "stop", pg_env)
        shutil.rmtree(root, ignore_errors=True)
    result["serve"] = {"median": _summary(served), "runs": served}
    result["worker"] = {"median": _summary(pooled), "runs": pooled}
    result["ratio_total_worker_over_serve"] = round(
        result["worker"]["median"]["total_s"] / result["serve"]["median"]["total_s"], 2
    )
    emit(result, args.json_out)


if __name__ == "__main__":
    main()
