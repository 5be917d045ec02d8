"""What every `loopwright` command shares: its options, the error exit, the Prefect server
it talks to, and running one flow with all three."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import urllib.request
from typing import Annotated

import typer
from rich.console import Console

console = Console()
err = Console(stderr=True)

ConfigOpt = Annotated[
    str | None,
    typer.Option(
        "--config",
        help="loopwright.toml to read (default ./loopwright.toml, else built-in defaults)",
    ),
]
HomeOpt = Annotated[
    str | None, typer.Option("--home", help="data home (default [home] path, .loopwright)")
]
JsonOpt = Annotated[bool, typer.Option("--json", help="print the result as JSON")]


def _healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/health", timeout=2) as r:  # noqa: S310 (local URL)
            return r.status == 200
    except OSError:
        return False


@contextlib.contextmanager
def prefect_api(port: int, url: str | None = None):
    """Point Prefect at a server for the duration of a command."""
    from prefect.settings import PREFECT_API_URL, temporary_settings

    if url is None and os.environ.get("PREFECT_API_URL"):
        yield os.environ["PREFECT_API_URL"]
        return
    url = url or f"http://127.0.0.1:{port}/api"
    if _healthy(url):
        with temporary_settings(updates={PREFECT_API_URL: url}):
            yield url
    else:
        yield None  # ephemeral mode


def quiet_prefect_console() -> None:
    """Keep Prefect's per-run log lines out of the terminal (they still reach the UI)."""
    import logging

    from prefect.logging.configuration import setup_logging
    from prefect.logging.handlers import PrefectConsoleHandler

    setup_logging()
    for name in ("", "prefect", "prefect.flow_runs", "prefect.task_runs"):
        for handler in logging.getLogger(name).handlers:
            if isinstance(handler, PrefectConsoleHandler):
                handler.setLevel(logging.WARNING)


def fail(exc: BaseException) -> None:
    """Print the error (it names the field and the fix) unwrapped and unstyled, exit 1."""
    from rich.markup import escape

    err.print(f"[bold red]error:[/] {escape(str(exc))}", soft_wrap=True)
    raise typer.Exit(1)


def config_or_fail(config: str | None):
    """The loaded config; a bad file or key exits 1 with the error."""
    from flows.config import ConfigError, load_config

    try:
        return load_config(config)
    except ConfigError as exc:
        fail(exc)


#: what a flow raises for a reason a person can fix; the message names the field and the fix
EXPECTED_ERRORS = (ValueError, RuntimeError, OSError, KeyError)


class ExpectedFailureFilter(logging.Filter):
    """Keeps Prefect's tracebacks of expected errors off the terminal.

    A flow that stops on, say, "no labeled examples" makes Prefect's console handler print
    the task's traceback, the flow's traceback and two "Finished in state Failed" lines,
    forty lines before the one that matters, which the CLI prints itself (`fail`). This
    filter drops a record carrying an expected error, and the "Finished in state Failed"
    lines of the runs it dropped one for. Any other error keeps its traceback. Only the
    console is filtered: the Prefect server's logs (the UI) keep everything.
    """

    def __init__(self) -> None:
        super().__init__()
        self.runs: set[str] = set()

    def filter(self, record: logging.LogRecord) -> bool:
        run = getattr(record, "task_run_id", None) or getattr(record, "flow_run_id", None)
        exc = record.exc_info[1] if record.exc_info else None
        if isinstance(exc, EXPECTED_ERRORS):
            self.runs.add(str(run))
            return False
        return not (
            str(run) in self.runs and record.getMessage().startswith("Finished in state Failed")
        )


@contextlib.contextmanager
def expected_failures_quiet():
    """`ExpectedFailureFilter` on Prefect's console handlers for the duration of a command."""
    from prefect.logging.handlers import PrefectConsoleHandler  # `import prefect` set logging up

    quiet = ExpectedFailureFilter()
    handlers = {
        h
        for name in ("", "prefect", "prefect.flow_runs", "prefect.task_runs")
        for h in logging.getLogger(name).handlers
        if isinstance(h, PrefectConsoleHandler)
    }
    for handler in handlers:
        handler.addFilter(quiet)
    try:
        yield quiet
    finally:
        for handler in handlers:
            handler.removeFilter(quiet)


def run_flow(fn, config: str | None, home: str | None, as_json: bool, **kwargs) -> dict:
    """Run one flow against the configured Prefect server; its errors exit 1, in one line."""
    from flows.loop.open import open_loop

    cfg = config_or_fail(config)
    try:
        open_loop(config, home)  # an unusable data home fails here, before any flow run
    except (ValueError, OSError) as exc:
        fail(exc)
    try:
        with prefect_api(cfg.prefect.port), expected_failures_quiet():
            result = fn(config_path=config, home=home, **kwargs)
    except EXPECTED_ERRORS as exc:
        fail(exc)
    if as_json:
        console.print_json(json.dumps(result, default=str))
    return result
