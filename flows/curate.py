"""`curate`: pick what humans should label and send it to Label Studio.

The work is the engine's `curate` stage (`flows/loop/curate.py`: the order that keeps it
idempotent, what can be shown to a labeler), as tasks check-labelstudio,
connect-labelstudio, select-samples and send-to-labelstudio; this flow adds the artifact
and the summary. Without `seed`, the audit draw is seeded from the clock (a person's run);
drivers of the loop pass theirs.
"""

from __future__ import annotations

from prefect import flow
from prefect.artifacts import create_markdown_artifact

from flows.steps import open_flow_loop


def markdown(result: dict) -> tuple[str, list[str]]:
    """The curation round as a table, and the lines saying what was skipped and why."""
    md = (
        "# Curation\n\n| candidates | selected | uncertainty | audit | imported to Label Studio |\n"
        "|---|---|---|---|---|\n"
        f"| {result['candidates']} | {result['selected']} | {result['uncertainty']} "
        f"| {result['audit']} | {result['imported']} |\n"
    )
    skipped = [result["note"]] if result["note"] else []
    if result["unshowable_queued"]:
        skipped.append(
            f"{result['unshowable_queued']} queued samples cannot be shown to a labeler and were "
            "not imported (queued before loopwright checked this), e.g. "
            + "; ".join(result["unshowable_examples"])
        )
    return md + "".join(f"\n- {line}" for line in skipped), skipped


@flow(name="curate", log_prints=True)
def curate_flow(
    budget: int | None = None,
    seed: int | None = None,
    config_path: str | None = None,
    home: str | None = None,
) -> dict:
    """Select uncertain samples plus a random audit share and queue them in Label Studio."""
    result = open_flow_loop(config_path, home).curate(budget, seed)
    if "project_id" not in result:  # nothing picked, nothing waiting: the home is untouched
        note = result["note"]
        print(
            "nothing to send to Label Studio: no new candidate rows" + (f"; {note}" if note else "")
        )
        return result
    md, skipped = markdown(result)
    create_markdown_artifact(md, key="curate", description="Latest curation round")
    print(
        f"selected {result['selected']} of {result['candidates']} candidates "
        f"({result['uncertainty']} uncertain, {result['audit']} audit); "
        f"{result['imported']} imported into Label Studio project {result['project_id']}"
        + "".join(f"\n{line}" for line in skipped)
    )
    return result
