"""`loopwright deploy`: the loop's deployments on a work pool, with their automations.

Why a work pool: `loopwright serve` runs every flow run from its own process on one
machine; a team that outgrows it runs a Prefect server (on PostgreSQL) and workers on other
machines that pick runs up from a pool. The deployments are `serve`'s own list
(`flows.serve.deployment_specs`: names, module-path entrypoints, `[schedule]`, absolute
`config_path`/`home`), applied to the server at PREFECT_API_URL with a work pool. A worker
imports the installed `flows` package (module-path entrypoints need no code storage), so a
worker machine needs loopwright installed and the data home reachable at the same path or URL.

Why a concurrency limit of one per deployment (Prefect's deployment concurrency limit,
collision strategy ENQUEUE), and not the storage layer's locks alone: the storage layer
already keeps *data* whole when two writers meet (parts written whole then renamed, request
ids and annotation ids deduplicated by readers, the registry's alias moves compare-and-swap
under a lock, compaction under a lock) — but its locks are `flock`s on the data home's disk,
which hold on one machine, not between machines or on object storage. Two workers running
`retrain` at once would each train a challenger; two `curate` runs would each pick the same
uncertain rows. Prefect's limit is kept by the server, so it holds whatever machine a worker
runs on: a second run of a stage waits (state AwaitingConcurrencySlot) until the first ends,
and nothing is dropped. The storage guarantees stay the backstop for what the server cannot
see (a CLI run beside a worker's, a retry after a crash); `retrain` and `retrain-periodic`
are two deployments, so they may overlap: there the registry's compare-and-swap keeps one
champion (a challenger trained on a stale champion is judged against the champion it read).

The automations are deployment triggers (flows/events.py): applying a deployment replaces
the automations it owns, so deploying twice leaves one of each.
"""

from __future__ import annotations

from dataclasses import dataclass

from flows.config import Config
from flows.events import deployment_triggers, home_key
from flows.serve import deployment_specs, run_parameters, to_deployment

#: runs of one deployment at a time, kept by the Prefect server across workers
STAGE_LIMIT = 1
TAGS = ("loopwright",)


@dataclass(frozen=True)
class Deployed:
    name: str  # "<flow>/<deployment>"
    id: str
    automations: list[str]


def check_pool_name(pool: str) -> str:
    pool = (pool or "").strip()
    if not pool or "/" in pool or "%" in pool:
        raise ValueError(f"--pool {pool!r} is not a work pool name: use e.g. --pool loopwright")
    return pool


def ensure_process_pool(pool: str) -> bool:
    """Create the process work pool when absent; True when created. A pool of another type
    (docker, kubernetes) is used as it is: its base job template decides how runs start."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.actions import WorkPoolCreate
    from prefect.exceptions import ObjectAlreadyExists, ObjectNotFound
    from prefect.workers.process import ProcessWorker

    with get_client(sync_client=True) as client:
        try:
            client.read_work_pool(pool)
            return False
        except ObjectNotFound:
            pass
        template = ProcessWorker.get_default_base_job_template()
        try:
            client.create_work_pool(
                WorkPoolCreate(name=pool, type="process", base_job_template=template)
            )
        except ObjectAlreadyExists:  # another `deploy` created it meanwhile
            return False
    return True


def pool_deployments(cfg: Config, config_path: str | None, home: str | None) -> list:
    """Prefect's RunnerDeployments for a work pool: `serve`'s list, each with its stage
    limit and its automations (for this data home)."""
    from prefect.client.schemas.objects import ConcurrencyLimitConfig

    params = run_parameters(config_path, home, cfg)
    key = home_key(params["home"])
    out = []
    for spec in deployment_specs(cfg.schedule):
        out.append(
            to_deployment(
                spec,
                params,
                concurrency_limit=ConcurrencyLimitConfig(
                    limit=STAGE_LIMIT, collision_strategy="ENQUEUE"
                ),
                triggers=deployment_triggers(spec.name, key),
                tags=[*TAGS, f"loopwright:{spec.name}"],
            )
        )
    return out


def deploy(cfg: Config, config_path: str | None, home: str | None, pool: str) -> list[Deployed]:
    """Register (create or update) every deployment on `pool` at PREFECT_API_URL."""
    pool = check_pool_name(pool)
    ensure_process_pool(pool)
    done = []
    for d in pool_deployments(cfg, config_path, home):
        deployment_id = d.apply(work_pool_name=pool)
        done.append(
            Deployed(f"{d.flow_name}/{d.name}", str(deployment_id), [t.name for t in d.triggers])
        )
    return done


def automations_of(deployment_ids: list[str]) -> dict[str, list[str]]:
    """deployment id -> names of the automations that run it, read back from the server."""
    from prefect.client.orchestration import get_client

    found: dict[str, list[str]] = {i: [] for i in deployment_ids}
    with get_client(sync_client=True) as client:
        for a in client.read_automations():
            for action in a.actions:
                target = str(getattr(action, "deployment_id", None))
                if action.type == "run-deployment" and target in found:
                    found[target].append(a.name)
    return found
