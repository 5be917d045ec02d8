"""`loopwright serve`: the scheduled deployments, served from this process.

Schedules come from `[schedule]` in loopwright.toml. The deployment names are a contract
(docs/contracts.md): drift-check, curate, sync-labels, retrain (trigger-checked),
retrain-periodic (forced, the schedule is the trigger) and compact (merges the logs'
small parts; `[schedule] compact_cron = ""` leaves it out).

Why module-path entrypoints (`flows.retrain.retrain_flow`): each run is executed in a
fresh process that loads its flow from the deployment's entrypoint. A file-path entrypoint
(`flows/retrain.py:retrain_flow`, Prefect's default) makes Prefect put `flows/` first on
`sys.path`, where `flows/retrain.py` shadows the `retrain` package and every run failed
while loading. A module path is imported like any other module, from the installed
package, so no file of `flows/` can shadow anything whatever it is named.

Why absolute paths in the parameters: a run's process may start in another directory
than `serve` did; a relative config or home would then name another file or folder.
"""

from __future__ import annotations

from pathlib import Path

from flows.config import Config


def run_parameters(config_path: str | None, home: str | None, cfg: Config) -> dict[str, str | None]:
    """config_path and home as absolute paths, resolved from this process's directory.

    With no --config, the file `load_config` would read here (./loopwright.toml) is pinned,
    so a run started elsewhere reads the same one; with none, runs use the built-in defaults.
    """
    if config_path is None and Path("loopwright.toml").is_file():
        config_path = "loopwright.toml"
    return {
        "config_path": str(Path(config_path).resolve()) if config_path else None,
        "home": str(Path(home or cfg.home.path).resolve()),
    }


def deployments(cfg: Config, config_path: str | None, home: str | None) -> list:
    from prefect.deployments.runner import EntrypointType

    from flows.curate import curate_flow
    from flows.drift_check import drift_check_flow
    from flows.retrain import retrain_flow
    from flows.sync_labels import sync_labels_flow

    params = run_parameters(config_path, home, cfg)
    s = cfg.schedule
    module = {"entrypoint_type": EntrypointType.MODULE_PATH}
    out = [
        drift_check_flow.to_deployment(
            name="drift-check", cron=s.drift_check_cron, parameters=params, **module
        ),
        curate_flow.to_deployment(name="curate", cron=s.curate_cron, parameters=params, **module),
        sync_labels_flow.to_deployment(
            name="sync-labels", interval=s.sync_labels_interval_s, parameters=params, **module
        ),
        retrain_flow.to_deployment(
            name="retrain",
            cron=s.trigger_check_cron,
            parameters=params,
            description="Checks the triggers; retrains when one fires.",
            **module,
        ),
        retrain_flow.to_deployment(
            name="retrain-periodic",
            cron=s.retrain_cron,
            parameters={**params, "force": True, "reason": "periodic schedule"},
            description="Retrains on the schedule, whatever the triggers say.",
            **module,
        ),
    ]
    if s.compact_cron:
        from flows.compact import compact_flow

        out.append(
            compact_flow.to_deployment(
                name="compact", cron=s.compact_cron, parameters=params, **module
            )
        )
    return out


def serve_all(cfg: Config, config_path: str | None, home: str | None) -> None:
    from prefect import serve

    serve(*deployments(cfg, config_path, home))
