"""The `curate` stage: pick what people should label and send it to the labeler.

Order matters for idempotency: the labeler is checked first (reachable, token accepted), so
a run that cannot reach it stores nothing; the selection is made, read-only (ranked inside
DuckDB by `Queries.ranked_candidates`, never pulling candidates into Python, then cut to the
budget by `curation.sampling.pick`), and a run with nothing to pick nor to import stops
there, the data home untouched. Then the project is found (or made); the picks are rendered
as a labeler will see them (a pick that cannot be shown fails the run before anything is
stored); they are written to the queue log (an append-only record of what was picked and
why), then every queued id that the labeler does not hold yet is imported. A run that dies
between the last two steps is completed by the next run; Label Studio never holds a request
id twice.

Only rows a labeler can look at are ever picked: a logged `input` (shown with the task's
`render`) or, for tasks that can show one (`render_uri`, e.g. monitor-only tasks), an
`input_uri`. Rows with neither are left out and counted (`not_shown`), with what to log.

Retries: one layer, the adapter's (each call, with back-off, `[labelstudio] retries`).
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import pyarrow as pa

from curation.pacing import Pace, paced_budget
from curation.sampling import pick, pool_args, quota_count, with_quota
from storage.queue_log import QueueLog
from storage.state import read_state, write_state

if TYPE_CHECKING:
    from flows.loop.parts import LoopParts as Loop


def labeling_project(loop: Loop, adapter) -> int:
    """The labeler's project of this data home, created on first use."""
    state = read_state(loop.home, "labelstudio") or {}
    title = state.get("project_title") or loop.cfg.labelstudio.project_title
    project_id = adapter.ensure_project(title, loop.task.labeling_config)
    if state.get("project_id") != project_id:
        write_state(loop.home, "labelstudio", {"project_id": project_id, "project_title": title})
    return project_id


def check_labelstudio(loop: Loop) -> None:
    """Reachable, token accepted: checked first, even when there is nothing to send, so that a
    wrong URL or token is said at once; reads nothing from and writes nothing to the home."""
    with loop.labelstudio() as adapter:
        adapter.check()


def connect(loop: Loop) -> int:
    """Check the server and the token, and find (or make) the project: before anything is
    stored, so that an unreachable server or a wrong token changes nothing."""
    with loop.labelstudio() as adapter:
        adapter.check()
        return labeling_project(loop, adapter)


def shown(task) -> str:
    """Which logged rows a labeler can be shown with this task (`ranked_candidates(shown=...)`)."""
    return "input_or_uri" if task.render_uri is not None else "input"


def picks_for(loop: Loop, budget: int, seed: int, audit_only: bool = False) -> pa.Table:
    """What to send for labels, over the latest `[curation] window_rows` champion rows, with
    queued and labeled ids excluded and rows with nothing a labeler can see left out: ranked
    inside DuckDB (the benchmarked path: 10M rows in 1.01x of one hand-written query), cut
    by `curation.sampling.pick`. The audit draw orders eligible rows by a seeded hash of the
    request id, so it is uniform and does not depend on row order. `audit_only`: every pick
    is an audit pick (a quiet batch, `curation.pacing`)."""
    r = loop.cfg.curation
    if audit_only:
        r = replace(r, audit_share=1.0)
    ranked = loop.queries.ranked_candidates(
        r.window_rows, r.strategy, budget, seed, r.audit_share, shown(loop.task),
        **pool_args(r, budget),
    )  # fmt: skip
    picks = pick(ranked, budget, r)
    if audit_only or r.strategy == "random":
        return picks
    return cohort_quotas(loop, picks)


def cohort_quotas(loop: Loop, picks: pa.Table) -> pa.Table:
    """Each `[[cohort]]` with a `quota` gets that share of the batch's uncertainty picks:
    its most uncertain eligible rows replace the batch's least uncertain picks (reason
    `cohort:<name>`; audit picks are never replaced), cohorts in config order."""
    r = loop.cfg.curation
    n_unc = picks.column("reason").to_pylist().count("uncertainty")
    for cohort in loop.cfg.cohorts:
        n = quota_count(cohort.quota, n_unc)
        if not n:
            continue
        taken = picks.num_rows
        rows = loop.queries.cohort_top(
            r.window_rows, r.strategy, n + taken, cohort.where, shown(loop.task)
        )
        picks = with_quota(picks, rows, n, cohort.slice_key)
    return picks


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


def _meta(picks: pa.Table, key: bytes) -> int:
    return int((picks.schema.metadata or {}).get(key, b"0"))


def select_samples(loop: Loop, budget: int, seed: int, picks: pa.Table | None = None) -> dict:
    """Queue the picks (made here unless given), after checking each can be shown."""
    picks = picks_for(loop, budget, seed) if picks is None else picks
    ids = picks.column("request_id").to_pylist()
    if ids:  # render before queueing: a pick nobody can see must not enter the queue
        for row in loop.queries.prediction_frame(
            ids, columns=["request_id", "input", "input_uri"]
        ).to_pylist():
            shown_to_labeler(loop.task, row)
    # under strategy "random" every pick is a uniform draw: queued as `random`, read as
    # unbiased by the accuracy estimates like `audit`, but trained on (only the audit share
    # goes to the eval set, `[retrain] audit_to_eval`)
    queued_as = picks.column("reason").to_pylist()
    if ids:
        QueueLog(loop.home, loop.queries).append(
            ids, queued_as, scores=picks.column("score").to_pylist()
        )
    return {
        "candidates": _meta(picks, b"eligible"),
        "not_shown": _meta(picks, b"not_shown"),
        "selected": picks.num_rows,
        "uncertainty": queued_as.count("uncertainty"),
        "audit": queued_as.count("audit"),
        "random": queued_as.count("random"),
        **{
            reason: queued_as.count(reason)
            for reason in sorted({q for q in queued_as if q.startswith("cohort:")})
        },
    }


def send_to_labelstudio(loop: Loop, project_id: int) -> dict:
    """Import every queued, unlabeled id the labeler does not hold yet."""
    from curation.labeling import queue_scores, scores_text
    from curation.labelstudio import LSTask

    queued = loop.queries.queued(unlabeled_only=True)
    classes = loop.task.classes
    with loop.labelstudio() as adapter:
        present = adapter.existing_request_ids(project_id)
        todo = [r for r in queued.to_pylist() if r["request_id"] not in present]
        # the pre-annotation score orders the labelers' queue (lowest first): curation's
        order = dict(zip((r["request_id"] for r in todo), queue_scores(todo), strict=True))
        tasks, unshowable = [], []
        for r in todo:
            try:
                image = shown_to_labeler(loop.task, r)
            except ValueError as exc:  # queued by an older version: skipped, said below
                unshowable.append(str(exc))
                continue
            tasks.append(
                LSTask(
                    request_id=r["request_id"],
                    image=image,
                    pred_label=r["pred"],
                    score=order[r["request_id"]],
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


def batch_pace(loop: Loop) -> Pace:
    """`[curation] pace`: this batch's budget from the last drift verdict (about the serving
    champion), its label-free estimate and the trigger episode (`curation.pacing`)."""
    r = loop.cfg.curation
    champion = loop.registry.get("champion")
    verdict = read_state(loop.home, "last_drift") or {}
    about = verdict.get("status") in {"ok", "drift"} and verdict.get("champion") == champion
    est = verdict.get("estimate") or {}
    low = est.get("low") if est.get("low") is not None else est.get("accuracy")
    episode = read_state(loop.home, "trigger_episode") or {}
    return paced_budget(
        r.budget_per_batch,
        r.audit_count(r.budget_per_batch),
        drift=bool(verdict.get("dataset_drift")) if about and champion else None,
        estimate_low=None if low is None else float(low),
        threshold=loop.cfg.trigger.accuracy_threshold,
        episode_open=bool(episode.get("open")),
    )


def clock_seed() -> int:
    """The audit draw's seed when a person runs `curate` without one (the CLI's default).
    Drivers of the loop (`run_round`) always pass theirs, so their draws replay."""
    return int(datetime.now(UTC).timestamp())


def curate(loop: Loop, budget: int | None = None, seed: int | None = None) -> dict:
    """Check the labeler, pick, and (when there is something to send) queue and import.

    Returns the flow's result; when nothing is picked nor waiting, `{candidates, selected: 0,
    imported: 0, note}` and the home is left as it was.
    """
    pace = None
    if (
        budget is None
    ):  # the configured budget, paced when `[curation] pace` (an explicit one is not)
        budget = loop.cfg.curation.budget_per_batch
        if loop.cfg.curation.pace:
            pace = batch_pace(loop)
            budget = pace.budget
    if budget < 0:
        raise ValueError(f"budget = {budget} must be zero or more")
    seed = clock_seed() if seed is None else seed
    loop.steps("check-labelstudio", check_labelstudio, loop)
    audit_only = pace is not None and pace.audit_only
    picks = picks_for(loop, budget, seed, audit_only)
    paced = {} if pace is None else {"pace": pace.reason}
    note = not_shown_note(loop.task, _meta(picks, b"not_shown"))
    if picks.num_rows == 0 and loop.queries.pending_labels() == 0:
        # nothing to queue and nothing waiting to be imported: leave the home as it is
        return {"candidates": _meta(picks, b"eligible"), "selected": 0, "imported": 0,
                "note": note, **paced}  # fmt: skip
    project_id = loop.steps("connect-labelstudio", connect, loop)
    picked = loop.steps("select-samples", select_samples, loop, budget, seed, picks)
    sent = loop.steps("send-to-labelstudio", send_to_labelstudio, loop, project_id)
    result = {**picked, **sent, "note": note, **paced}
    write_state(loop.home, "last_curate", {**result, "ts": datetime.now(UTC).isoformat()})
    return result
