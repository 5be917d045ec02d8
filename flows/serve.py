"""`loopwright serve`: the scheduled deployments, served from this process.

Schedules come from `[schedule]` in loopwright.toml. The deployment names are a contract
(docs/contracts.md): drift-check, curate, sync-labels, retrain (trigger-checked),
retrain-periodic (forced, the schedule is the trigger), compact (merges the logs'
small parts; `[schedule] compact_cron = ""` leaves it out) and rollout (when installed).
`loopwright deploy` (flows/deploy.py) puts the same list on a work pool.

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

import importlib
import importlib.util
from dataclasses import dataclass, field
from pathlib import Path

from flows.config import Config, ScheduleConfig


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


@dataclass(frozen=True)
class DeploymentSpec:
    """One deployment of the loop, before Prefect sees it: `loopwright serve` and
    `loopwright deploy` (flows/deploy.py) both build theirs from `deployment_specs`, so the
    names, entrypoints, schedules and parameters cannot drift apart between the two."""

    name: str  # the deployment's name (contract: docs/contracts.md)
    flow: str  # "module:attribute" of the @flow, imported by module path
    cron: str | None = None
    interval_s: int | None = None
    parameters: dict[str, object] = field(default_factory=dict)  # besides config_path, home
    description: str = ""

    def load_flow(self):
        module, attr = self.flow.split(":")
        return getattr(importlib.import_module(module), attr)


def _installed(module: str) -> bool:
    return importlib.util.find_spec(module) is not None


def deployment_specs(s: ScheduleConfig) -> list[DeploymentSpec]:
    """The loop's deployments with their schedules from `[schedule]`.

    `compact` goes when `[schedule] compact_cron = ""`; `rollout` (a step of a candidate's
    online rollout; a no-op when none is active) when its flow is installed and
    `rollout_cron` is not "".
    """
    out = [
        DeploymentSpec("drift-check", "flows.drift_check:drift_check_flow", s.drift_check_cron),
        DeploymentSpec("curate", "flows.curate:curate_flow", s.curate_cron),
        DeploymentSpec(
            "sync-labels", "flows.sync_labels:sync_labels_flow", interval_s=s.sync_labels_interval_s
        ),
        DeploymentSpec(
            "retrain",
            "flows.retrain:retrain_flow",
            s.trigger_check_cron,
            description="Checks the triggers; retrains when one fires.",
        ),
        DeploymentSpec(
            "retrain-periodic",
            "flows.retrain:retrain_flow",
            s.retrain_cron,
            parameters={"force": True, "reason": "periodic schedule"},
            description="Retrains on the schedule, whatever the triggers say.",
        ),
    ]
    if s.compact_cron:
        out.append(DeploymentSpec("compact", "flows.compact:compact_flow", s.compact_cron))
    if s.rollout_cron and _installed("flows.rollout"):
        out.append(
            DeploymentSpec(
                "rollout",
                "flows.rollout:rollout_flow",
                s.rollout_cron,
                description="One analysis step of the active rollout (nothing when none).",
            )
        )
    return out


def to_deployment(spec: DeploymentSpec, params: dict[str, str | None], **extra):
    """The spec as Prefect's RunnerDeployment, by module-path entrypoint (see above)."""
    from prefect.deployments.runner import EntrypointType

    return spec.load_flow().to_deployment(
        name=spec.name,
        cron=spec.cron,
        interval=spec.interval_s,
        parameters={**params, **spec.parameters},
        description=spec.description or None,
        entrypoint_type=EntrypointType.MODULE_PATH,
        **extra,
    )


def deployments(cfg: Config, config_path: str | None, home: str | None) -> list:
    """The deployments `serve` runs from its own process."""
    params = run_parameters(config_path, home, cfg)
    return [to_deployment(spec, params) for spec in deployment_specs(cfg.schedule)]


def serve_all(cfg: Config, config_path: str | None, home: str | None) -> None:
    from prefect import serve

    serve(*deployments(cfg, config_path, home))
