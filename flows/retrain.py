"""`retrain`: trigger → dataset version → Lightning fit → report card → gate → promote or keep.

The work is the engine's `retrain` stage (`flows/loop/retrain.py`), as tasks form-dataset,
fit, report-card and promote-or-keep; this flow adds the report card as a markdown artifact
and says what was decided.
"""

from __future__ import annotations

from prefect import flow
from prefect.artifacts import create_markdown_artifact

from evaluation.report_card import card_markdown
from flows.steps import open_flow_loop


@flow(name="retrain", log_prints=True)
def retrain_flow(
    force: bool = False, reason: str = "", config_path: str | None = None, home: str | None = None
) -> dict:
    """Retrain when a trigger fires (or when forced), and promote only through the gate."""
    loop = open_flow_loop(config_path, home)
    result = loop.retrain(force=force, reason=reason)
    trig = result["trigger"]
    print(
        f"trigger: {'FIRE' if trig['fire'] else 'quiet'} ({trig['kind']}): {'; '.join(trig['reasons'])}"
    )
    if not result["retrained"]:
        if result.get("waiting"):
            print(result["waiting"])
        return result
    card, gate = loop.last_card, result["gate"]
    create_markdown_artifact(
        card_markdown(card), key="report-card", description=f"Report card {result['challenger']}"
    )
    verdict = "PROMOTED" if result["promoted"] else "KEPT champion"
    print(
        f"{verdict}: challenger {result['challenger']} vs champion {gate['champion_before']}; "
        + "; ".join(gate["reasons"])
    )
    print(f"report card: {gate['card_html']}")
    if result["next"]:
        print(result["next"])
    return result
