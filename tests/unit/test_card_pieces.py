"""The report card's new pieces in its HTML page and its Markdown artifact: gallery, eval set
version and composition, created time, gate checks with their test and p-value, suites."""

from __future__ import annotations

import base64
import re

import numpy as np
import pytest

from evaluation.card_html import render_html
from evaluation.card_markdown import card_markdown
from evaluation.report_card import build_card, evaluate_model

CLASSES = ("zero", "one")
PNG = "data:image/png;base64,iVBORw0KGgo="
EVIL = '<script>alert("x")</script>'


def model(name, version, fn):
    x = np.array([[0.0], [1.0], [1.0], [0.0]])
    return evaluate_model(
        name=name,
        version=version,
        predict_proba=fn,
        x=x,
        y=np.array([0, 1, 0, 1]),
        attrs=[{"device": "a"}] * 4,
        classes=CLASSES,
        slice_keys=["device"],
        expectations=(),
        latency_rows=0,
    )


@pytest.fixture
def card() -> dict:
    card = build_card(
        challenger=model("challenger", "v0002", lambda x: np.hstack([1 - x, x])),
        champion=model("champion", "v0001", lambda x: np.tile([0.6, 0.4], (len(x), 1))),
        task="digits",
        dataset={"id": "ds-0002", "policy": "all", "n_train": 10, "n_test": 4},
        eval_set={"description": "held out", "n": 4},
        created="2026-12-02T18:00:00+00:00",
    )
    card["eval_set"].update(
        version="ev-0003",
        parent="ev-0002",
        recent_rows=2,
        composition={
            "source": {"seed": 1, "labelstudio": 3},
            "slice": {"device": {"a": 4}},
            "time": [{"batch": 7, "n": 3}, {"batch": "seed", "n": 1}],
        },
    )
    card["gate"] = {
        "promote": False,
        "reasons": ["recent: not significantly better (p = 0.3125)"],
        "checks": [
            {"name": "recent_better", "passed": False, "value": 0.5, "limit": 0.05,
             "detail": "exact one-sided McNemar", "test": "mcnemar_exact", "p_value": 0.3125},
            {"name": "eval_rows", "passed": True, "value": 4, "limit": 2, "detail": "ok"},
        ],
    }  # fmt: skip
    card["suites"] = [
        {"name": "scanner-b", "required": True, "n": 3, "challenger": 2 / 3, "champion": 1.0,
         "passed": False, "detail": "challenger 0.667 vs champion 1.000 on 3 rows: FAIL"},
    ]  # fmt: skip
    text = "data:text/plain;base64," + base64.b64encode(b"12.5, 3 <b>").decode()
    guess = {"pred": "one", "confidence": 0.9}
    card["gallery"] = {
        "limit": 12,
        "disagree": {
            "total": 5,
            "rows": [
                {"request_id": EVIL, "label": "zero", "challenger": guess,
                 "champion": {"pred": "zero", "confidence": 0.6}, "shown": PNG},
                {"request_id": "r2", "label": "one", "challenger": guess, "champion": None,
                 "shown": "<table><tr><th>f</th><td>1</td></tr></table>"},
            ],
        },
        "challenger_wrong": {
            "total": 2,
            "rows": [
                {"request_id": "r3", "label": "zero", "challenger": guess, "champion": None,
                 "shown": text},
                {"request_id": "r4", "label": "zero", "challenger": guess, "champion": None,
                 "shown": None, "shown_error": "no input was logged"},
            ],
        },
    }  # fmt: skip
    return card


def test_html_shows_the_new_pieces(card):
    page = render_html(card)
    assert "<tr><th>created</th><td>2026-12-02T18:00:00+00:00</td></tr>" in page
    assert "<tr><th>version</th><td>ev-0003</td></tr>" in page
    assert "<tr><th>parent version</th><td>ev-0002</td></tr>" in page
    assert "<h3>by source</h3>" in page and "<td>labelstudio</td><td>3</td>" in page
    assert "<td>device=a</td><td>4</td>" in page and "<td>batch=7</td><td>3</td>" in page
    # gate checks: test and p-value columns
    assert "<th>test</th><th>p-value</th>" in page
    assert (
        '<td class="text">mcnemar_exact</td><td>0.3125</td><td class="text">exact one-sided McNemar</td>'
        in (page)
    )
    assert re.search(r'<td>eval_rows</td>.*?<td class="text">—</td><td>—</td>', page)
    # suites
    assert (
        "<td>scanner-b</td><td>required</td><td>3</td><td>1.000</td><td>0.667</td>"
        '<td class="fail">FAIL</td>' in page
    )
    # gallery: the image, the task's HTML sandboxed, text escaped, a missing input said
    assert '<div class="gallery" data-section="disagree">' in page
    assert f'<img src="{PNG}" alt="input of &lt;script&gt;' in page
    assert '<iframe sandbox="" title="input of r2" srcdoc="&lt;table&gt;&lt;tr&gt;' in page
    assert "<pre>12.5, 3 &lt;b&gt;</pre>" in page
    assert '<p class="muted">no input was logged</p>' in page
    assert "(2 shown of 5, most confident first)" in page
    assert '<span class="neg">one (0.90)</span>' in page  # the challenger's wrong guess
    assert '<span class="pos">zero (0.60)</span>' in page  # the champion's right one


def test_html_stays_self_contained_and_escaped(card):
    page = render_html(card)
    assert EVIL not in page and "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;" in page
    assert "<script" not in page
    assert not re.search(r"""(src|href)=["']https?:""", page)
    assert "Content-Security-Policy" in page and "default-src 'none'" in page


def test_html_without_the_new_pieces_still_renders(card):
    for key in ("gallery", "suites"):
        card.pop(key)
    card["eval_set"] = {"description": "held out", "n": 4, "sources": {"seed": 4}}
    card["gate"]["checks"] = [{"name": "x", "passed": True}]  # no value, test, p
    card["created"] = None
    page = render_html(card)
    assert "<h2>Gallery</h2>" not in page
    assert "none: add one with <code>loopwright suite add NAME" in page
    assert "<td>seed</td><td>4</td>" in page  # composition falls back to the sources count
    assert "<tr><th>created</th><td>—</td></tr>" in page


def test_markdown_has_suites_gate_checks_and_gallery_counts(card):
    md = card_markdown(card)
    assert "## Edge-case suites" in md
    assert "| scanner-b | required | 3 | 1.000 | 0.667 | FAIL |" in md
    assert "| recent_better | FAIL | 0.500 | 0.050 | mcnemar_exact | 0.3125 |" in md
    assert "5 rows where the models disagree, 2 the challenger gets wrong" in md
    assert "**eval set version** ev-0003 (parent ev-0002)" in md
    assert "data:image" not in md  # images stay in the HTML page
