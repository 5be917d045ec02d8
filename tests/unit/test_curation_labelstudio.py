"""The Label Studio adapter without a server: payloads, parsing, retries, token hygiene.

HTTP is answered by `httpx.MockTransport`, or the SDK is replaced by a fake that fails on
purpose (to count attempts); the real server is exercised in
tests/integration/test_labelstudio.py.
"""

from __future__ import annotations

import socket
import xml.etree.ElementTree as ET
from collections.abc import Callable

import httpx
import pytest

import curation.labelstudio as ls
from curation.labeling import parse_export, task_payload
from curation.labelstudio import (
    LabelStudioAdapter,
    LabelStudioError,
    LSAnnotation,
    LSTask,
    label_of,
    labeling_config,
)
from curation.labelstudio_annotate import AnnotatingAdapter

TOKEN = "s3cret-token-0123456789abcdef"
USER = {
    "id": 1,
    "email": "admin@loopwright.local",
    "username": "",
    "first_name": "",
    "last_name": "",
}


@pytest.fixture
def sleeps(monkeypatch) -> list[float]:
    calls: list[float] = []
    monkeypatch.setattr(ls, "_sleep", calls.append)
    return calls


@pytest.fixture
def serve(
    monkeypatch,
) -> Callable[[Callable[[httpx.Request], httpx.Response]], list[httpx.Request]]:
    """Route the adapter's HTTP through a handler; returns the list of requests seen."""

    def install(handler):
        seen: list[httpx.Request] = []
        real_client = httpx.Client

        def record(request: httpx.Request) -> httpx.Response:
            seen.append(request)
            return handler(request)

        def client(*args, **kwargs):
            return real_client(*args, transport=httpx.MockTransport(record), **kwargs)

        monkeypatch.setattr(httpx, "Client", client)
        return seen

    return install


def adapter(**kw) -> AnnotatingAdapter:
    return AnnotatingAdapter("http://ls.test:8089/", TOKEN, **{"backoff": (0.5, 1.0), **kw})


def test_repr_hides_the_token():
    a = adapter()
    assert TOKEN not in repr(a) and TOKEN not in str(a)
    assert "***" in repr(a) and "http://ls.test:8089" in repr(a)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("ls.test:8089", TOKEN), "must start with http"),
        (("http://ls.test", " "), "LOOPWRIGHT_LABELSTUDIO_TOKEN"),
    ],
)
def test_constructor_errors(args, message):
    with pytest.raises(ValueError, match=message):
        LabelStudioAdapter(*args)


def test_labeling_config_is_valid_xml():
    root = ET.fromstring(labeling_config(["0", "1", 'a"b']))
    choices = root.find("Choices")
    assert choices.get("name") == "label" and choices.get("toName") == "image"
    assert [c.get("value") for c in choices] == ["0", "1", 'a"b']
    assert root.find("Image").get("value") == "$image"


def test_task_payload_carries_request_id_and_preannotation():
    t = LSTask("r1", "data:image/png;base64,AAAA", "7", 0.42, "v3", "uncertainty")
    assert task_payload(t) == {
        "data": {
            "image": "data:image/png;base64,AAAA",
            "request_id": "r1",
            "reason": "uncertainty",
        },
        "predictions": [
            {
                "result": [
                    {
                        "from_name": "label",
                        "to_name": "image",
                        "type": "choices",
                        "value": {"choices": ["7"]},
                    }
                ],
                "model_version": "v3",
                "score": 0.42,
            }
        ],
    }
    bare = task_payload(LSTask("r2", "data:,", None, None, None, "audit"))
    assert "predictions" not in bare


def test_label_of():
    result = [
        {"from_name": "other", "type": "choices", "value": {"choices": ["x"]}},
        {"from_name": "label", "type": "choices", "value": {"choices": ["3"]}},
    ]
    assert label_of(result) == "3"
    assert label_of([]) is None and label_of(None) is None
    assert label_of([{"from_name": "label", "type": "choices", "value": {"choices": []}}]) is None


def test_parse_export():
    exported = [
        {
            "id": 3,
            "data": {"request_id": "r3"},
            "annotations": [
                {
                    "id": 12,
                    "completed_by": 2,
                    "was_cancelled": True,
                    "result": [],
                    "created_at": "2026-01-02T03:04:05.000001Z",
                },
                {
                    "id": 11,
                    "completed_by": {"id": 1, "email": "x@y"},
                    "was_cancelled": False,
                    "result": [
                        {"from_name": "label", "type": "choices", "value": {"choices": ["4"]}}
                    ],
                    "created_at": "2026-01-01T00:00:00Z",
                    "updated_at": "2026-01-05T00:00:00Z",
                },
            ],
        },
        {"id": 4, "data": {"image": "by hand, no request id"}, "annotations": [{"id": 13}]},
    ]
    out = parse_export(exported, {2: "sim@loopwright.local"})
    assert [a.ls_annotation_id for a in out] == [11, 12]
    first, second = out
    assert first == LSAnnotation("r3", 3, 11, "4", "x@y", first.ts, False)
    assert first.ts.isoformat() == "2026-01-05T00:00:00+00:00"  # last saved, not first
    assert (second.label, second.was_cancelled, second.annotator) == (
        None,
        True,
        "sim@loopwright.local",
    )


def test_unreachable_raises_after_retries_with_backoff(sleeps):
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    a = LabelStudioAdapter(f"http://127.0.0.1:{port}", TOKEN, retries=3, backoff=(0.5, 1.0))
    with pytest.raises(LabelStudioError) as err:
        a.check()
    message = str(err.value)
    assert f"cannot reach Label Studio at http://127.0.0.1:{port}" in message
    assert "make labelstudio-up" in message and "4 attempts" in message
    assert TOKEN not in message
    assert sleeps == [0.5, 1.0, 1.0]  # the last back-off value repeats
    assert err.value.status is None


def test_5xx_is_retried_then_succeeds(serve, sleeps):
    answers = iter([503, 500, 200])

    def handler(request):
        code = next(answers)
        return httpx.Response(code, json=USER if code == 200 else {"detail": "busy"})

    seen = serve(handler)
    adapter().check()
    assert len(seen) == 3 and sleeps == [0.5, 1.0]
    assert seen[0].headers["Authorization"] == f"Token {TOKEN}"
    assert seen[0].url.path == "/api/current-user/whoami"


def test_4xx_is_not_retried(serve, sleeps):
    seen = serve(lambda r: httpx.Response(404, json={"detail": "Not found."}))
    with pytest.raises(LabelStudioError, match="answered HTTP 404") as err:
        adapter().task_count(12)
    assert err.value.status == 404 and len(seen) == 1 and sleeps == []


def test_refused_token_message_names_the_fix_not_the_token(serve, sleeps):
    serve(lambda r: httpx.Response(401, json={"detail": f"Invalid token {TOKEN}"}))
    with pytest.raises(LabelStudioError) as err:
        adapter().check()
    message = str(err.value)
    assert "refused the token (401" in message
    assert "LOOPWRIGHT_LABELSTUDIO_TOKEN" in message and "scripts/labelstudio.sh token" in message
    assert TOKEN not in message and TOKEN not in repr(err.value)
    assert sleeps == []


def test_creates_are_not_retried_on_500(serve, sleeps):
    seen = serve(lambda r: httpx.Response(500, json={"detail": "boom"}))
    with pytest.raises(LabelStudioError, match="HTTP 500 when asked to annotate task 5"):
        adapter().annotate(5, "3")
    assert len(seen) == 1 and sleeps == []


def test_creates_are_retried_when_the_request_never_arrived(serve, sleeps):
    answers = iter([503, 201])

    def handler(request):
        if next(answers) == 503:
            return httpx.Response(503)
        return httpx.Response(201, json={"id": 77, "result": [], "task": 5})

    serve(handler)
    assert adapter().annotate(5, "3", lead_time=2.0) == 77
    assert sleeps == [0.5]


def test_annotate_posts_the_choice(serve, sleeps):
    seen = serve(lambda r: httpx.Response(201, json={"id": 9, "result": [], "task": 5}))
    assert adapter().annotate(5, "8", lead_time=1.5) == 9
    body = httpx.Response(200, content=seen[0].content).json()
    assert seen[0].method == "POST" and seen[0].url.path == "/api/tasks/5/annotations/"
    assert body["result"][0]["value"] == {"choices": ["8"]} and body["lead_time"] == 1.5


def test_import_rejects_duplicate_ids():
    t = LSTask("r1", "data:,", None, None, None, "audit")
    with pytest.raises(ValueError, match="request_id 'r1' more than once"):
        adapter().import_tasks(1, [t, t])


def test_the_production_adapter_has_no_annotating_operations():
    """The loop's port imports and exports; answering and deleting are the simulator's."""
    for name in ("pending_tasks", "annotate", "delete_task", "delete_project", "_user_id"):
        assert not hasattr(LabelStudioAdapter, name), name
        assert callable(getattr(AnnotatingAdapter, name))
    assert issubclass(AnnotatingAdapter, LabelStudioAdapter)
    assert repr(adapter()).startswith("AnnotatingAdapter(url='http://ls.test:8089'")


# -- one retry layer: attempts per adapter call, counted on a fake SDK -----------------------
class FakeSDK:
    """Stands in for `label_studio_sdk.LabelStudio`: any attribute path is callable; each call
    is recorded by its dotted path (`projects.import_tasks`) and answered by `answer`."""

    def __init__(self, answer: Callable[[str], object], calls=None, path: str = "") -> None:
        self.__dict__.update(answer=answer, calls=[] if calls is None else calls, path=path)

    def __getattr__(self, name: str) -> FakeSDK:
        return FakeSDK(self.answer, self.calls, f"{self.path}.{name}".lstrip("."))

    def __call__(self, *args, **kwargs) -> object:
        self.calls.append(self.path)
        return self.answer(self.path)


class _Http:
    def close(self) -> None:
        pass


def faked(answer: Callable[[str], object], **kw) -> tuple[AnnotatingAdapter, list[str]]:
    a = adapter(**kw)
    sdk = FakeSDK(answer)
    a._client, a._http = sdk, _Http()  # as if `_sdk()` had built the client
    return a, sdk.calls


def api_error(status: int):
    from label_studio_sdk.core.api_error import ApiError

    return ApiError(status_code=status, body={"detail": f"HTTP {status} on purpose"})


def fail_on(path: str, exc: Exception) -> Callable[[str], object]:
    """Raise `exc` on calls to `path`; any other call finds an empty server."""

    def answer(called: str) -> object:
        if called == path:
            raise exc
        return []

    return answer


ONE_TASK = [LSTask("r1", "data:,", None, None, None, "audit")]
# adapter call -> the one SDK call it makes first (reads) or after an empty listing (creates)
OPERATIONS = {
    "check": (lambda a: a.check(), "users.whoami"),
    "ensure_project (list)": (lambda a: a.ensure_project("p", "<View/>"), "projects.list"),
    "ensure_project (create)": (lambda a: a.ensure_project("p", "<View/>"), "projects.create"),
    "existing_request_ids": (lambda a: a.existing_request_ids(1), "tasks.list"),
    "task_count": (lambda a: a.task_count(1), "projects.get"),
    "import_tasks (list)": (lambda a: a.import_tasks(1, ONE_TASK), "tasks.list"),
    "import_tasks (import)": (lambda a: a.import_tasks(1, ONE_TASK), "projects.import_tasks"),
    "export_annotations": (lambda a: a.export_annotations(1), "projects.exports.download_sync"),
    "pending_tasks": (lambda a: a.pending_tasks(1), "tasks.list"),
    "annotate": (lambda a: a.annotate(5, "3"), "annotations.create"),
    "delete_task": (lambda a: a.delete_task(5), "tasks.delete"),
    "delete_project": (lambda a: a.delete_project(1), "projects.delete"),
}
CREATES = {"ensure_project (create)", "import_tasks (import)", "annotate"}


@pytest.mark.parametrize("retries", [None, 0, 1, 3])
@pytest.mark.parametrize("op", list(OPERATIONS))
def test_503_is_tried_exactly_retries_plus_one_times(op, retries, sleeps):
    """`[labelstudio] retries = 3` means at most 4 attempts per call, creates included (a 503
    never reached the application), with the back-off between them; nothing retries on top."""
    call, path = OPERATIONS[op]
    kw = {} if retries is None else {"retries": retries}
    a, calls = faked(fail_on(path, api_error(503)), **kw)
    with pytest.raises(LabelStudioError, match="HTTP 503 when asked to") as err:
        call(a)
    attempts = (3 if retries is None else retries) + 1  # the constructor's default is 3
    assert calls.count(path) == attempts and calls[-attempts:] == [path] * attempts
    assert len(calls) == attempts + (0 if calls[0] == path else 1)  # + the listing before a create
    assert sleeps == [0.5, 1.0, 1.0][: attempts - 1]
    assert err.value.status == 503


@pytest.mark.parametrize("status", [401, 403])
@pytest.mark.parametrize("op", list(OPERATIONS))
def test_a_refused_token_is_tried_once(op, status, sleeps):
    call, path = OPERATIONS[op]
    a, calls = faked(fail_on(path, api_error(status)), retries=3)
    with pytest.raises(LabelStudioError, match=f"\\({status}") as err:
        call(a)
    assert calls.count(path) == 1 and sleeps == [] and err.value.status == status


@pytest.mark.parametrize("op", list(OPERATIONS))
def test_500_is_retried_for_reads_only(op, sleeps):
    """A 500 on a create may have created the thing: retrying could duplicate it."""
    call, path = OPERATIONS[op]
    a, calls = faked(fail_on(path, api_error(500)), retries=2)
    with pytest.raises(LabelStudioError, match="HTTP 500"):
        call(a)
    assert calls.count(path) == (1 if op in CREATES else 3)


@pytest.mark.parametrize("op", list(OPERATIONS))
def test_transport_errors_retry_creates_only_when_the_request_never_left(op, sleeps):
    call, path = OPERATIONS[op]
    refused = httpx.ConnectError("connection refused")
    a, calls = faked(fail_on(path, refused), retries=2)
    with pytest.raises(LabelStudioError, match="after 3 attempts"):
        call(a)
    assert calls.count(path) == 3
    a, calls = faked(fail_on(path, httpx.ReadTimeout("no answer")), retries=2)
    with pytest.raises(LabelStudioError, match="ReadTimeout after"):
        call(a)
    assert calls.count(path) == (1 if op in CREATES else 3)
