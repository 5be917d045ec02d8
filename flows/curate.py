"""`curate`: pick what humans should label and send it to Label Studio.

Order matters for idempotency: Label Studio is checked first (reachable, token accepted,
project there), so a run that cannot reach it stores nothing; the selection (made inside
DuckDB by `Queries.curation_picks`, never pulling candidates into Python) is then written
to the queue log (an append-only record of what was picked and why), then every queued id
that Label Studio does not hold yet is imported. A run that dies between the last two steps
is completed by the next run; Label Studio never holds a request id twice.

Retries: the adapter retries each call with back-off (`[labelstudio] retries`); the Label
Studio tasks of these flows are retried by Prefect on top, after 2 s then 5 s, but only when
the server was unreachable or failed (5xx): a refused token does not heal by waiting.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pyarrow as pa
from prefect import flow, task
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NO_CACHE

from flows.runtime import Runtime, open_runtime
from storage.queue_log import QueueLog
from storage.state import read_state, write_state


def labeling_project(rt: Runtime, adapter) -> int:
    """The Label Studio project of this data home, created on first use."""
    state = read_state(rt.home, "labelstudio") or {}
    title = state.get("project_title") or rt.cfg.labelstudio.project_title
    project_id = adapter.ensure_project(title, rt.task.labeling_config)
    if state.get("project_id") != project_id:
        write_state(rt.home, "labelstudio", {"project_id": project_id, "project_title": title})
    return project_id


def transient(task, task_run, state) -> bool:
    """Prefect retry condition: only an unreachable or failing (5xx) Label Studio is retried."""
    from curation.labelstudio import LabelStudioError

    exc = state.data
    return isinstance(exc, LabelStudioError) and (exc.status is None or exc.status >= 500)


LS_RETRIES = {
    "retries": 2,
    "retry_delay_seconds": [2, 5],
    "retry_condition_fn": transient,
    "cache_policy": NO_CACHE,
}


@task(name="connect-labelstudio", **LS_RETRIES)
def connect(rt: Runtime) -> int:
    """Check the server and the token, and find (or make) the project: before anything is
    stored, so that an unreachable server or a wrong token changes nothing."""
    with rt.labelstudio() as adapter:
        adapter.check()
        return labeling_project(rt, adapter)


def pick(rt: Runtime, budget: int, seed: int) -> pa.Table:
    """What to send for labels, decided inside DuckDB over the latest `[curation] window_rows`
    champion rows (`Queries.curation_picks`, the benchmarked path: 10M rows in 1.01x of one
    hand-written query): `curation.sampling.select`'s rule, with queued and labeled ids
    excluded. The audit draw orders eligible rows by a seeded hash of the request id, so it
    is uniform and does not depend on row order, as `select`'s seeded permutation is."""
    cfg = rt.cfg.curation
    return rt.queries.curation_picks(
        cfg.window_rows, budget, cfg.strategy, audit_share=cfg.audit_share, seed=seed
    )


@task(name="select-samples", cache_policy=NO_CACHE)
def select_samples(rt: Runtime, budget: int, seed: int) -> dict:
    picks = pick(rt, budget, seed)
    reasons = picks.column("reason").to_pylist()
    # under strategy "random" every pick is a uniform draw, as unbiased as the audit share
    queued_as = ["audit" if r == "random" else r for r in reasons]
    QueueLog(rt.home).append(
        picks.column("request_id").to_pylist(), queued_as, scores=picks.column("score").to_pylist()
    )
    return {
        "candidates": int((picks.schema.metadata or {}).get(b"eligible", b"0")),
        "selected": picks.num_rows,
        "uncertainty": queued_as.count("uncertainty"),
        "audit": queued_as.count("audit"),
    }


@task(name="send-to-labelstudio", **LS_RETRIES)
def send_to_labelstudio(rt: Runtime, project_id: int) -> dict:
    from curation.labelstudio import LSTask

    queued = rt.queries.queued(unlabeled_only=True)
    with rt.labelstudio() as adapter:
        present = adapter.existing_request_ids(project_id)
        todo = [r for r in queued.to_pylist() if r["request_id"] not in present]
        tasks = [
            LSTask(
                request_id=r["request_id"],
                image=rt.task.render(r["input"]),
                pred_label=r["pred"],
                score=float(r["confidence"]),
                model_version=r["model_version"],
                reason=r["reason"],
            )
            for r in todo
        ]
        created = adapter.import_tasks(project_id, tasks) if tasks else {}
    return {
        "project_id": project_id,
        "imported": len(tasks),
        "already_present": len(queued) - len(tasks),
        "task_ids": len(created),
    }


@flow(name="curate", log_prints=True)
def curate_flow(
    budget: int | None = None,
    seed: int | None = None,
    config_path: str | None = None,
    home: str | None = None,
) -> dict:
    """Select uncertain samples plus a random audit share and queue them in Label Studio."""
    rt = open_runtime(config_path, home)
    budget = rt.cfg.curation.budget_per_batch if budget is None else budget
    if budget < 0:
        raise ValueError(f"budget = {budget} must be zero or more")
    seed = int(datetime.now(UTC).timestamp()) if seed is None else seed
    project_id = connect(rt)
    picked = select_samples(rt, budget, seed)
    sent = send_to_labelstudio(rt, project_id)
    result = {**picked, **sent}
    write_state(rt.home, "last_curate", {**result, "ts": datetime.now(UTC).isoformat()})
    md = (
        "# Curation\n\n| candidates | selected | uncertainty | audit | imported to Label Studio |\n"
        "|---|---|---|---|---|\n"
        f"| {picked['candidates']} | {picked['selected']} | {picked['uncertainty']} | {picked['audit']} "
        f"| {sent['imported']} |\n"
    )
    create_markdown_artifact(md, key="curate", description="Latest curation round")
    print(
        f"selected {picked['selected']} of {picked['candidates']} candidates "
        f"({picked['uncertainty']} uncertain, {picked['audit']} audit); "
        f"{sent['imported']} imported into Label Studio project {sent['project_id']}"
    )
    return result
