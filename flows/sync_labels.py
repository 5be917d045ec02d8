"""`sync-labels`: pull finished annotations from Label Studio into the label log.

The work is the engine's `sync` stage (`flows/loop/sync.py`; what becomes a label is
`curation.label_sync`'s rule), as tasks connect-labelstudio and pull-annotations. Every
valid annotation is written; when some need a person, the run fails with one line per
problem (`AnnotationProblems`), after the artifact says what was written.
"""

from __future__ import annotations

from prefect import flow
from prefect.artifacts import create_markdown_artifact

from curation.label_sync import MAX_LISTED, AnnotationProblems
from flows.loop.sync import summary
from flows.steps import open_flow_loop

__all__ = ["AnnotationProblems", "sync_labels_flow"]


def _report(result: dict, problems: list[str]) -> None:
    text = summary(result)
    create_markdown_artifact(
        "# Label sync\n\n" + text + "".join(f"\n- {p}" for p in problems[:MAX_LISTED]),
        key="sync-labels",
    )
    print(text)


@flow(name="sync-labels", log_prints=True)
def sync_labels_flow(config_path: str | None = None, home: str | None = None) -> dict:
    """Bring annotations from Label Studio into the label log: each answer once, and once
    more each time a labeler corrects it."""
    try:
        result = open_flow_loop(config_path, home).sync()
    except AnnotationProblems as exc:
        _report(exc.result, exc.problems)
        raise
    _report(result, [])
    return result
