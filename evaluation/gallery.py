"""The report card's gallery: the eval inputs a reviewer should look at before signing off.

Why a gallery: tables say how often the challenger is wrong, not on what. Two short lists
answer that: the rows where challenger and champion disagree (what promotion would change
for users) and the rows the challenger gets wrong (what it still cannot do). Each list is
capped and ordered by the challenger's confidence, most confident first (a confident
mistake is the costly kind), then by request_id, so the same card always shows the same
rows. Selection is pure; how an input looks is the task's renderer, passed in.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

#: rows shown per list (disagreements, challenger mistakes); the JSON keeps only these
DEFAULT_LIMIT = 12


def _guess(probs: np.ndarray, i: int, classes: Sequence[str]) -> dict[str, Any]:
    k = int(np.argmax(probs[i]))
    return {"pred": classes[k], "confidence": round(float(probs[i, k]), 4)}


def _order(idx: np.ndarray, conf: np.ndarray, request_ids: Sequence[str]) -> list[int]:
    """Most confident first, then request_id ascending (deterministic on ties)."""
    return sorted((int(i) for i in idx), key=lambda i: (-float(conf[i]), str(request_ids[i])))


def select_gallery(
    request_ids: Sequence[str],
    y: Sequence[int] | np.ndarray,
    challenger_probs: np.ndarray,
    champion_probs: np.ndarray | None,
    classes: Sequence[str],
    limit: int = DEFAULT_LIMIT,
) -> dict[str, Any]:
    """Which eval rows the card shows: `{"limit", "disagree": {"total", "rows"},
    "challenger_wrong": {"total", "rows"}}`; a row is `{"index", "request_id", "label",
    "challenger": {"pred", "confidence"}, "champion": {...} | None}` (`index`: its position in
    the eval rows, for the renderer). Without a champion there is nothing to disagree with.

    >>> p_new = np.array([[0.9, 0.1], [0.2, 0.8], [0.6, 0.4], [0.3, 0.7]])
    >>> p_old = np.array([[0.9, 0.1], [0.7, 0.3], [0.2, 0.8], [0.4, 0.6]])
    >>> g = select_gallery(["a", "b", "c", "d"], [0, 0, 0, 1], p_new, p_old, ["x", "y"])
    >>> [r["request_id"] for r in g["disagree"]["rows"]], g["challenger_wrong"]["total"]
    (['b', 'c'], 1)
    """
    if isinstance(limit, bool) or not isinstance(limit, int) or limit < 0:
        raise ValueError(f"gallery limit = {limit!r}: a whole number of rows >= 0")
    y_arr = np.asarray(y, dtype=np.int64)
    ch = np.asarray(challenger_probs, dtype=np.float64)
    n = len(request_ids)
    if ch.shape != (n, len(classes)) or y_arr.shape != (n,):
        raise ValueError(
            f"gallery got {n} request ids, {y_arr.shape[0]} labels and challenger probs of "
            f"shape {ch.shape}: pass one label and one probability row ({len(classes)} classes) "
            "per eval row"
        )
    cp = None if champion_probs is None else np.asarray(champion_probs, dtype=np.float64)
    if cp is not None and cp.shape != ch.shape:
        raise ValueError(
            f"champion probs have shape {cp.shape}, challenger {ch.shape}: score both models "
            "on the same eval rows"
        )
    pred = ch.argmax(axis=1) if n else np.zeros(0, np.int64)
    conf = ch.max(axis=1) if n else np.zeros(0)
    wrong = np.flatnonzero(pred != y_arr)
    disagree = np.flatnonzero(pred != cp.argmax(axis=1)) if cp is not None and n else wrong[:0]

    def row(i: int) -> dict[str, Any]:
        return {
            "index": i,
            "request_id": str(request_ids[i]),
            "label": classes[int(y_arr[i])],
            "challenger": _guess(ch, i, classes),
            "champion": _guess(cp, i, classes) if cp is not None else None,
        }

    def section(idx: np.ndarray) -> dict[str, Any]:
        return {
            "total": int(idx.size),
            "rows": [row(i) for i in _order(idx, conf, request_ids)[:limit]],
        }

    return {"limit": limit, "disagree": section(disagree), "challenger_wrong": section(wrong)}


def attach_inputs(gallery: dict[str, Any], show: Callable[[int], str | None]) -> dict[str, Any]:
    """The gallery with each row's input as the task shows it (`show(index)`: a data URI or an
    HTML fragment, from the task's `render`), and without the internal `index`. A row whose
    input cannot be shown keeps `shown: None` and the reason in `shown_error`, so one odd
    input never costs the card."""
    cache: dict[int, tuple[str | None, str | None]] = {}

    def shown(i: int) -> tuple[str | None, str | None]:
        if i not in cache:
            try:
                cache[i] = (show(i), None)
            except (ValueError, TypeError, OSError) as exc:
                cache[i] = (None, str(exc))
        return cache[i]

    out = dict(gallery)
    for key in ("disagree", "challenger_wrong"):
        rows = []
        for r in (gallery.get(key) or {}).get("rows", []):
            r = dict(r)
            text, error = shown(r.pop("index"))
            r["shown"] = text
            if error:
                r["shown_error"] = error
            rows.append(r)
        out[key] = {**gallery[key], "rows": rows}
    return out


def build_gallery(
    request_ids: Sequence[str],
    inputs: Sequence[bytes | None],
    y: Sequence[int] | np.ndarray,
    challenger_probs: np.ndarray,
    champion_probs: np.ndarray | None,
    classes: Sequence[str],
    render: Callable[[bytes], str],
    limit: int = DEFAULT_LIMIT,
) -> dict[str, Any]:
    """`select_gallery`, then each shown row's stored input through the task's `render`
    (only the shown rows are rendered: the card's JSON stays small)."""
    gallery = select_gallery(request_ids, y, challenger_probs, champion_probs, classes, limit)

    def show(i: int) -> str | None:
        data = inputs[i]
        if data is None:
            raise ValueError("no input was logged for this row (only an input_uri, or nothing)")
        return render(data)

    return attach_inputs(gallery, show)
