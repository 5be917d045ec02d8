"""How the Prefect flows run the engine's sub-steps: each as one Prefect task.

Why: the loop's composition exists once, in `flows.loop` (no Prefect there); a flow opens
the `Loop` with `steps=prefect_steps`, so every sub-step (score, drift-statistics,
check-labelstudio, connect-labelstudio, select-samples, send-to-labelstudio,
pull-annotations, form-dataset, fit, report-card, promote-or-keep) is a task run in the UI,
with its own state and duration. No Prefect retries: the only I/O that heals by waiting
is Label Studio's, and its adapter retries each call with back-off (`[labelstudio]
retries`), one retry layer. Results are never cached (`NO_CACHE`): every run reads the
data home as it is now.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from prefect import task
from prefect.cache_policies import NO_CACHE


def prefect_steps(name: str, fn: Callable[..., Any], *args: Any, **kw: Any) -> Any:
    """Run `fn(*args, **kw)` as the Prefect task `name` (inside a flow run: a task run)."""
    return task(fn, name=name, cache_policy=NO_CACHE)(*args, **kw)


def open_flow_loop(config_path: str | None, home: str | None, **kw: Any):
    """The loop a flow runs: its sub-steps are Prefect tasks."""
    from flows.loop.open import open_loop

    return open_loop(config_path, home, steps=prefect_steps, **kw)
