"""`loopwright serve`: the scheduled deployments, served from this process.

Schedules come from `[schedule]` in loopwright.toml. The deployment names are a contract
(docs/contracts.md): drift-check, curate, sync-labels, retrain (trigger-checked), and
retrain-periodic (forced, the schedule is the trigger).
"""

from __future__ import annotations

from flows.config import Config


def deployments(cfg: Config, config_path: str | None, home: str | None):
    from flows.curate import curate_flow
    from flows.drift_check import drift_check_flow
    from flows.retrain import retrain_flow
    from flows.sync_labels import sync_labels_flow

    params = {"config_path": config_path, "home": home}
    s = cfg.schedule
    return [
        drift_check_flow.to_deployment(
            name="drift-check", cron=s.drift_check_cron, parameters=params
        ),
        curate_flow.to_deployment(name="curate", cron=s.curate_cron, parameters=params),
        sync_labels_flow.to_deployment(
            name="sync-labels", interval=s.sync_labels_interval_s, parameters=params
        ),
        retrain_flow.to_deployment(
            name="retrain",
            cron=s.trigger_check_cron,
            parameters=params,
            description="Checks the triggers; retrains when one fires.",
        ),
        retrain_flow.to_deployment(
            name="retrain-periodic",
            cron=s.retrain_cron,
            parameters={**params, "force": True, "reason": "periodic schedule"},
        ),
    ]


def serve_all(cfg: Config, config_path: str | None, home: str | None) -> None:
    from prefect import serve

    serve(*deployments(cfg, config_path, home))
