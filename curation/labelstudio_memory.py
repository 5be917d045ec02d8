"""Label Studio in process: the labeler port's API without a server, for the benchmark.

`InMemoryLabelStudio` has the methods of `LabelStudioAdapter` (check, ensure_project,
existing_request_ids, task_count, import_tasks, export_annotations, close, context
manager) and of `AnnotatingAdapter` (pending_tasks, annotate, delete_task,
delete_project), with the same results: the same `SimulatedAnnotator.label_pending`
answers through either, and the loop cannot tell them apart. A contract test
(tests/integration/test_labelstudio.py) runs one sequence of calls against both.

Why deterministic: two runs of a benchmark from the same seed must be equal, so project,
task and annotation ids count up from 1 (as on a fresh server) and an annotation's `ts`
is a logical clock, ORIGIN + 1 s per annotation made, never the wall clock. Exports go
through the same `parse_export` as the server's JSON, so they have the same fields.

>>> from curation.labeling import LSTask
>>> ls = InMemoryLabelStudio()
>>> p = ls.ensure_project("digits", "<View/>")
>>> ls.import_tasks(p, [LSTask("r1", "data:,", "3", 0.4, "v1", "audit")])
{'r1': 1}
>>> ls.pending_tasks(p), ls.annotate(1, "3", annotator="alice")
([(1, 'r1')], 1)
>>> [(a.request_id, a.label, a.annotator) for a in ls.export_annotations(p)]
[('r1', '3', 'alice@loopwright.local')]
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Self

from curation.labeling import (
    LabelStudioError,
    LSAnnotation,
    LSTask,
    annotator_email,
    check_tasks,
    choice_result,
    parse_export,
    task_payload,
)

__all__ = ["ORIGIN", "InMemoryLabelStudio"]

ORIGIN = datetime(2026, 1, 1, tzinfo=UTC)  # the logical clock's start (retrain.simulation's too)
OWNER = "admin@loopwright.local"  # the token's user of a server scripts/labelstudio.sh starts


@dataclass
class _Project:
    title: str
    labeling_config: str
    tasks: dict[int, dict[str, Any]] = field(default_factory=dict)  # task id -> payload


class InMemoryLabelStudio:
    """One Label Studio "server" in memory: projects, tasks, annotations and users."""

    def __init__(self, owner: str = OWNER) -> None:
        if not owner.strip():
            raise ValueError("owner is empty: name the token's user, e.g. 'admin@loopwright.local'")
        self.url = "memory://labelstudio"
        self._projects: dict[int, _Project] = {}
        self._annotations: dict[int, list[dict[str, Any]]] = {}  # task id -> as exported
        self._emails: dict[int, str] = {1: annotator_email(owner)}  # user id -> e-mail
        self._next = {"project": 1, "task": 1, "annotation": 1}

    def __repr__(self) -> str:
        return (
            f"InMemoryLabelStudio(projects={len(self._projects)}, "
            f"tasks={sum(len(p.tasks) for p in self._projects.values())}, "
            f"annotations={self._next['annotation'] - 1})"
        )

    def _new_id(self, kind: str) -> int:
        self._next[kind] += 1
        return self._next[kind] - 1

    def _project(self, project_id: int, what: str) -> _Project:
        project = self._projects.get(int(project_id))
        if project is None:
            raise LabelStudioError(
                f"Label Studio at {self.url} answered HTTP 404 when asked to {what}: project "
                f"{project_id} does not exist (deleted?): pass an id from ensure_project",
                404,
            )
        return project

    # -- the production API (LabelStudioAdapter) -------------------------------------------
    def check(self) -> None:
        """Always reachable, always the right token."""

    def close(self) -> None:
        """Nothing to release; the projects stay (a benchmark run reuses the instance)."""

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def ensure_project(self, title: str, labeling_config: str) -> int:
        """The id of the project with this exact title, created if missing (lowest id wins)."""
        if not title.strip():
            raise ValueError("project title is empty: pass e.g. 'loopwright-digits'")
        found = [i for i, p in self._projects.items() if p.title == title]
        if found:
            return min(found)
        project_id = self._new_id("project")
        self._projects[project_id] = _Project(title, labeling_config)
        return project_id

    def existing_request_ids(self, project_id: int) -> dict[str, int]:
        """request_id -> task id for every task of the project that carries a request_id."""
        project = self._project(project_id, f"list the tasks of project {project_id}")
        out: dict[str, int] = {}
        for task_id in sorted(project.tasks):
            rid = project.tasks[task_id]["data"].get("request_id")
            if rid is not None:
                out.setdefault(str(rid), task_id)
        return out

    def task_count(self, project_id: int) -> int:
        """Number of tasks in the project."""
        return len(self._project(project_id, f"read project {project_id}").tasks)

    def import_tasks(self, project_id: int, tasks: Sequence[LSTask]) -> dict[str, int]:
        """Import tasks, skipping request_ids already there (same checks as the server adapter).

        Returns request_id -> task id for all the given tasks, old and new.
        """
        check_tasks(tasks)
        existing = self.existing_request_ids(project_id)
        project = self._projects[int(project_id)]
        for t in tasks:
            if t.request_id not in existing:
                task_id = self._new_id("task")
                project.tasks[task_id] = task_payload(t)
                existing[t.request_id] = task_id
        return {t.request_id: existing[t.request_id] for t in tasks}

    def export_annotations(self, project_id: int) -> list[LSAnnotation]:
        """Every annotation of the project, sorted by annotation id; cancelled ones with label None."""
        project = self._project(project_id, f"export project {project_id}")
        exported = [
            {"id": task_id, "data": payload["data"], "annotations": self._annotations[task_id]}
            for task_id, payload in sorted(project.tasks.items())
            if self._annotations.get(task_id)
        ]
        return parse_export(exported, self._emails)

    # -- what only the simulated annotator and the tests use (AnnotatingAdapter) -----------
    def pending_tasks(self, project_id: int) -> list[tuple[int, str]]:
        """(task id, request_id) of tasks nobody has annotated or skipped yet, by task id."""
        return [
            (task_id, rid)
            for rid, task_id in sorted(
                self.existing_request_ids(project_id).items(), key=lambda kv: kv[1]
            )
            if not self._annotations.get(task_id)
        ]

    def annotate(
        self, task_id: int, label: str, lead_time: float | None = None, annotator: str | None = None
    ) -> int:
        """Record a label for a task; returns its id (1, 2, ... in the order they are made).

        `annotator` names the user it is recorded for (`<name>@loopwright.local`, as on the
        server); by default, the owner. Like the server, any label is accepted here: a label
        that is not a class is for sync-labels to refuse.
        """
        task_id = int(task_id)
        if not any(task_id in p.tasks for p in self._projects.values()):
            raise LabelStudioError(
                f"Label Studio at {self.url} answered HTTP 404 when asked to annotate task "
                f"{task_id}: no such task (deleted?): take ids from pending_tasks",
                404,
            )
        annotation_id = self._new_id("annotation")
        self._annotations.setdefault(task_id, []).append(
            {
                "id": annotation_id,
                "completed_by": self._user_id(annotator),
                "was_cancelled": False,
                "result": choice_result(str(label)),
                "lead_time": None if lead_time is None else float(lead_time),
                "created_at": (ORIGIN + timedelta(seconds=annotation_id)).isoformat(),
            }
        )
        return annotation_id

    def delete_task(self, task_id: int) -> None:
        """Delete one task (and its annotations); a task already gone is fine."""
        for project in self._projects.values():
            project.tasks.pop(int(task_id), None)
        self._annotations.pop(int(task_id), None)

    def delete_project(self, project_id: int) -> None:
        """Delete a project and everything in it; a project already gone is fine."""
        project = self._projects.pop(int(project_id), None)
        for task_id in project.tasks if project else ():
            self._annotations.pop(task_id, None)

    def _user_id(self, name: str | None) -> int:
        if name is None:
            return 1
        email = annotator_email(name)
        for user_id, known in self._emails.items():
            if known == email:
                return user_id
        user_id = max(self._emails) + 1
        self._emails[user_id] = email
        return user_id
