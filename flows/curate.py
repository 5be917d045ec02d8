"""`curate`: pick what humans should label and send it to Label Studio.

Order matters for idempotency: Label Studio is checked first (reachable, token accepted), so
a run that cannot reach it stores nothing; the selection is made, read-only (inside DuckDB by
`Queries.curation_picks`, never pulling candidates into Python), and a run with nothing to
pick nor to import stops there, the data home untouched. Then the project is found (or
made); the picks are rendered as a labeler will see them (a pick that cannot be shown fails the
run before anything is stored); they are written to the queue log (an append-only record of
what was picked and why), then every queued id that Label Studio does not hold yet is
imported. A run that dies between the last two steps is completed by the next run; Label
Studio never holds a request id twice.

Only rows a labeler can look at are ever picked: a logged `input` (shown with the task's
`render`) or, for tasks that can show one (`render_uri`, e.g. monitor-only tasks), an
`input_uri`. Rows with neither are left out and counted (`not_shown`), with what to log.

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


@task(name="check-labelstudio", **LS_RETRIES)
def check_labelstudio(rt: Runtime) -> None:
    """Reachable, token accepted: checked first, even when there is nothing to send, so that a
    wrong URL or token is said at once; reads nothing from and writes nothing to the home."""
    with rt.labelstudio() as adapter:
        adapter.check()


@task(name="connect-labelstudio", **LS_RETRIES)
def connect(rt: Runtime) -> int:
    """Check the server and the token, and find (or make) the project: before anything is
    stored, so that an unreachable server or a wrong token changes nothing."""
    with rt.labelstudio() as adapter:
        adapter.check()
        return labeling_project(rt, adapter)


def shown(task) -> str:
    """Which logged rows a labeler can be shown with this task (`curation_picks(shown=...)`)."""
    return "input_or_uri" if task.render_uri is not None else "input"


def pick(rt: Runtime, budget: int, seed: int) -> pa.Table:
    """What to send for labels, decided inside DuckDB over the latest `[curation] window_rows`
    champion rows (`Queries.curation_picks`, the benchmarked path: 10M rows in 1.01x of one
    hand-written query): `curation.sampling.select`'s rule, with queued and labeled ids
    excluded, and rows with nothing a labeler can see left out. The audit draw orders
    eligible rows by a seeded hash of the request id, so it is uniform and does not depend
    on row order, as `select`'s seeded permutation is."""
    cfg = rt.cfg.curation
    return rt.queries.curation_picks(
        cfg.window_rows,
        budget,
        cfg.strategy,
        audit_share=cfg.audit_share,
        seed=seed,
        shown=shown(rt.task),
    )


def shown_to_labeler(task, row: dict) -> str:
    """What Label Studio shows for a logged row: its input rendered by the task, else its
    `input_uri` (tasks that can show one); a ValueError naming the row says why not."""
    rid = row["request_id"]
    try:
        if row.get("input") is not None:
            return task.render(row["input"])
        if row.get("input_uri") and task.render_uri is not None:
            return task.render_uri(row["input_uri"])
    except Exception as exc:  # a task's render may raise anything on bytes it did not write
        raise ValueError(
            f"request_id {rid!r}: its logged input cannot be shown to a labeler ({exc}); "
            f"fix what is logged for it, or the task's render (task {task.name!r})"
        ) from None
    what = "input or input_uri" if task.render_uri is not None else "input"
    raise ValueError(f"request_id {rid!r} has no {what} logged: a labeler would see nothing")


def not_shown_note(task, n: int) -> str:
    """Why `n` candidate rows were left out, and what to log instead."""
    if not n:
        return ""
    logged = "input (bytes)" + (" or input_uri" if task.render_uri is not None else "")
    return (
        f"{n} candidate rows were not queued: nothing a labeler can see was logged for them "
        f"(no {logged}); log-predictions with an `input` column (or `input_uri`) makes future "
        "rows labelable"
    )


@task(name="select-samples", cache_policy=NO_CACHE)
def select_samples(rt: Runtime, budget: int, seed: int, picks: pa.Table | None = None) -> dict:
    """Queue the picks (made here unless given), after checking each can be shown."""
    picks = pick(rt, budget, seed) if picks is None else picks
    ids = picks.column("request_id").to_pylist()
    if ids:  # render before queueing: a pick nobody can see must not enter the queue
        for row in rt.queries.prediction_frame(
            ids, columns=["request_id", "input", "input_uri"]
        ).to_pylist():
            shown_to_labeler(rt.task, row)
    reasons = picks.column("reason").to_pylist()
    # under strategy "random" every pick is a uniform draw, as unbiased as the audit share
    queued_as = ["audit" if r == "random" else r for r in reasons]
    if ids:
        QueueLog(rt.home).append(ids, queued_as, scores=picks.column("score").to_pylist())
    meta = picks.schema.metadata or {}
    return {
        "candidates": int(meta.get(b"eligible", b"0")),
        "not_shown": int(meta.get(b"not_shown", b"0")),
        "selected": picks.num_rows,
        "uncertainty": queued_as.count("uncertainty"),
        "audit": queued_as.count("audit"),
    }


@task(name="send-to-labelstudio", **LS_RETRIES)
def send_to_labelstudio(rt: Runtime, project_id: int) -> dict:
    from curation.labeling import scores_text
    from curation.labelstudio import LSTask

    queued = rt.queries.queued(unlabeled_only=True)
    classes = rt.task.classes
    with rt.labelstudio() as adapter:
        present = adapter.existing_request_ids(project_id)
        todo = [r for r in queued.to_pylist() if r["request_id"] not in present]
        tasks, unshowable = [], []
        for r in todo:
            try:
                image = shown_to_labeler(rt.task, r)
            except ValueError as exc:  # queued by an older version: skipped, said below
                unshowable.append(str(exc))
                continue
            tasks.append(
                LSTask(
                    request_id=r["request_id"],
                    image=image,
                    pred_label=r["pred"],
                    score=float(r["confidence"]) if r["confidence"] is not None else None,
                    model_version=r["model_version"],
                    reason=r["reason"],
                    extra={"scores": scores_text(r["probs"], classes)},
                )
            )
        created = adapter.import_tasks(project_id, tasks) if tasks else {}
    return {
        "project_id": project_id,
        "imported": len(tasks),
        "already_present": len(queued) - len(todo),
        "unshowable_queued": len(unshowable),
        "unshowable_examples": unshowable[:3],
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
    check_labelstudio(rt)
    picks = pick(rt, budget, seed)
    note = not_shown_note(rt.task, int((picks.schema.metadata or {}).get(b"not_shown", b"0")))
    if picks.num_rows == 0 and rt.queries.pending_labels() == 0:
        # nothing to queue and nothing waiting to be imported: leave the home as it is
        eligible = int((picks.schema.metadata or {}).get(b"eligible", b"0"))
        result = {"candidates": eligible, "selected": 0, "imported": 0, "note": note}
        print(
            "nothing to send to Label Studio: no new candidate rows" + (f"; {note}" if note else "")
        )
        return result
    project_id = connect(rt)
    picked = select_samples(rt, budget, seed, picks)
    sent = send_to_labelstudio(rt, project_id)
    result = {**picked, **sent, "note": note}
    write_state(rt.home, "last_curate", {**result, "ts": datetime.now(UTC).isoformat()})
    md = (
        "# Curation\n\n| candidates | selected | uncertainty | audit | imported to Label Studio |\n"
        "|---|---|---|---|---|\n"
        f"| {picked['candidates']} | {picked['selected']} | {picked['uncertainty']} | {picked['audit']} "
        f"| {sent['imported']} |\n"
    )
    skipped = []
    if note:
        skipped.append(note)
    if sent["unshowable_queued"]:
        skipped.append(
            f"{sent['unshowable_queued']} queued samples cannot be shown to a labeler and were "
            "not imported (queued before loopwright checked this), e.g. "
            + "; ".join(sent["unshowable_examples"])
        )
    md += "".join(f"\n- {line}" for line in skipped)
    create_markdown_artifact(md, key="curate", description="Latest curation round")
    print(
        f"selected {picked['selected']} of {picked['candidates']} candidates "
        f"({picked['uncertainty']} uncertain, {picked['audit']} audit); "
        f"{sent['imported']} imported into Label Studio project {sent['project_id']}"
        + "".join(f"\n{line}" for line in skipped)
    )
    return result
