"""The card's gallery: which eval rows it shows, in which order, and how inputs are attached."""

from __future__ import annotations

import numpy as np
import pytest

from evaluation.gallery import attach_inputs, build_gallery, select_gallery

CLASSES = ["a", "b", "c"]
IDS = ["r5", "r1", "r3", "r2", "r4", "r0"]
Y = [0, 1, 2, 0, 1, 2]
# challenger: r5 right (a .9); r1 wrong (c .6); r3 right (c .5); r2 wrong (b .6); r4 wrong (a .8);
# r0 right (c .6)
CH = np.array(
    [
        [0.9, 0.05, 0.05],
        [0.2, 0.2, 0.6],
        [0.25, 0.25, 0.5],
        [0.1, 0.6, 0.3],
        [0.8, 0.1, 0.1],
        [0.2, 0.2, 0.6],
    ]
)
# champion: r5 a, r1 b, r3 a, r2 b, r4 a, r0 b
CP = np.array(
    [
        [0.7, 0.2, 0.1],
        [0.1, 0.8, 0.1],
        [0.5, 0.3, 0.2],
        [0.2, 0.7, 0.1],
        [0.9, 0.05, 0.05],
        [0.3, 0.6, 0.1],
    ]
)


def ids(section):
    return [r["request_id"] for r in section["rows"]]


def test_disagreements_and_mistakes_most_confident_first_then_by_id():
    g = select_gallery(IDS, Y, CH, CP, CLASSES)
    # disagree: r1 (c vs b, .6), r3 (c vs a, .5), r0 (c vs b, .6); ties at .6 by id
    assert ids(g["disagree"]) == ["r0", "r1", "r3"]
    assert g["disagree"]["total"] == 3
    # wrong: r4 (.8), then r1 and r2 at .6 by id
    assert ids(g["challenger_wrong"]) == ["r4", "r1", "r2"]
    assert g["limit"] == 12
    assert g["challenger_wrong"]["rows"][0] == {
        "index": 4,
        "request_id": "r4",
        "label": "b",
        "challenger": {"pred": "a", "confidence": 0.8},
        "champion": {"pred": "a", "confidence": 0.9},
    }


def test_limit_caps_rows_but_not_totals():
    g = select_gallery(IDS, Y, CH, CP, CLASSES, limit=1)
    assert ids(g["disagree"]) == ["r0"] and g["disagree"]["total"] == 3
    assert ids(g["challenger_wrong"]) == ["r4"] and g["challenger_wrong"]["total"] == 3


def test_first_model_has_mistakes_but_nothing_to_disagree_with():
    g = select_gallery(IDS, Y, CH, None, CLASSES)
    assert g["disagree"] == {"total": 0, "rows": []}
    assert ids(g["challenger_wrong"]) == ["r4", "r1", "r2"]
    assert g["challenger_wrong"]["rows"][0]["champion"] is None


def test_empty_eval_set():
    g = select_gallery([], [], np.zeros((0, 3)), np.zeros((0, 3)), CLASSES)
    assert g["disagree"]["total"] == 0 and g["challenger_wrong"]["rows"] == []


def test_bad_shapes_name_the_fix():
    with pytest.raises(ValueError, match="one label and one probability row"):
        select_gallery(IDS, Y[:5], CH, CP, CLASSES)
    with pytest.raises(ValueError, match="score both models on the same eval rows"):
        select_gallery(IDS, Y, CH, CP[:, :2], CLASSES)
    with pytest.raises(ValueError, match="gallery limit"):
        select_gallery(IDS, Y, CH, CP, CLASSES, limit=-1)


def test_inputs_rendered_for_shown_rows_only_and_errors_kept():
    rendered = []

    def render(data: bytes) -> str:
        rendered.append(data)
        if data == b"bad":
            raise ValueError("cannot read bad")
        return "data:image/png;base64," + data.decode()

    inputs = [b"i5", b"i1", b"i3", b"bad", b"i4", None]
    g = build_gallery(IDS, inputs, Y, CH, CP, CLASSES, render, limit=2)
    assert [r["shown"] for r in g["disagree"]["rows"]] == [None, "data:image/png;base64,i1"]
    assert g["disagree"]["rows"][0]["shown_error"].startswith("no input was logged")
    wrong = g["challenger_wrong"]["rows"]
    assert [r["request_id"] for r in wrong] == ["r4", "r1"]
    assert [r["shown"] for r in wrong] == ["data:image/png;base64,i4", "data:image/png;base64,i1"]
    assert all("index" not in r for r in wrong)
    assert sorted(rendered) == [b"i1", b"i4"]  # r1 shown twice, rendered once; r2 never shown


def test_attach_inputs_keeps_the_reason_a_row_cannot_be_shown():
    g = select_gallery(IDS, Y, CH, None, CLASSES, limit=1)

    def show(i: int) -> str:
        raise OSError("unreadable image")

    row = attach_inputs(g, show)["challenger_wrong"]["rows"][0]
    assert row["shown"] is None and row["shown_error"] == "unreadable image"


def test_docstring_examples():
    import doctest

    from evaluation import gallery

    result = doctest.testmod(gallery)
    assert result.attempted > 0 and result.failed == 0
