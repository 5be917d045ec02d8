"""Report card: evaluate a fake model, build the card, write HTML/JSON, render Markdown."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from evaluation.gate import GateRules, decide
from evaluation.report_card import ModelEval, build_card, card_markdown, evaluate_model, write_card
from retrain.task import Expectation, ExpectationResult

CLASSES = ("zero", "one", "two")
# the "model" reads its answer from column 0 and its confidence from column 1
X = np.array([[0, 0.9], [1, 0.8], [2, 0.7], [0, 0.6], [1, 0.9], [2, 0.9]])
Y = np.array([0, 1, 2, 1, 1, 0])
ATTRS = [{"device": "a"}, {"device": "a"}, {"device": "b"}, {"device": "b"}, {"device": "a"}, {}]


def predict(x: np.ndarray) -> np.ndarray:
    out = np.empty((len(x), 3))
    for i, (cls, conf) in enumerate(x):
        out[i] = (1 - conf) / 2
        out[i, int(cls)] = conf
    return out


def always_zero(x: np.ndarray) -> np.ndarray:
    return np.tile([0.5, 0.3, 0.2], (len(x), 1))


def _good(p, x, y) -> ExpectationResult:
    return ExpectationResult("x", True, 1.0, 0.9, "stable")


def _raises(p, x, y) -> ExpectationResult:
    raise KeyError("noise")


EXPS = (Expectation("stable", "", _good), Expectation("noisy", "", _raises))


def evaluate(name: str, fn, version: str) -> ModelEval:
    return evaluate_model(
        name=name,
        version=version,
        predict_proba=fn,
        x=X,
        y=Y,
        attrs=ATTRS,
        classes=CLASSES,
        slice_keys=["device"],
        expectations=EXPS,
        latency_rows=4,
    )


def test_evaluate_model_values() -> None:
    m = evaluate("challenger", predict, "v2")
    assert (m.name, m.version, m.n) == ("challenger", "v2", 6)
    assert m.accuracy == pytest.approx(4 / 6)
    # wrong rows: 3 (pred 0, true 1) and 5 (pred 2, true 0)
    assert m.per_class["zero"] == {"precision": 0.5, "recall": 0.5, "f1": 0.5, "support": 2}
    assert m.macro_f1 == pytest.approx((0.5 + 0.8 + 2 / 3) / 3)
    assert m.slices == {
        "device": {
            "(missing)": {"n": 1, "accuracy": 0.0},
            "a": {"n": 3, "accuracy": 1.0},
            "b": {"n": 2, "accuracy": 0.5},
        }
    }
    # 15 bins: 0.9 x3 (right, right, wrong), 0.8 right, 0.7 right, 0.6 wrong
    expected_ece = (3 * abs(2 / 3 - 0.9) + abs(1 - 0.8) + abs(1 - 0.7) + abs(0 - 0.6)) / 6
    assert m.ece == pytest.approx(expected_ece)
    assert len(m.reliability) == 15
    assert [e.passed for e in m.expectations] == [True, False]
    assert m.expectations[0].name == "stable"
    assert m.expectations[1].detail == "raised KeyError: 'noise'"
    assert set(m.latency) == {"p50_ms", "p99_ms", "rows_per_s"}


def test_evaluate_model_checks_probability_shape() -> None:
    with pytest.raises(ValueError, match=r"predict_proba returned shape \(6, 2\)"):
        evaluate_model(
            name="challenger",
            version="v",
            predict_proba=lambda x: np.ones((len(x), 2)) / 2,
            x=X,
            y=Y,
            attrs=None,
            classes=CLASSES,
            slice_keys=[],
            expectations=[],
            latency_rows=0,
        )


def _card(with_champion: bool = True) -> dict:
    return build_card(
        challenger=evaluate("challenger", predict, "v2"),
        champion=evaluate("champion", always_zero, "v1") if with_champion else None,
        task="digits",
        dataset={"id": "ds-7", "policy": "sliding", "n_train": 500, "n_test": 6},
        eval_set={"description": "holdout", "n": 6},
        created="2025-01-01T00:00:00Z",
    )


def test_build_card_deltas_and_json() -> None:
    c = _card()
    assert c["models"]["champion"]["accuracy"] == pytest.approx(2 / 6)
    assert c["deltas"]["accuracy"] == pytest.approx(2 / 6)
    assert c["deltas"]["per_class"]["zero"]["recall"] == pytest.approx(0.5 - 1.0)
    assert c["deltas"]["slices"]["device"]["a"] == {
        "accuracy": pytest.approx(2 / 3),
        "n_challenger": 3,
        "n_champion": 3,
    }
    lo, hi = c["models"]["challenger"]["accuracy_ci"]
    assert lo < 4 / 6 < hi
    # NaN from the failed expectation becomes null: strict JSON
    assert c["models"]["challenger"]["expectations"][1]["value"] is None
    assert json.loads(json.dumps(c, allow_nan=False)) == c
    assert "gate" not in c


def test_build_card_without_champion() -> None:
    c = _card(with_champion=False)
    assert c["models"]["champion"] is None and c["deltas"] is None


def test_build_card_refuses_different_eval_sets() -> None:
    small = evaluate_model(
        name="champion",
        version="v1",
        predict_proba=predict,
        x=X[:3],
        y=Y[:3],
        attrs=None,
        classes=CLASSES,
        slice_keys=[],
        expectations=[],
        latency_rows=0,
    )
    with pytest.raises(ValueError, match="same eval set"):
        build_card(
            challenger=evaluate("challenger", predict, "v2"),
            champion=small,
            task="t",
            dataset={},
            eval_set={},
        )
    with pytest.raises(ValueError, match="eval_set n = 9"):
        build_card(challenger=small, champion=None, task="t", dataset={}, eval_set={"n": 9})


def test_write_card_html_and_json(tmp_path: Path) -> None:
    c = _card()
    c["gate"] = decide(c, GateRules(min_eval_rows=5)).to_dict()
    write_card(c, tmp_path / "cards" / "v2.json", tmp_path / "cards" / "v2.html")
    assert json.loads((tmp_path / "cards" / "v2.json").read_text()) == c
    html = (tmp_path / "cards" / "v2.html").read_text()
    assert html.startswith("<!DOCTYPE html>")
    assert "v1" in html and "v2" in html
    assert "KEEP CHAMPION" in html  # the failed "noisy" expectation refuses
    assert (
        "expectation noisy failed (the champion meets it): raised KeyError: &#x27;noise&#x27;"
        in html
    )
    assert "<svg" in html and "reliability diagram" in html and "accuracy per slice" in html
    assert "http://" not in html and "https://" not in html
    assert '<td class="neg">+0.133</td>' in html  # ECE went up: a regression, shown red
    assert "<script" not in html
    assert not list((tmp_path / "cards").glob("*.tmp"))


def test_html_escapes_user_text(tmp_path: Path) -> None:
    c = _card()
    c["task"] = "<script>alert(1)</script>"
    c["models"]["challenger"]["slices"]["device"]['<b>"x"</b>'] = {"n": 1, "accuracy": 1.0}
    write_card(c, tmp_path / "c.json", tmp_path / "c.html")
    html = (tmp_path / "c.html").read_text()
    assert "<script>" not in html and "&lt;script&gt;" in html
    assert "<b>" not in html and "&lt;b&gt;&quot;x&quot;" in html
    assert "NO DECISION" in html


def test_promote_verdict_in_html(tmp_path: Path) -> None:
    c = build_card(
        challenger=evaluate_model(
            name="challenger",
            version="v9",
            predict_proba=predict,
            x=X,
            y=Y,
            attrs=ATTRS,
            classes=CLASSES,
            slice_keys=["device"],
            expectations=EXPS[:1],
            latency_rows=0,
        ),
        champion=None,
        task="digits",
        dataset={"id": "d"},
        eval_set={"description": "h"},
    )
    c["gate"] = decide(c, GateRules(min_eval_rows=5)).to_dict()
    write_card(c, tmp_path / "c.json", tmp_path / "c.html")
    html = (tmp_path / "c.html").read_text()
    assert "PROMOTE" in html and "v9" in html and "no champion yet" in html


def test_markdown_essentials_and_size() -> None:
    c = _card()
    c["gate"] = decide(c, GateRules(min_eval_rows=5)).to_dict()
    md = card_markdown(c)
    assert md.startswith("# KEEP CHAMPION: digits challenger v2 vs champion v1")
    assert "| accuracy [95% CI] |" in md and "| device=b |" in md and "FAIL" in md
    assert len(md.encode()) < 5000


def test_markdown_stays_small_on_a_huge_card() -> None:
    c = _card()
    ch = c["models"]["challenger"]
    ch["per_class"] = {
        f"class-{i}|x": {"precision": 0.5, "recall": 0.5, "f1": 0.5, "support": 9}
        for i in range(300)
    }
    ch["slices"] = {"cohort": {f"c{i}": {"n": 50, "accuracy": i / 500} for i in range(300)}}
    ch["expectations"] = [
        {"name": f"e{i}", "passed": False, "value": 0.1, "threshold": 0.9, "detail": "y" * 500}
        for i in range(50)
    ]
    md = card_markdown(c)
    assert len(md.encode()) < 5000
    assert md.startswith("# NO DECISION")
    assert "class-" in md and "\\|x" in md  # pipes escaped
    assert "| cohort=c0 |" in md  # worst slice kept
