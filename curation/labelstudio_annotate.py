"""The Label Studio operations only the simulated annotator and the tests use.

Production (curate, sync-labels) needs to import and export, never to answer tasks or
delete them: those operations live here, apart, so the production port
(`curation.labelstudio.LabelStudioAdapter`) stays the small API the loop depends on.
`AnnotatingAdapter` reuses the parent's client and its one retry layer (`_call`), so the
SDK is still wrapped in one place; `curation.labelstudio_memory.InMemoryLabelStudio` has
the same methods, in process.
"""

from __future__ import annotations

from typing import Any

from curation.labeling import LabelStudioError, annotator_email, choice_result
from curation.labelstudio import LabelStudioAdapter

__all__ = ["AnnotatingAdapter"]


class AnnotatingAdapter(LabelStudioAdapter):
    """A `LabelStudioAdapter` that can also answer tasks (as a named user) and delete."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._user_ids: dict[str, int] = {}  # annotator name -> Label Studio user id

    def pending_tasks(self, project_id: int) -> list[tuple[int, str]]:
        """(task id, request_id) of tasks nobody has annotated or skipped yet, by task id."""
        tasks = self._tasks(project_id, "id,data,total_annotations,cancelled_annotations")
        pending = [
            (int(t.id), str(t.data["request_id"]))
            for t in tasks
            if not (t.total_annotations or t.cancelled_annotations)
            and "request_id" in (t.data or {})
        ]
        return sorted(pending)

    def annotate(
        self, task_id: int, label: str, lead_time: float | None = None, annotator: str | None = None
    ) -> int:
        """Submit a label for a task through the same endpoint a browser uses; returns its id.

        `annotator` names the Label Studio user it is recorded for (made on first use as
        `<name>@loopwright.local`); by default, the token's own user.
        """
        sdk = self._sdk()
        extra: dict[str, Any] = {}
        if lead_time is not None:
            extra["lead_time"] = float(lead_time)
        if annotator is not None:
            extra["completed_by"] = self._user_id(annotator)
        created = self._call(
            f"annotate task {task_id}",
            lambda: sdk.annotations.create(task_id, result=choice_result(str(label)), **extra),
            creates=True,
        )
        return int(created.id)

    def delete_task(self, task_id: int) -> None:
        """Delete one task (and its annotations); a task already gone is fine."""
        sdk = self._sdk()
        try:
            self._call(f"delete task {task_id}", lambda: sdk.tasks.delete(str(task_id)))
        except LabelStudioError as exc:
            if exc.status != 404:
                raise

    def delete_project(self, project_id: int) -> None:
        """Delete a project and everything in it; a project already gone is fine."""
        sdk = self._sdk()
        try:
            self._call(f"delete project {project_id}", lambda: sdk.projects.delete(project_id))
        except LabelStudioError as exc:
            if exc.status != 404:
                raise

    def _user_id(self, name: str) -> int:
        """The id of the user `name` stands for, made on first use (the export names it)."""
        if name not in self._user_ids:
            email = annotator_email(name)
            by_email = {v: k for k, v in self._users().items()}
            if email not in by_email:
                sdk = self._sdk()
                user = self._call(
                    f"create user {email}",
                    lambda: sdk.users.create(username=name.split("@")[0], email=email),
                    creates=True,
                )
                by_email[email] = int(user.id)
            self._user_ids[name] = by_email[email]
        return self._user_ids[name]
