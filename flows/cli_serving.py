"""`loopwright serve-model`: the HTTP endpoint in front of the registry (FastAPI on uvicorn).

Why its own module: `flows/cli.py` stays the list of commands, and fastapi/uvicorn are
imported only when this command runs.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from flows.cli_common import ConfigOpt, HomeOpt, config_or_fail, console, fail


def serve_model(
    config: ConfigOpt = None,
    home: HomeOpt = None,
    host: Annotated[
        str | None, typer.Option(help="address to listen on (default [serving] host, 127.0.0.1)")
    ] = None,
    port: Annotated[
        int | None, typer.Option(help="TCP port (default [serving] port, 8080)")
    ] = None,
) -> None:
    """Serve the registry's champion (canary, shadow) over HTTP: /v1/predict, /v1/feedback,
    /healthz, /metrics, /v1/stats, OpenAPI at /docs. Every answered prediction is logged."""
    import uvicorn

    from flows.loop.open import open_home
    from flows.serving.app import create_app

    cfg = config_or_fail(config)
    try:
        data_home = open_home(Path(home) if home else cfg.home_path, cfg.storage)
        app = create_app(cfg, data_home)
    except (ValueError, OSError) as exc:
        fail(exc)
    host = host or cfg.serving.host
    port = port or cfg.serving.port
    console.print(
        f"serving {data_home.root} on http://{host}:{port} (durability "
        f"{cfg.serving.durability}; OpenAPI at /docs)",
        soft_wrap=True,
    )
    uvicorn.run(app, host=host, port=port, log_level="warning", access_log=False)
