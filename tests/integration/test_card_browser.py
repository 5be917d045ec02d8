"""The report card of a real trained model, opened in a real browser (Playwright + Debian's
Chromium), as a reviewer opens an archived card from file://.

Why a real model and not a hand-made card: the gallery's inputs go through the task's own
renderer and the engine's own `report-card` step, so a broken data URI, a renderer whose
output the page escapes into text, or a card step that forgets the gallery all show here
and in no unit test. The home is small (digits, 300 seed rows, short fits, no servers):
a first model promoted by a person (`Registry.promote`, what `loopwright promote` does),
then one retrain against it, with an edge-case suite added in between.
"""

from __future__ import annotations

import json
import time
from datetime import datetime
from pathlib import Path

import pytest

from evaluation import card_text as ct
from tests.integration.test_browser import browser  # noqa: F401 (the module's one browser)
from tests.support import save_screenshot, write_config

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def digits_card(tmp_path_factory) -> tuple[dict, Path]:
    """(card JSON, card HTML path) of a second digits model judged against a champion."""
    from curation.labelstudio_memory import InMemoryLabelStudio
    from flows.config import load_config
    from flows.loop.engine import Loop
    from storage.suites import add_suite

    root = tmp_path_factory.mktemp("card")
    path = write_config(
        root / "lw.toml",
        root / "home",
        retrain={"seed_rows": 300, "max_epochs": 8, "finetune_epochs": 3},
        gate={"min_eval_rows": 10},
    )
    cfg = load_config(path, env={})
    ls = InMemoryLabelStudio()
    loop = Loop(cfg, root / "home", labelstudio=lambda: ls)
    sim = loop.task.simulation()
    scenario = sim.load_scenario(sim.find_scenario("tiny"))
    world = sim.world(scenario, scenario.seed, seed_rows=cfg.retrain.seed_rows, holdout_rows=40)
    loop.write_seed(world.seed_examples)
    first = loop.retrain(force=True, reason="bootstrap")
    if not first["promoted"]:  # 8 epochs may miss an expectation: a person signs it off
        loop.registry.promote(first["challenger"], reason="browser test: first model signed off")
    ids = loop.queries.labeled_examples().column("request_id").to_pylist()[:8]
    add_suite(loop.home, "first-eight", request_ids=[*ids, "never-logged"], required=True)
    second = loop.retrain(force=True, reason="browser test: a challenger")
    html = Path(second["gate"]["card_html"])
    return json.loads(html.with_suffix(".json").read_text()), html


def table_after(page, heading: str) -> dict[str, list[str]]:
    """The table under an <h2>: first cell -> the other cells, per body row."""
    t = page.locator(f"h2:text-is('{heading}') + table")
    assert t.is_visible(), heading
    return {
        r.locator("td").first.inner_text(): r.locator("td").all_inner_texts()[1:]
        for r in t.locator("tr").all()
        if r.locator("td").count()
    }


def test_card_of_a_trained_model_in_the_browser(browser, digits_card, tmp_path):  # noqa: F811
    card, html = digits_card
    assert card["models"]["champion"] is not None, "the second model has a champion to face"
    gallery = card["gallery"]
    shown = len(gallery["disagree"]["rows"]) + len(gallery["challenger_wrong"]["rows"])
    assert shown > 0, "a small CNN on 8x8 digits gets some eval rows wrong"

    t0 = time.monotonic()
    page = browser.new_page(viewport={"width": 1100, "height": 900})
    try:
        page.goto(html.as_uri())
        label, reasons = ct.verdict(card)
        assert label in ("PROMOTE", "KEEP CHAMPION")
        assert page.locator(".verdict h2").inner_text() == label
        assert page.locator(".verdict li").all_inner_texts() == reasons

        facts = {
            r.locator("th").inner_text(): r.locator("td").inner_text()
            for r in page.locator("table.facts").first.locator("tr").all()
        }
        assert facts["created"] == card["created"]  # the model's registration time
        assert datetime.fromisoformat(card["created"]).tzinfo is not None

        metrics = table_after(page, "Metrics")
        ch, cp = card["models"]["challenger"], card["models"]["champion"]
        assert metrics["version"][:2] == [cp["version"], ch["version"]]
        assert metrics["accuracy [95% CI]"][0].startswith(f"{cp['accuracy']:.3f} [")
        assert metrics["accuracy [95% CI]"][1].startswith(f"{ch['accuracy']:.3f} [")

        slices = table_after(page, "Per slice")
        expected = {
            f"{key}={value}": (s["n"], s["accuracy"])
            for key, values in ch["slices"].items()
            for value, s in values.items()
        }
        assert expected and set(slices) == set(expected)
        for name, (n, acc) in expected.items():
            assert slices[name][0] == str(n) and slices[name][2] == f"{acc:.3f}", name

        suites = table_after(page, "Edge-case suites")
        assert suites["first-eight"][:2] == ["required", "8"]

        for key in ("disagree", "challenger_wrong"):
            figures = page.locator(f".gallery[data-section='{key}'] figure")
            assert figures.count() == len(gallery[key]["rows"]), key
        imgs = page.locator(".gallery img")
        assert imgs.count() == shown
        page.wait_for_function(
            "() => [...document.querySelectorAll('.gallery img')].every(i => i.complete)"
        )
        widths = imgs.evaluate_all("els => els.map(e => e.naturalWidth)")
        assert len(widths) == shown and all(w > 0 for w in widths), widths

        save_screenshot(page, tmp_path / "report-card-trained.png", "trained report card")
    finally:
        page.close()
    assert time.monotonic() - t0 < 20


def test_tabular_gallery_input_shows_as_a_table(browser, tmp_path):  # noqa: F811
    """A task whose renderer gives HTML (a table of fields): the card embeds it in a
    sandboxed frame, and the page's no-network policy still lets the frame render."""
    from evaluation.card_html import render_html
    from retrain.tabular.schema import INPUT_SCHEMA, encode_input
    from retrain.tabular.task import TASK

    shown = TASK.render(encode_input(dict(INPUT_SCHEMA["example"])))
    guess = {"pred": "class_1", "confidence": 0.7}
    row = {"request_id": "t-1", "label": "class_0", "challenger": guess, "champion": None}
    card = {
        "task": "tabular",
        "models": {"challenger": {"version": "v0002", "n": 1, "accuracy": 0.0}, "champion": None},
        "gallery": {
            "limit": 12,
            "disagree": {"total": 0, "rows": []},
            "challenger_wrong": {"total": 1, "rows": [{**row, "shown": shown}]},
        },
    }
    html = tmp_path / "card.html"
    html.write_text(render_html(card))
    page = browser.new_page()
    try:
        page.goto(html.as_uri())
        frame = page.frame_locator(".gallery iframe")
        salary = frame.locator("tr", has=frame.locator("th").get_by_text("salary", exact=True))
        assert salary.locator("td").inner_text(timeout=5000) == "103,125"
    finally:
        page.close()
