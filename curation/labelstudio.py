"""Label Studio adapter: the production API of the labeler port (SDK 2.x).

Why an adapter: the SDK changed its whole surface between 1.x and 2.x; the loop talks to
these few methods and plain dataclasses, so the next breaking release is a one-file change.
This module and `curation.labelstudio_annotate` (the operations only the simulated
annotator and the tests use) are the only ones that import `label_studio_sdk`;
`curation.labelstudio_memory` is the same API in process, for the benchmark.

Idempotency: every task carries its `request_id`; importing skips ids already in the
project, and exporting returns the same annotations (sorted by id) every time.

Retries: `_call` is the one retry layer (callers must not retry on top: that multiplied
the attempts per call). `retries = 3` means at most 4 attempts per call, with `backoff`
seconds between them. Reads and deletes are retried on connection errors, timeouts and 5xx.
Creating (project, import, annotate) is retried only when the request surely did not reach
the application (connection refused, 502/503/504), so a retry never duplicates work; a
failed import can simply be run again, since it skips what is already there. 4xx is never
retried. The token never appears in messages, logs or repr.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from typing import Any, Self, TypeVar

from curation.labeling import (
    FROM_NAME,
    SAMPLING,
    TO_NAME,
    LabelStudioError,
    LSAnnotation,
    LSTask,
    check_tasks,
    label_of,
    labeling_config,
    parse_export,
    queue_version,
    task_payload,
)

__all__ = ["FROM_NAME", "TO_NAME", "LSAnnotation", "LSTask", "LabelStudioAdapter"]
__all__ += ["LabelStudioError", "label_of", "labeling_config"]

T = TypeVar("T")
_IMPORT_CHUNK = 500
_PAGE = 1000
_sleep = time.sleep  # tests replace it to check the back-off without waiting


class LabelStudioAdapter:
    """A connection to one Label Studio server, with an API token (legacy or personal access)."""

    def __init__(
        self,
        url: str,
        token: str,
        timeout: float = 30,
        retries: int = 3,
        backoff: Sequence[float] = (1, 2, 4),
        token_source: str = "LOOPWRIGHT_LABELSTUDIO_TOKEN",
    ) -> None:
        if not isinstance(url, str) or not url.startswith(("http://", "https://")):
            raise ValueError(
                f"url = {url!r} must start with http:// or https:// (e.g. http://127.0.0.1:8089)"
            )
        if not isinstance(token, str) or not token.strip():
            raise ValueError(
                "token is empty: set LOOPWRIGHT_LABELSTUDIO_TOKEN to `scripts/labelstudio.sh token`"
            )
        if retries < 0 or timeout <= 0 or any(b < 0 for b in backoff):
            raise ValueError("retries must be >= 0, timeout > 0 and backoff values >= 0")
        self.url = url.rstrip("/")
        self.timeout = float(timeout)
        self.retries = int(retries)
        self.backoff = tuple(float(b) for b in backoff) or (0.0,)
        self._token = token.strip()
        # where the token came from, named when the server refuses it (never the token)
        self.token_source = token_source
        self._client: Any = None
        self._http: Any = None

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(url={self.url!r}, token='***', timeout={self.timeout}, "
            f"retries={self.retries})"
        )

    __str__ = __repr__

    # -- plumbing -------------------------------------------------------------------------
    def _sdk(self) -> Any:
        if self._client is None:
            import httpx
            from label_studio_sdk import LabelStudio  # slow import (~1 s): only when used

            self._http = httpx.Client(timeout=self.timeout, follow_redirects=True)
            # max_retries=0: the SDK's own retries would also repeat creates; ours follow the rules above
            self._client = self._call(
                "create the client",
                lambda: LabelStudio(
                    base_url=self.url,
                    api_key=self._token,
                    timeout=self.timeout,
                    max_retries=0,
                    httpx_client=self._http,
                ),
            )
        return self._client

    def _safe(self, text: Any) -> str:
        return str(text).replace(self._token, "***")[:300]

    def _call(self, what: str, fn: Callable[[], T], creates: bool = False) -> T:
        """Run one SDK call; retry per the module's rules; map failures to LabelStudioError."""
        import httpx
        from label_studio_sdk.core.api_error import ApiError

        for attempt in range(self.retries + 1):
            last = attempt == self.retries
            try:
                return fn()
            except ApiError as exc:
                status = exc.status_code
                if status in (401, 403):
                    detail = self._safe(
                        exc.body.get("detail", "") if isinstance(exc.body, dict) else ""
                    )
                    what_happened = (
                        "refused the token (401" if status == 401 else "denied the request (403"
                    )
                    raise LabelStudioError(
                        f"Label Studio {what_happened}{': ' + detail if detail else ''}) from "
                        f"{self.token_source} while trying to {what} at {self.url}: set "
                        "LOOPWRIGHT_LABELSTUDIO_TOKEN to an admin's token of that server (for "
                        "the local one, the token printed by `scripts/labelstudio.sh token`)",
                        status,
                    ) from None
                retryable = status is not None and (
                    status in (502, 503, 504) or (status >= 500 and not creates)
                )
                if not retryable or last:
                    raise LabelStudioError(
                        f"Label Studio at {self.url} answered HTTP {status} when asked to {what}: "
                        f"{self._safe(exc.body)}",
                        status,
                    ) from None
            except httpx.TransportError as exc:
                retryable = isinstance(exc, httpx.ConnectError) or not creates
                if not retryable or last:
                    raise LabelStudioError(
                        f"cannot reach Label Studio at {self.url} to {what} ({type(exc).__name__} after "
                        f"{attempt + 1} attempts): start it with `make labelstudio-up` "
                        "(scripts/labelstudio.sh start) or point [labelstudio] url (environment "
                        "LOOPWRIGHT_LABELSTUDIO__URL) at your server"
                    ) from None
            _sleep(self.backoff[min(attempt, len(self.backoff) - 1)])
        raise AssertionError("unreachable")  # pragma: no cover

    def close(self) -> None:
        if self._client is not None:
            self._http.close()
            self._client = None

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- API ------------------------------------------------------------------------------
    def check(self) -> None:
        """Raise LabelStudioError unless the server answers and accepts the token."""
        sdk = self._sdk()
        self._call("check the token", sdk.users.whoami)

    def ensure_project(self, title: str, labeling_config: str) -> int:
        """The id of the project with this exact title, created if missing (lowest id wins)."""
        if not title.strip():
            raise ValueError("project title is empty: pass e.g. 'loopwright-digits'")
        sdk = self._sdk()
        found = self._call(
            "list projects",
            lambda: [
                p.id for p in sdk.projects.list(title=title, page_size=100) if p.title == title
            ],
        )
        if found:
            return int(min(found))
        project = self._call(
            f"create project {title!r}",
            lambda: sdk.projects.create(title=title, label_config=labeling_config),
            creates=True,
        )
        return int(project.id)

    def _tasks(self, project_id: int, include: str) -> list[Any]:
        sdk = self._sdk()
        return self._call(
            f"list the tasks of project {project_id}",
            lambda: list(
                sdk.tasks.list(
                    project=project_id, fields="task_only", include=include, page_size=_PAGE
                )
            ),
        )

    def existing_request_ids(self, project_id: int) -> dict[str, int]:
        """request_id -> task id for every task of the project that carries a request_id."""
        out: dict[str, int] = {}
        for task in sorted(self._tasks(project_id, "id,data"), key=lambda t: t.id):
            rid = (task.data or {}).get("request_id")
            if rid is not None:
                out.setdefault(str(rid), int(task.id))
        return out

    def task_count(self, project_id: int) -> int:
        """Number of tasks in the project, as the server counts them."""
        sdk = self._sdk()
        return int(
            self._call(
                f"read project {project_id}", lambda: sdk.projects.get(project_id)
            ).task_number
            or 0
        )

    def import_tasks(self, project_id: int, tasks: Sequence[LSTask]) -> dict[str, int]:
        """Import tasks (with the prediction as a pre-annotation), skipping request_ids already there.

        Returns request_id -> task id for all the given tasks, old and new.
        """
        check_tasks(tasks)
        existing = self.existing_request_ids(project_id)
        new = [t for t in tasks if t.request_id not in existing]
        sdk = self._sdk()
        relist = False
        for start in range(0, len(new), _IMPORT_CHUNK):
            chunk = new[start : start + _IMPORT_CHUNK]
            response = self._call(
                f"import {len(chunk)} tasks into project {project_id}",
                lambda chunk=chunk: sdk.projects.import_tasks(
                    project_id, request=[task_payload(t) for t in chunk], return_task_ids=True
                ),
                creates=True,
            )
            task_ids = list(response.task_ids or [])
            if len(task_ids) == len(chunk):
                existing.update(
                    {t.request_id: int(i) for t, i in zip(chunk, task_ids, strict=True)}
                )
            else:
                relist = True
        if relist:
            existing = self.existing_request_ids(project_id)
        version = queue_version(new)
        if version is not None:  # the server accepts a version once predictions carry it
            self.order_queue(project_id, version)
        return {t.request_id: existing[t.request_id] for t in tasks}

    def order_queue(self, project_id: int, model_version: str) -> None:
        """Let `/next` serve the lowest pre-annotation score first ("Uncertainty sampling"):
        the import path sets each task's score from its curation score
        (`curation.labeling.queue_scores`). Label Studio orders only the predictions of the
        project's `model_version` (others come after, at random), so each import moves it
        to the version of its newest task: the champion that made the latest picks. The
        server refuses a version no prediction carries yet, so this follows the import (a
        `/next` in between would get one task at random)."""
        sdk = self._sdk()
        self._call(
            f"set the labeling queue order of project {project_id}",
            lambda: sdk.projects.update(project_id, sampling=SAMPLING, model_version=model_version),
        )

    def queue_order(self, project_id: int) -> tuple[str | None, str | None]:
        """The project's (sampling, model_version), as the server holds them."""
        sdk = self._sdk()
        p = self._call(f"read project {project_id}", lambda: sdk.projects.get(project_id))
        sampling = getattr(p.sampling, "value", p.sampling)
        return (None if sampling is None else str(sampling)), p.model_version

    def export_annotations(self, project_id: int) -> list[LSAnnotation]:
        """Every annotation of the project, sorted by annotation id; cancelled ones with label None."""
        sdk = self._sdk()
        raw = self._call(
            f"export project {project_id}",
            lambda: b"".join(sdk.projects.exports.download_sync(project_id, export_type="JSON")),
        )
        return parse_export(json.loads(raw), self._users())

    def _users(self) -> dict[int, str]:
        """User id -> e-mail: an export names annotators by id."""
        sdk = self._sdk()
        return {int(u.id): str(u.email) for u in self._call("list users", sdk.users.list)}
