"""What people see, checked in a real browser: Playwright driving Debian's Chromium.

Why a browser: the server tests prove Label Studio *stores* a task and its pre-annotation,
not that a labeler *sees* them: a from_name/to_name mismatch, a view that does not render
HTML, or a prediction the editor filters out all leave the API answers intact and the
labeler with an empty page. So the tasks go in the way `curate` sends them (its own
`send_to_labelstudio`, through the project's adapter), and the test logs in on Label Studio's
login page, opens each task's labeling page and reads what is on screen. The report card is
opened from file://, as a reviewer opens an archived card.

One browser for the module; the Label Studio server is the session's (tests/conftest.py).
Chromium comes from `make setup` (setup-system installs Debian's package): `playwright
install` downloads a browser, which CI cannot, so a missing /usr/bin/chromium fails here.
"""

from __future__ import annotations

import uuid
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pyarrow as pa
import pytest

try:
    from playwright.sync_api import expect
except ImportError:  # the `browser` fixture fails with the fix
    expect = None

from curation.labelstudio import LabelStudioAdapter
from curation.labelstudio_annotate import AnnotatingAdapter
from retrain.tabular.schema import INPUT_SCHEMA
from tests.support import save_screenshot

pytestmark = pytest.mark.integration

CHROMIUM = Path("/usr/bin/chromium")
ADMIN = "admin@loopwright.local"  # the admin user scripts/labelstudio.sh creates (LS_USER)
TIMEOUT_MS = 30_000  # the labeling page loads Label Studio's editor bundle: seconds under load

# A loan applicant (retrain/tabular/schema.py's example) and the cells a labeler must read:
# money without cents, with thousands separators; whole-number fields as whole numbers.
RECORD = dict(INPUT_SCHEMA["example"])
SHOWN = {
    "salary": "103,125",
    "commission": "0",
    "age": "21",
    "elevel": "2",
    "car": "8",
    "zipcode": "3",
    "hvalue": "319,769",
    "hyears": "4",
    "loan": "338,350",
}


@pytest.fixture(scope="module")
def browser():
    if expect is None:
        pytest.fail(
            "playwright is not installed: `make setup` installs the dev extras", pytrace=False
        )
    if not CHROMIUM.exists():
        pytest.fail(
            f"{CHROMIUM} is missing: `make setup` installs Debian's chromium (make setup-system); "
            "the browser tests drive it with Playwright",
            pytrace=False,
        )
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=str(CHROMIUM), args=["--no-sandbox", "--disable-gpu"]
        )
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture(scope="module")
def ls_page(browser, ls_server):
    """A page logged in to Label Studio as its admin, through the login page like a person
    (the fixture's token is an API token; the UI wants a session)."""
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    context.set_default_timeout(TIMEOUT_MS)
    page = context.new_page()
    page.goto(f"{ls_server.url}/user/login/")
    page.fill("input[name=email]", ADMIN)
    page.fill("input[name=password]", ls_server.password)
    page.click("button[type=submit]")
    page.wait_for_url(lambda url: "/user/login" not in url)
    try:
        yield page
    finally:
        context.close()


@pytest.fixture
def labelstudio_admin(labelstudio):
    url, token = labelstudio
    with AnnotatingAdapter(url, token, retries=2, backoff=(0.2, 0.5)) as admin:
        yield admin


def send_as_curate(task, labelstudio, project_id: int, logged: list[dict]) -> dict[str, int]:
    """Import logged rows exactly as the `curate` stage does (`send_to_labelstudio`: the task's
    render, the guess and its confidence as the pre-annotation), from a queue holding only
    them; returns request_id -> Label Studio task id."""
    from flows.loop.curate import send_to_labelstudio

    url, token = labelstudio
    queue = pa.Table.from_pylist(logged)
    loop = SimpleNamespace(
        task=task,
        queries=SimpleNamespace(queued=lambda unlabeled_only=False: queue),
        labelstudio=lambda: LabelStudioAdapter(url, token, retries=2, backoff=(0.2, 0.5)),
    )
    sent = send_to_labelstudio(loop, project_id)
    assert sent["imported"] == len(logged), sent
    with LabelStudioAdapter(url, token) as adapter:
        return adapter.existing_request_ids(project_id)


def logged_row(task, rid: str, x, probs: list[float]) -> dict:
    """A prediction-log row as the queue returns it: the logged input and the model's output."""
    best = int(np.argmax(probs))
    return {
        "request_id": rid,
        "reason": "uncertainty",
        "input": task.encode_input(x),
        "input_uri": None,
        "pred": task.classes[best],
        "confidence": float(probs[best]),
        "model_version": "v0001",
        "probs": probs,
    }


def open_task(page, url: str, project_id: int, task_id: int):
    """The labeling page of one task (the Data Manager with that task open in the editor)."""
    page.goto(f"{url}/projects/{project_id}/data?task={task_id}")
    return page


def choice(page, value: str):
    """The editor's input for one class of the `label` Choices (Label Studio 1.23 draws a
    checkbox even for choice="single", named after the class value)."""
    return page.locator(f'.lsf-choices input[name="{value}"]')


def test_tabular_task_shows_the_record_and_the_guess(ls_page, labelstudio, labelstudio_admin):
    from retrain.tabular.task import TASK

    project = labelstudio_admin.ensure_project(
        f"browser tabular {uuid.uuid4().hex[:8]}", TASK.labeling_config
    )
    try:
        # the guess is class_1, the second choice: a page that selects the first choice (or
        # none) by default fails
        row = logged_row(TASK, "tab-0001", RECORD, [0.31, 0.69])
        ids = send_as_curate(TASK, labelstudio, project, [row])
        page = open_task(ls_page, labelstudio[0], project, ids["tab-0001"])

        table = page.locator("table.loopwright-record")
        for field, text in SHOWN.items():  # expect() waits: the editor renders more than once
            row = table.locator("tr", has=page.locator("th").get_by_text(field, exact=True))
            expect(row.locator("td"), f"field {field}").to_have_text(text)
            expect(row.locator("td")).to_be_visible()
        expect(choice(page, "class_1"), "the guess class_1 is pre-selected").to_be_checked()
        expect(choice(page, "class_0")).to_be_visible()
        expect(choice(page, "class_0")).not_to_be_checked()
    finally:
        labelstudio_admin.delete_project(project)


def test_digits_task_shows_the_image_and_the_guess(ls_page, labelstudio, labelstudio_admin):
    from sklearn.datasets import load_digits

    from retrain.digits.task import RENDER_SIZE, TASK

    project = labelstudio_admin.ensure_project(
        f"browser digits {uuid.uuid4().hex[:8]}", TASK.labeling_config
    )
    try:
        image = load_digits().images[0] / 16.0  # a real "0"
        probs = [0.02] * 10
        probs[6] = 0.82  # the model guesses 6: neither the first choice nor the truth
        ids = send_as_curate(
            TASK, labelstudio, project, [logged_row(TASK, "dig-0001", image, probs)]
        )
        page = open_task(ls_page, labelstudio[0], project, ids["dig-0001"])

        img = page.locator("img[src^='data:image/png']")
        expect(img).to_have_count(1)  # the editor's Image view (the grid shows no thumbnail)
        expect(img).to_be_visible()
        page.wait_for_function("el => el.complete", arg=img.element_handle())
        assert img.evaluate("el => el.naturalWidth") == RENDER_SIZE  # the task's render
        box = img.bounding_box()
        assert box is not None and box["width"] > 0 and box["height"] > 0
        expect(choice(page, "6"), "the guess 6 is pre-selected").to_be_checked()
        assert [c for c in TASK.classes if choice(page, c).is_checked()] == ["6"]
    finally:
        labelstudio_admin.delete_project(project)


def test_report_card_page(browser, tmp_path):
    from evaluation.gate import GateRules, decide
    from evaluation.report_card import build_card, evaluate_model, write_card
    from retrain.task import Expectation, ExpectationResult

    classes = ("zero", "one", "two")
    # column 0 is the answer, column 1 its confidence (tests/unit/test_evaluation_report_card.py)
    x = np.array([[0, 0.9], [1, 0.8], [2, 0.7], [0, 0.6], [1, 0.9], [2, 0.9]])
    y = np.array([0, 1, 2, 1, 1, 0])
    attrs = [{"device": "a"}, {"device": "a"}, {"device": "b"}, {"device": "b"}, {"device": "a"}]
    attrs.append({})

    def challenger(x):
        out = np.empty((len(x), 3))
        for i, (cls, conf) in enumerate(x):
            out[i] = (1 - conf) / 2
            out[i, int(cls)] = conf
        return out

    def champion(x):
        return np.tile([0.5, 0.3, 0.2], (len(x), 1))

    def calibrated(p, x, y):
        return ExpectationResult("x", True, 1.0, 0.9, "stable")

    def scored(name, fn, version):
        return evaluate_model(
            name=name,
            version=version,
            predict_proba=fn,
            x=x,
            y=y,
            attrs=attrs,
            classes=classes,
            slice_keys=["device"],
            expectations=(Expectation("stable", "", calibrated),),
            latency_rows=0,
        )

    card = build_card(
        challenger=scored("challenger", challenger, "v2"),
        champion=scored("champion", champion, "v1"),
        task="digits",
        dataset={"id": "ds-7", "policy": "sliding", "n_train": 500, "n_test": 6},
        eval_set={"description": "holdout", "n": 6},
        created="2025-01-01T00:00:00Z",
    )
    # 6 eval rows against a minimum of 10: the gate keeps the champion, and says why
    card["gate"] = decide(card, GateRules(min_eval_rows=10)).to_dict()
    assert card["gate"]["promote"] is False
    html = tmp_path / "card.html"
    write_card(card, tmp_path / "card.json", html)

    page = browser.new_page(viewport={"width": 1100, "height": 900})
    try:
        page.goto(html.as_uri())
        verdict = page.locator(".verdict")
        assert verdict.is_visible()
        assert verdict.locator("h2").inner_text() == "KEEP CHAMPION"
        reasons = verdict.locator("li").all_inner_texts()
        assert reasons == card["gate"]["reasons"]
        assert reasons[0].startswith("eval set 6 rows (minimum 10): too few to decide")

        def table_after(heading: str):
            t = page.locator(f"h2:text-is('{heading}') + table")
            assert t.is_visible(), heading
            return {
                r.locator("td").first.inner_text(): r.locator("td").all_inner_texts()[1:]
                for r in t.locator("tr").all()
                if r.locator("td").count()
            }

        metrics = table_after("Metrics")
        assert metrics["version"][:2] == ["v1", "v2"]
        assert metrics["accuracy [95% CI]"][0].startswith("0.333 [")  # 2 of 6
        assert metrics["accuracy [95% CI]"][1].startswith("0.667 [")  # 4 of 6
        assert metrics["accuracy [95% CI]"][2] == "+0.333"
        slices = table_after("Per slice")
        assert slices["device=a"] == ["3", "0.333", "1.000", "+0.667"]
        assert slices["device=b"] == ["2", "0.000", "0.500", "+0.500"]
        assert slices["device=(missing)"] == ["1", "1.000", "0.000", "-1.000"]

        save_screenshot(page, tmp_path / "report-card.png", "report card")
    finally:
        page.close()
