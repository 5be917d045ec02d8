"""The simulated annotator (retrain/digits/annotator.py) against a fake adapter."""

from __future__ import annotations

import doctest
from collections import Counter

import pytest

import retrain.digits.annotator as annotator_module
from retrain.digits.annotator import SimulatedAnnotator

CLASSES = [str(i) for i in range(10)]


class FakeAdapter:
    """Records what `label_pending` asks of the labeler (an AnnotatingAdapter or an
    InMemoryLabelStudio in real use)."""

    def __init__(self, pending: list[tuple[int, str]]):
        self.pending = pending
        self.calls: list[tuple[int, str, float | None, str | None]] = []

    def pending_tasks(self, project_id: int) -> list[tuple[int, str]]:
        assert project_id == 4
        return list(self.pending)

    def annotate(self, task_id, label, lead_time=None, annotator=None) -> int:
        self.calls.append((task_id, label, lead_time, annotator))
        return 1000 + task_id


def truth(n: int) -> dict[str, str]:
    return {f"r{i}": CLASSES[i % 10] for i in range(n)}


def test_perfect_annotator_answers_the_truth():
    t = truth(50)
    ann = SimulatedAnnotator(t, CLASSES)
    assert all(ann.answer(r) == y for r, y in t.items())
    assert ann.answer("nobody") is None


def test_answers_are_deterministic_by_seed_and_request_id():
    t = truth(300)
    a = SimulatedAnnotator(t, CLASSES, error_rate=0.3, seed=5)
    b = SimulatedAnnotator(dict(reversed(list(t.items()))), CLASSES, error_rate=0.3, seed=5)
    forward = [a.answer(r) for r in t]
    backward = [b.answer(r) for r in reversed(list(t))][::-1]
    assert forward == backward
    other_seed = SimulatedAnnotator(t, CLASSES, error_rate=0.3, seed=6)
    assert forward != [other_seed.answer(r) for r in t]


def test_error_rate_and_uniform_wrong_answers():
    t = {f"r{i}": "3" for i in range(5000)}
    ann = SimulatedAnnotator(t, CLASSES, error_rate=0.2, seed=1)
    answers = [ann.answer(r) for r in t]
    wrong = [a for a in answers if a != "3"]
    assert 0.18 < len(wrong) / len(answers) < 0.22
    counts = Counter(wrong)
    assert set(counts) == set(CLASSES) - {"3"}
    assert all(80 <= c <= 150 for c in counts.values()), counts
    always_wrong = SimulatedAnnotator(t, CLASSES, error_rate=1.0)
    assert all(always_wrong.answer(r) != "3" for r in list(t)[:200])


def test_label_pending_answers_known_tasks_only():
    t = truth(5)
    fake = FakeAdapter([(11, "r0"), (12, "stranger"), (13, "r3"), (14, "r4")])
    ann = SimulatedAnnotator(t, CLASSES, name="alice")
    assert ann.label_pending(fake, 4) == 3
    assert [(c[0], c[1], c[3]) for c in fake.calls] == [
        (11, "0", "alice"),
        (13, "3", "alice"),
        (14, "4", "alice"),
    ]
    assert all(1.0 <= c[2] <= 5.0 for c in fake.calls)


def test_label_pending_limit():
    fake = FakeAdapter([(i, f"r{i}") for i in range(10)])
    ann = SimulatedAnnotator(truth(10), CLASSES)
    assert ann.label_pending(fake, 4, limit=3) == 3
    assert [c[0] for c in fake.calls] == [0, 1, 2]
    assert ann.label_pending(FakeAdapter([]), 4, limit=0) == 0


@pytest.mark.parametrize("name", ["pending_tasks", "annotate"])
def test_both_labelers_have_what_answering_needs(name):
    import inspect

    from curation.labelstudio_annotate import AnnotatingAdapter
    from curation.labelstudio_memory import InMemoryLabelStudio

    wanted = inspect.signature(getattr(annotator_module._Annotates, name))
    assert inspect.signature(getattr(AnnotatingAdapter, name)) == wanted
    assert inspect.signature(getattr(InMemoryLabelStudio, name)) == wanted


def test_truth_added_later_is_used():
    t: dict[str, str] = {}
    ann = SimulatedAnnotator(t, CLASSES)
    t["late"] = "9"
    assert ann.answer("late") == "9"


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"classes": ["only"]}, "at least 2 distinct"),
        ({"classes": ["a", "a"]}, "at least 2 distinct"),
        ({"error_rate": 1.5}, r"error_rate = 1.5 must be within \[0, 1\]"),
        ({"name": " "}, "name is empty"),
    ],
)
def test_constructor_errors(kwargs, message):
    with pytest.raises(ValueError, match=message):
        SimulatedAnnotator(truth(3), **{"classes": CLASSES, **kwargs})


def test_truth_outside_classes_is_named():
    ann = SimulatedAnnotator({"r1": "cat"}, CLASSES)
    with pytest.raises(ValueError, match=r"truth\['r1'\] = 'cat' is not one of the classes"):
        ann.answer("r1")


def test_doctests():
    assert doctest.testmod(annotator_module).failed == 0
