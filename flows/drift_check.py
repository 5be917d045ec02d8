"""`drift-check`: compare recent traffic with a reference window (`[drift] reference`).

The check is the engine's `drift_check` stage (`flows/loop/drift.py`: which rows, which
statistics, when the Evidently report is written), one task (`drift-statistics`); this flow
adds the verdict as a markdown artifact and, on drift, the event that starts `retrain` now
rather than at the next trigger check.
"""

from __future__ import annotations

from prefect import flow
from prefect.artifacts import create_markdown_artifact

from flows.events import drift_event, emit, home_key
from flows.loop.drift_outcome import markdown
from flows.steps import open_flow_loop


@flow(name="drift-check", log_prints=True)
def drift_check_flow(config_path: str | None = None, home: str | None = None) -> dict:
    """Compare the latest traffic with the reference window ([drift] reference); on drift,
    emit `loopwright.drift.detected` (flows/events.py: an automation runs `retrain`)."""
    loop = open_flow_loop(config_path, home)
    verdict = loop.drift_check()
    emit(drift_event(verdict, home_key(loop.home.root)))
    create_markdown_artifact(
        markdown(verdict), key="drift-check", description="Latest drift verdict"
    )
    print(markdown(verdict).replace("\n\n", "\n").strip())
    return verdict
