"""The rows and words of a report card, shared by its HTML page and its Markdown artifact.

Why one place: the page and the Prefect artifact must never disagree on a number or on
the verdict; the renderers only lay these rows out. Cells are plain (unescaped) text.
"""

from __future__ import annotations

from typing import Any

Row = tuple[str, ...]

#: metric rows where a negative delta is the improvement (colouring, reading aids)
LOWER_IS_BETTER = frozenset({"ECE (lower is better)", "latency p50 ms", "latency p99 ms"})


def fmt(v: Any, digits: int = 3) -> str:
    """A number as a table cell: fixed decimals for floats, an em dash for a missing value."""
    if v is None:
        return "—"
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, float):
        return f"{v:.{digits}f}"
    return str(v)


def fmt_delta(v: float | None, digits: int = 3) -> str:
    return "—" if v is None else f"{v:+.{digits}f}"


def models(card: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """(challenger, champion) sections; the champion is None for a first model."""
    m = card.get("models") or {}
    if not m.get("challenger"):
        raise ValueError("card has no models.challenger: build it with report_card.build_card")
    return m["challenger"], m.get("champion")


def verdict(card: dict[str, Any]) -> tuple[str, list[str]]:
    """("PROMOTE" | "KEEP CHAMPION" | "DO NOT PROMOTE" | "NO DECISION", reasons)."""
    gate = card.get("gate")
    if not gate:
        return "NO DECISION", ["the gate has not judged this card yet"]
    _, champion = models(card)
    refused = "KEEP CHAMPION" if champion else "DO NOT PROMOTE"
    label = "PROMOTE" if gate.get("promote") else refused
    return label, [str(r) for r in gate.get("reasons", [])]


def _get(d: dict[str, Any] | None, *path: str) -> Any:
    for key in path:
        if not isinstance(d, dict):
            return None
        d = d.get(key)
    return d


def _passed(m: dict[str, Any] | None) -> str:
    if m is None:
        return "—"
    exps = m.get("expectations") or []
    return f"{sum(1 for e in exps if e.get('passed'))}/{len(exps)}"


def metric_rows(card: dict[str, Any]) -> list[Row]:
    """(metric, champion, challenger, delta) for the headline numbers."""
    ch, cp = models(card)
    deltas = card.get("deltas") or {}

    def acc(m: dict[str, Any] | None) -> str:
        if m is None:
            return "—"
        ci = m.get("accuracy_ci")
        return fmt(m["accuracy"]) + (f" [{fmt(ci[0])}, {fmt(ci[1])}]" if ci else "")

    rows: list[Row] = [
        ("version", fmt(_get(cp, "version")), fmt(ch.get("version")), ""),
        ("eval rows", fmt(_get(cp, "n")), fmt(ch.get("n")), ""),
        ("accuracy [95% CI]", acc(cp), acc(ch), fmt_delta(deltas.get("accuracy"))),
        (
            "macro-F1",
            fmt(_get(cp, "macro_f1")),
            fmt(ch.get("macro_f1")),
            fmt_delta(deltas.get("macro_f1")),
        ),
        (
            "ECE (lower is better)",
            fmt(_get(cp, "ece")),
            fmt(ch.get("ece")),
            fmt_delta(deltas.get("ece")),
        ),
    ]
    for key, label in (("p50_ms", "latency p50 ms"), ("p99_ms", "latency p99 ms")):
        a, b = _get(cp, "latency", key), _get(ch, "latency", key)
        d = None if a is None or b is None else b - a
        rows.append((label, fmt(a, 3), fmt(b, 3), fmt_delta(d, 3)))
    a, b = _get(cp, "latency", "rows_per_s"), _get(ch, "latency", "rows_per_s")
    rows.append(
        (
            "throughput rows/s",
            fmt(a, 0),
            fmt(b, 0),
            fmt_delta(None if a is None or b is None else b - a, 0),
        )
    )
    rows.append(("expectations passed", _passed(cp), _passed(ch), ""))
    return rows


def class_rows(card: dict[str, Any]) -> list[Row]:
    """(class, support, champion F1, challenger F1, delta F1, challenger precision, recall)."""
    ch, cp = models(card)
    deltas = _get(card, "deltas", "per_class") or {}
    rows: list[Row] = []
    for cls, v in (ch.get("per_class") or {}).items():
        rows.append(
            (
                cls,
                fmt(v.get("support")),
                fmt(_get(cp, "per_class", cls, "f1")),
                fmt(v.get("f1")),
                fmt_delta(_get(deltas, cls, "f1")),
                fmt(v.get("precision")),
                fmt(v.get("recall")),
            )
        )
    return rows


def slice_items(card: dict[str, Any]) -> list[tuple[str, int, float | None, float, float | None]]:
    """(slice "key=value", rows, champion accuracy, challenger accuracy, delta) per slice."""
    ch, cp = models(card)
    out = []
    for key, values in (ch.get("slices") or {}).items():
        for value, s in values.items():
            other = _get(cp, "slices", key, value)
            champ_acc = other.get("accuracy") if isinstance(other, dict) else None
            delta = None if champ_acc is None else s["accuracy"] - champ_acc
            out.append((f"{key}={value}", s["n"], champ_acc, s["accuracy"], delta))
    return out


def slice_rows(card: dict[str, Any]) -> list[Row]:
    return [(name, fmt(n), fmt(a), fmt(b), fmt_delta(d)) for name, n, a, b, d in slice_items(card)]


def _result(e: dict[str, Any] | None) -> str:
    if e is None:
        return "—"
    word = "pass" if e.get("passed") else "FAIL"
    return f"{word} ({fmt(e.get('value'))} / {fmt(e.get('threshold'))})"


def expectation_rows(card: dict[str, Any]) -> list[Row]:
    """(name, champion result, challenger result, challenger detail); result = pass/FAIL (value / threshold)."""
    ch, cp = models(card)
    champ = {e["name"]: e for e in (_get(cp, "expectations") or [])}
    return [
        (e["name"], _result(champ.get(e["name"])), _result(e), str(e.get("detail", "")))
        for e in ch.get("expectations") or []
    ]


def facts(card: dict[str, Any]) -> list[tuple[str, str]]:
    """(label, value) lines about what was compared: task, data, eval set, time."""
    ds = card.get("dataset") or {}
    ev = card.get("eval_set") or {}
    return [
        ("task", fmt(card.get("task"))),
        ("created", fmt(card.get("created"))),
        (
            "dataset",
            f"{fmt(ds.get('id'))} (policy {fmt(ds.get('policy'))}, "
            f"{fmt(ds.get('n_train'))} train / {fmt(ds.get('n_test'))} test)",
        ),
        ("eval set", f"{fmt(ev.get('description'))} ({fmt(ev.get('n'))} rows)"),
        *(
            [("eval set version", f"{ev['version']} (parent {fmt(ev.get('parent'))})")]
            if ev.get("version")
            else []
        ),
    ]


def p_value(check: dict[str, Any]) -> Any:
    """A gate check's p-value, under whichever key the gate wrote it."""
    for key in ("p_value", "p", "pvalue"):
        if check.get(key) is not None:
            return check[key]
    return None


def gate_rows(card: dict[str, Any]) -> list[Row]:
    """(check, result, value, limit, test, p-value, detail) per gate check."""
    return [
        (
            str(c.get("name", "")),
            "pass" if c.get("passed") else "FAIL",
            fmt(c.get("value")),
            fmt(c.get("limit")),
            fmt(c.get("test")) if c.get("test") else "—",
            fmt(p_value(c), 4),
            str(c.get("detail", "")),
        )
        for c in _get(card, "gate", "checks") or []
        if isinstance(c, dict)
    ]


def suite_rows(card: dict[str, Any]) -> list[Row]:
    """(suite, required, rows, champion accuracy, challenger accuracy, result, detail)."""
    return [
        (
            str(s.get("name", "")),
            "required" if s.get("required") else "reported",
            fmt(s.get("n")),
            fmt(s.get("champion")),
            fmt(s.get("challenger")),
            "pass" if s.get("passed") else "FAIL",
            str(s.get("detail", "")),
        )
        for s in card.get("suites") or []
        if isinstance(s, dict)
    ]


#: keys that hold a row count in a composition entry given as a list of dicts
COUNT_KEYS = ("n", "rows", "count")


def _leaves(prefix: str, obj: Any) -> list[tuple[str, str]]:
    """(path, value) cells of a nested composition: dict keys join as "key=value"."""
    if isinstance(obj, dict):
        out: list[tuple[str, str]] = []
        for k, v in obj.items():
            if isinstance(v, dict):
                out += _leaves(f"{prefix} {k}".strip(), v)
            else:
                out += _leaves(f"{prefix}={k}" if prefix else str(k), v)
        return out
    if isinstance(obj, list | tuple):
        if all(isinstance(v, dict) for v in obj):  # [{"batch": 3, "n": 40}, ...]
            return [
                (
                    ", ".join(f"{k}={fmt(x)}" for k, x in v.items() if k not in COUNT_KEYS),
                    fmt(next((v[k] for k in COUNT_KEYS if k in v), "")),
                )
                for v in obj
            ]
        return [(prefix, ", ".join(fmt(v) for v in obj))]
    return [(prefix, fmt(obj))]


def composition_rows(card: dict[str, Any]) -> list[tuple[str, list[Row]]]:
    """The eval set's composition as (group, [(value, rows)]) per group (source, slice,
    time...), whatever shape the eval set's writer gave it: nested dicts become
    "key=value" paths, lists are joined; unknown shapes still show as text."""
    comp = _get(card, "eval_set", "composition")
    if comp is None:
        sources = _get(card, "eval_set", "sources")
        comp = {"source": sources} if sources else None
    if not isinstance(comp, dict):
        return [("composition", [("", fmt(comp))])] if comp is not None else []
    out = []
    for group, value in comp.items():
        rows = _leaves("", value) if isinstance(value, dict | list | tuple) else [("", fmt(value))]
        out.append((str(group), [(k or str(group), v) for k, v in rows]))
    return out
