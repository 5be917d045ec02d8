"""`loopwright serve` for real: a Prefect server, the served deployments, each run once.

Why: every run of a served deployment is a new process that loads its flow from the
deployment's entrypoint. With file-path entrypoints Prefect put `flows/` first on
`sys.path`, `flows/retrain.py` shadowed the `retrain` package and every run failed while
loading its flow (issue #8.1); no test ran a served deployment, so nobody saw it. Here each
deployment is triggered as a person would (`prefect deployment run`'s API call) and must
finish `Completed`, on a data home with real seed digits and logged predictions, against a
real Label Studio server.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time

import pytest

from tests.reliability.conftest import log_digits, seed_home, write_config
from tests.support import LOOPWRIGHT, REPO, clean_env

pytestmark = [pytest.mark.integration, pytest.mark.slow]

BASE = ["drift-check", "curate", "sync-labels", "retrain", "retrain-periodic"]


def _stop(proc: subprocess.Popen) -> None:
    """SIGTERM stops `serve` cleanly (FIELD-NOTES); its run processes go with its group."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)


def _when(schedule) -> str | float | None:
    """A deployment schedule as its cron string or its interval in seconds."""
    interval = getattr(schedule, "interval", None)
    return interval.total_seconds() if interval is not None else getattr(schedule, "cron", None)


def _served(api_url: str, names: list[str], timeout: float = 120) -> dict[str, dict]:
    """name -> deployment (entrypoint, parameters), once `serve` registered all of them."""
    from prefect.client.orchestration import get_client
    from prefect.settings import PREFECT_API_URL, temporary_settings

    deadline = time.monotonic() + timeout
    with temporary_settings(updates={PREFECT_API_URL: api_url}), get_client(sync_client=True) as c:
        while True:
            found = {}
            for d in c.read_deployments():
                found[d.name] = {
                    "entrypoint": d.entrypoint,
                    "parameters": d.parameters,
                    "schedules": [_when(s.schedule) for s in d.schedules],
                }
            if set(names) <= set(found) or time.monotonic() > deadline:
                return found
            time.sleep(1)


def _run(api_url: str, flow_and_deployment: str, timeout: float = 300):
    """Start one run of a deployment, as `prefect deployment run` does, and wait for its end."""
    from prefect.deployments import run_deployment
    from prefect.settings import PREFECT_API_URL, temporary_settings

    with temporary_settings(updates={PREFECT_API_URL: api_url}):
        return run_deployment(flow_and_deployment, timeout=timeout, poll_interval=2)


#: schedules that do not come due while the test runs: only the runs it starts happen
NEVER = "0 0 1 1 *"


def _schedule_toml() -> str:
    from dataclasses import fields

    from flows.config import ScheduleConfig

    lines = [f'{f.name} = "{NEVER}"' for f in fields(ScheduleConfig) if f.name.endswith("_cron")]
    return "[schedule]\n" + "\n".join(lines) + "\nsync_labels_interval_s = 86400\n"


def test_every_served_deployment_runs_to_completed(tmp_path, prefect_server, labelstudio):
    ls_url, token = labelstudio
    cfg = write_config(
        tmp_path / "loopwright.toml", tmp_path / "home", ls_url=ls_url, extra=_schedule_toml()
    )
    seed_home(cfg, rows=300)  # clean labeled digits: `retrain` bootstraps the first champion
    log_digits(cfg, 150)  # production traffic for drift-check and curate
    env = clean_env(
        PREFECT_API_URL=prefect_server,
        PREFECT_HOME=str(tmp_path / "prefect-client"),
        PREFECT_SERVER_ANALYTICS_ENABLED="false",
        LOOPWRIGHT_LABELSTUDIO_TOKEN=token,
        PYTHONPATH=str(REPO),  # this checkout's code, in serve and in every run it starts
        PREFECT_RUNNER_POLL_FREQUENCY="2",  # pick a started run up in 2 s, not 10
    )
    # relative --config from the config's folder: the deployments must pin absolute paths
    serve = subprocess.Popen(
        [LOOPWRIGHT, "serve", "--config", "loopwright.toml"],
        cwd=tmp_path,
        env=env,
        stdout=open(tmp_path / "serve.log", "w"),  # noqa: SIM115 (closed with the process)
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    from flows.config import load_config
    from flows.serve import deployments

    expected = {d.name for d in deployments(load_config(cfg, env={}), str(cfg), None)}
    assert set(BASE) <= expected  # the contract's names (and compact, when installed)
    try:
        served = _served(prefect_server, sorted(expected))
        log = (tmp_path / "serve.log").read_text
        assert set(served) == expected, f"served {sorted(served)}; serve said:\n{log()[-3000:]}"
        # retrain first (bootstrap: no champion yet), then the stages that need a champion
        order = ["retrain", "drift-check", "curate", "sync-labels", "retrain-periodic"]
        order += [n for n in served if n not in order]  # compact, when installed
        flow_of = {"retrain-periodic": "retrain"}
        states = {}
        for name in order:
            run = _run(prefect_server, f"{flow_of.get(name, name)}/{name}")
            states[name] = f"{run.state.type.value}: {run.state.message}" if run.state else None
    finally:
        _stop(serve)
    failed = {n: s for n, s in states.items() if not str(s).startswith("COMPLETED")}
    assert not failed, f"runs not Completed: {failed}\nserve said:\n{log()[-4000:]}"
    for name, d in served.items():  # flows imported by module, paths pinned absolute
        assert d["entrypoint"].startswith("flows.") and ".py" not in d["entrypoint"], d
        assert d["parameters"]["config_path"] == str(tmp_path / "loopwright.toml"), d
        assert d["parameters"]["home"] == str(tmp_path / "home"), name
        assert d["schedules"] in ([NEVER], [86400.0]), d  # from [schedule]

    home = tmp_path / "home"
    registry = json.loads((home / "registry.json").read_text())
    assert registry["aliases"]["champion"] == "v0001"  # bootstrapped by the `retrain` run
    assert registry["aliases"]["challenger"] == "v0002"  # trained by `retrain-periodic`
    drift = json.loads((home / "state" / "last_drift.json").read_text())
    assert drift["champion"] == "v0001" and drift["status"] in {"ok", "drift"}
    curate = json.loads((home / "state" / "last_curate.json").read_text())
    assert curate["selected"] == 20 and curate["imported"] == 20
    sync = json.loads((home / "state" / "last_sync.json").read_text())
    assert sync["pending"] == 20 and sync["new_labels"] == 0
    assert serve.returncode is not None  # SIGTERM stopped serve
