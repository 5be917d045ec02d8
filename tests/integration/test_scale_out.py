"""The loop on a Prefect server backed by PostgreSQL, with deployments on a process work pool
run by two workers, and the automations that events fire (issue 14, items 1-3).

One PostgreSQL cluster (scripts/postgres.sh), one Prefect server on it
(scripts/prefect_server.sh with PREFECT_DB_URL), `loopwright deploy` and two
`loopwright worker`s are shared by the module: each is started and stopped here, and the
workers are stopped (SIGINT) before the server, as FIELD-NOTES says.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
import urllib.request
from pathlib import Path

import pytest

from tests.reliability.conftest import log_digits, seed_home
from tests.support import LOOPWRIGHT, REPO, clean_env, free_port, write_config

pytestmark = [pytest.mark.integration, pytest.mark.slow]

POOL = "lw-test"
NEVER = "0 0 1 1 *"  # schedules that do not come due while the tests run


def _script(name: str, action: str, env: dict[str, str]) -> str:
    proc = subprocess.run(
        [str(REPO / "scripts" / name), action], env=env, capture_output=True, text=True,
        timeout=240,
    )  # fmt: skip
    if proc.returncode != 0:
        raise RuntimeError(f"{name} {action}: {proc.stdout[-2000:]}{proc.stderr[-2000:]}")
    return proc.stdout.strip()


def _stop_workers(procs: list[subprocess.Popen]) -> None:
    """SIGINT to all, then wait: a worker ignores SIGTERM while it retries a server
    (FIELD-NOTES)."""
    for proc in procs:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGINT)
    for proc in procs:
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)


class Stack:
    """The servers, the deployed loop and the env its child processes get."""

    def __init__(self, root: Path, api: str, pg_env: dict[str, str], cfg: Path, env: dict):
        self.root, self.api, self.pg_env, self.cfg, self.env = root, api, pg_env, cfg, env
        self.home = root / "home"
        self.deploy_out: list[dict] = []

    def client(self):
        from prefect.client.orchestration import get_client
        from prefect.settings import PREFECT_API_URL, temporary_settings

        class _Ctx:
            def __enter__(ctx):
                ctx.settings = temporary_settings(updates={PREFECT_API_URL: self.api})
                ctx.settings.__enter__()
                ctx.client = get_client(sync_client=True)
                return ctx.client.__enter__()

            def __exit__(ctx, *exc):
                ctx.client.__exit__(*exc)
                ctx.settings.__exit__(*exc)

        return _Ctx()

    def psql(self, sql: str) -> str:
        port = self.pg_env["PG_PORT"]
        psql = sorted(Path("/usr/lib/postgresql").glob("*/bin/psql"))[-1]
        return subprocess.run(
            [str(psql), "-h", "127.0.0.1", "-p", port, "-U", "postgres", "-d", "prefect",
             "-tAc", sql], capture_output=True, text=True, check=True, timeout=30,
        ).stdout.strip()  # fmt: skip


@pytest.fixture(scope="module")
def stack():
    # as root, PostgreSQL runs as `postgres`: its folders must be reachable by it (not
    # pytest's tmp dirs, which are mode 700)
    root = Path(tempfile.mkdtemp(prefix="lw-scale-"))
    root.chmod(0o755)
    pg_env = {**os.environ, "PG_PORT": str(free_port()), "PG_DATA_DIR": str(root / "pg")}
    procs: list[subprocess.Popen] = []
    prefect_env = None
    try:
        _script("postgres.sh", "start", pg_env)
        port = free_port()
        prefect_env = {
            **clean_env(),
            "PREFECT_PORT": str(port),
            "PREFECT_SERVER_DIR": str(root / "prefect-server"),
            "PREFECT_DB_URL": _script("postgres.sh", "url", pg_env),
            "LOOPWRIGHT_VENV": str(Path(LOOPWRIGHT).parents[1]),
            # a run that found its stage's slot taken retries in 2 s (default 30)
            "PREFECT_SERVER_DEPLOYMENTS_CONCURRENCY_SLOT_WAIT_SECONDS": "2",
        }
        _script("prefect_server.sh", "start", prefect_env)
        api = f"http://127.0.0.1:{port}/api"
        cfg = write_config(
            root / "loopwright.toml",
            root / "home",
            extra="[schedule]\n"
            + "".join(
                f'{k} = "{NEVER}"\n'
                for k in ("drift_check_cron", "curate_cron", "trigger_check_cron")
                + ("retrain_cron", "compact_cron", "rollout_cron")
            )
            + "sync_labels_interval_s = 86400\n",
            storage={"compact_min_parts": 2, "compact_min_age_s": 0, "compact_grace_s": 0},
        )
        env = clean_env(
            PREFECT_API_URL=api,
            PREFECT_HOME=str(root / "prefect-client"),
            PREFECT_SERVER_ANALYTICS_ENABLED="false",
            PYTHONPATH=str(REPO),
        )
        s = Stack(root, api, pg_env, cfg, env)
        # workers first (a worker makes its process pool when absent): they start while
        # `deploy` runs
        for name in ("w1", "w2"):
            log = open(root / f"worker-{name}.log", "w")  # noqa: SIM115 (closed with the process)
            procs.append(
                subprocess.Popen(
                    [LOOPWRIGHT, "worker", "--pool", POOL, "--name", name, "--poll-seconds", "1"],
                    env=env, cwd=root, stdout=log, stderr=subprocess.STDOUT,
                    start_new_session=True,
                )
            )  # fmt: skip
        s.workers = procs
        deployed = subprocess.run(
            [LOOPWRIGHT, "deploy", "--pool", POOL, "--config", str(cfg), "--json"],
            env=env, cwd=root, capture_output=True, text=True, timeout=180,
        )  # fmt: skip
        assert deployed.returncode == 0, deployed.stdout + deployed.stderr
        s.deploy_out = json.loads(deployed.stdout)
        yield s
    finally:
        _stop_workers(procs)
        if prefect_env is not None:
            _script("prefect_server.sh", "stop", prefect_env)
        _script("postgres.sh", "stop", pg_env)
        shutil.rmtree(root, ignore_errors=True)


def _wait_workers_online(s: Stack, n: int, timeout: float = 90) -> list[str]:
    from prefect.client.schemas.filters import WorkerFilter, WorkerFilterStatus

    deadline = time.monotonic() + timeout
    while True:
        with s.client() as c:
            names = sorted(
                w.name
                for w in c.read_workers_for_work_pool(
                    POOL, worker_filter=WorkerFilter(status=WorkerFilterStatus(any_=["ONLINE"]))
                )
            )
        if len(names) >= n or time.monotonic() > deadline:
            return names
        time.sleep(1)


def _wait_final(s: Stack, run_ids: list, timeout: float = 180) -> list:
    deadline = time.monotonic() + timeout
    while True:
        with s.client() as c:
            runs = [c.read_flow_run(i) for i in run_ids]
        if all(r.state and r.state.is_final() for r in runs) or time.monotonic() > deadline:
            return runs
        time.sleep(1)


def _start(s: Stack, name: str):
    with s.client() as c:
        d = c.read_deployment_by_name(name)
        return c.create_flow_run_from_deployment(d.id).id


def _automation_runs(s: Stack, deployment: str, timeout: float = 60) -> list:
    """Flow runs of `deployment` created by an automation, once there is one."""
    from prefect.client.schemas.filters import DeploymentFilter, DeploymentFilterName

    deadline = time.monotonic() + timeout
    while True:
        with s.client() as c:
            runs = c.read_flow_runs(
                deployment_filter=DeploymentFilter(name=DeploymentFilterName(any_=[deployment]))
            )
        found = [r for r in runs if r.created_by and r.created_by.type == "AUTOMATION"]
        if found or time.monotonic() > deadline:
            return found
        time.sleep(0.5)


def _cancel(s: Stack, runs: list) -> None:
    """Runs started only to see them started: a worker need not train a model here."""
    from prefect.states import Cancelled

    with s.client() as c:
        for r in runs:
            c.set_flow_run_state(r.id, Cancelled(message="test over"), force=True)


def test_deploy_registers_the_contract_names_once_with_their_automations(stack):
    names = {d["name"] for d in stack.deploy_out}
    assert {
        "drift-check/drift-check",
        "curate/curate",
        "sync-labels/sync-labels",
        "retrain/retrain",
        "retrain/retrain-periodic",
        "compact/compact",
    } <= names
    rollout_installed = importlib.util.find_spec("flows.rollout") is not None
    assert ("rollout/rollout" in names) == rollout_installed
    # a second deploy (the function the command calls, in this process: no second start-up)
    # updates: the same deployments, one automation per reaction
    from flows.config import load_config
    from flows.deploy import deploy

    with stack.client() as c:
        again = deploy(load_config(stack.cfg, env={}), str(stack.cfg), None, POOL)
        assert [d.id for d in again] == [d["id"] for d in stack.deploy_out]
        automations = sorted(a.name for a in c.read_automations())
        deployment = c.read_deployment_by_name("compact/compact")
    assert automations == [
        "loopwright: loopwright.drift.detected -> retrain",
        "loopwright: loopwright.labels.annotated -> sync-labels",
    ]
    assert deployment.work_pool_name == POOL
    assert deployment.entrypoint == "flows.compact.compact_flow"
    assert deployment.global_concurrency_limit.limit == 1
    assert deployment.parameters["home"] == str(stack.home)


def test_a_flow_run_through_a_worker_on_postgres_completes(stack):
    assert _wait_workers_online(stack, 2) == ["w1", "w2"]
    run_id = _start(stack, "drift-check/drift-check")
    (run,) = _wait_final(stack, [run_id])
    assert run.state.is_completed(), run.state
    assert run.work_pool_name == POOL
    # the run lives in PostgreSQL, not in a SQLite file
    assert stack.psql(f"SELECT state_type FROM flow_run WHERE id = '{run_id}'") == "COMPLETED"
    assert not list((stack.root / "prefect-server").glob("*.db"))
    drift = json.loads((stack.home / "state" / "last_drift.json").read_text())
    assert drift["status"] == "waiting"  # no champion in this home: the check says so


def test_two_workers_running_one_stage_at_once_lose_and_duplicate_nothing(stack):
    """Two `compact` runs started together on a pool with two idle workers: the stage's
    limit makes the second wait for the first (no overlap), and the prediction log keeps
    every row exactly once."""
    seed_home(stack.cfg, rows=60)
    ids = []
    for part in range(4):  # four small parts: something to merge
        ids += log_digits(stack.cfg, 40, prefix=f"c{part}")
    before = _rows_in_files(stack.home / "predictions")
    assert before == sorted(ids) and len(_parts(stack.home)) == 4
    assert _wait_workers_online(stack, 2) == ["w1", "w2"]
    runs = _wait_final(stack, [_start(stack, "compact/compact") for _ in range(2)])
    assert all(r.state.is_completed() for r in runs), [r.state for r in runs]
    first, second = sorted(runs, key=lambda r: r.start_time)
    assert first.end_time <= second.start_time, "the stage's runs overlapped"
    with stack.client() as c:
        waited = [s.name for s in c.read_flow_run_states(second.id)]
    assert "AwaitingConcurrencySlot" in waited, waited
    # every visible file read raw, no reader's deduplication: 0 lost, 0 duplicated
    assert _rows_in_files(stack.home / "predictions") == before
    assert len(_parts(stack.home)) == 1, "the first run merged the four parts into one"


def _parts(home: Path) -> list[Path]:
    return [p for p in (home / "predictions").rglob("*.parquet") if not p.name.startswith(".")]


def _rows_in_files(folder: Path) -> list[str]:
    import pyarrow.parquet as pq

    ids: list[str] = []
    for part in _parts(folder.parent):
        ids += pq.read_table(part, columns=["request_id"]).column("request_id").to_pylist()
    return sorted(ids)


def _emit_in_child(stack: Stack, code: str) -> None:
    """Send an event from another process, as a drift-check run or the receiver does."""
    proc = subprocess.run(
        [str(Path(LOOPWRIGHT).parent / "python"), "-c", code],
        env=stack.env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]


def test_a_drift_event_runs_retrain_through_its_automation(stack):
    assert _automation_runs(stack, "retrain", timeout=0) == []
    _emit_in_child(
        stack,
        "from flows.events import drift_event, emit; "
        f"v = {{'status': 'drift', 'drift_share': 0.75, 'champion': 'v0001'}}; "
        f"assert emit(drift_event(v, {str(stack.home)!r}))",
    )
    runs = _automation_runs(stack, "retrain")
    _cancel(stack, runs)
    assert len(runs) == 1
    assert runs[0].parameters["home"] == str(stack.home)
    # an event about another data home starts nothing here
    _emit_in_child(
        stack,
        "from flows.events import drift_event, emit; "
        "assert emit(drift_event({'status': 'drift'}, '/elsewhere'))",
    )
    time.sleep(3)
    assert len(_automation_runs(stack, "retrain", timeout=0)) == 1


def _post(url: str, body: dict, headers: dict | None = None) -> tuple[int, dict]:
    req = urllib.request.Request(
        url, data=json.dumps(body).encode(), method="POST",
        headers={"Content-Type": "application/json", **(headers or {})},
    )  # fmt: skip
    try:
        with urllib.request.urlopen(req, timeout=10) as r:  # noqa: S310 (local URL)
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def test_a_labelstudio_webhook_runs_sync_labels(stack):
    port = free_port()
    env = {**stack.env, "LOOPWRIGHT_WEBHOOK_TOKEN": "hook-secret"}
    receiver = subprocess.Popen(
        [LOOPWRIGHT, "webhook-receiver", "--port", str(port), "--config", str(stack.cfg)],
        env=env, cwd=stack.root, stdout=open(stack.root / "receiver.log", "w"),  # noqa: SIM115
        stderr=subprocess.STDOUT, start_new_session=True,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    body = {  # Label Studio's ANNOTATION_CREATED payload, trimmed to what the receiver reads
        "action": "ANNOTATION_CREATED",
        "project": {"id": 3, "title": "loopwright"},
        "task": {"id": 41, "data": {"request_id": "c0-00001"}},
        "annotation": {"id": 77, "result": [], "task": 41},
    }
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"{base}/healthz", timeout=2) as r:  # noqa: S310
                    health = json.loads(r.read())
                break
            except OSError:
                assert receiver.poll() is None, (stack.root / "receiver.log").read_text()
                assert time.monotonic() < deadline, "receiver did not answer in 60 s"
                time.sleep(0.5)
        assert health["home"] == str(stack.home)
        assert _post(f"{base}/webhooks/labelstudio", body)[0] == 401  # no token
        status, out = _post(
            f"{base}/webhooks/labelstudio", body, {"Authorization": "Bearer hook-secret"}
        )
        assert (status, out["emitted"]) == (200, "loopwright.labels.annotated"), out
        ignored = _post(
            f"{base}/webhooks/labelstudio",
            {"action": "PROJECT_UPDATED", "project": {"id": 3}},
            {"Authorization": "Bearer hook-secret"},
        )
        assert ignored == (200, {"emitted": None, "action": "PROJECT_UPDATED"})
        runs = _automation_runs(stack, "sync-labels")
        _cancel(stack, runs)
        assert len(runs) == 1 and runs[0].parameters["home"] == str(stack.home)
    finally:
        receiver.send_signal(signal.SIGINT)
        try:
            receiver.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(receiver.pid, signal.SIGKILL)
