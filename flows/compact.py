"""`compact`: merge the logs' small part files into files of about `[storage]
compact_target_mb`, so that the readers' planning time and memory stop growing with the
number of appends.

A thin wrapper of `storage.compaction.compact_log`, one task per log (predictions, labels,
queue). What a reader or a writer running meanwhile may rely on, and what a crash leaves,
is in that module and in docs/contracts.md. No retries: the work is local and a second
run picks up whatever the first left (its lock makes overlapping runs a no-op).
"""

from __future__ import annotations

from datetime import UTC, datetime

from prefect import flow, task
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NO_CACHE

from flows.loop.engine import Loop
from flows.loop.open import open_loop
from storage.compaction import LOGS, compact_log
from storage.state import write_state


@task(name="compact-log", cache_policy=NO_CACHE)
def compact_one(loop: Loop, log: str) -> dict:
    return compact_log(loop.home, log, loop.cfg.storage).to_dict()


def markdown(result: dict) -> str:
    lines = [
        "# Compaction",
        "",
        "| log | files before | files after | parts merged | merged files | rows | MB in → out "
        "| deleted | waiting deletion |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for log, r in result["logs"].items():
        note = " (another run held the lock)" if r["locked"] else ""
        lines.append(
            f"| {log}{note} | {r['files_before']} | {r['files_after']} | {r['parts_merged']} "
            f"| {r['groups']} | {r['rows_out']} | {r['bytes_in'] / 1e6:.1f} → "
            f"{r['bytes_out'] / 1e6:.1f} | {r['deleted']} | {r['waiting_deletion']} |"
        )
    for log, r in result["logs"].items():
        lines += [f"- {log}: skipped: {why}" for why in r["skipped"]]
    return "\n".join(lines) + "\n"


@flow(name="compact", log_prints=True)
def compact_flow(
    config_path: str | None = None,
    home: str | None = None,
    logs: list[str] | None = None,
) -> dict:
    """Merge small log parts into big files; delete the parts merged more than
    `[storage] compact_grace_s` ago."""
    loop = open_loop(config_path, home)
    chosen = list(logs) if logs else list(LOGS)
    unknown = [log for log in chosen if log not in LOGS]
    if unknown:
        raise ValueError(f"logs {unknown} cannot be compacted: choose among {list(LOGS)}")
    result = {
        "logs": {log: compact_one(loop, log) for log in chosen},
        "ts": datetime.now(UTC).isoformat(),
    }
    write_state(loop.home, "last_compact", result)
    md = markdown(result)
    create_markdown_artifact(md, key="compact", description="Latest compaction")
    for log, r in result["logs"].items():
        print(
            f"{log}: {r['files_before']} -> {r['files_after']} files "
            f"({r['parts_merged']} parts merged into {r['groups']}, {r['deleted']} deleted, "
            f"{r['waiting_deletion']} waiting {loop.cfg.storage.compact_grace_s} s)"
        )
    return result
