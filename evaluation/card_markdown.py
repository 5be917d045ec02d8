"""The report card's essentials as Markdown, for a Prefect markdown artifact.

Why a size budget: an artifact is read in the Prefect UI at a glance, and a card with
many classes or slices would bury the verdict; long tables keep their worst rows first
and say how many rows were left out. The full card is in the HTML page and the JSON.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from evaluation import card_text as ct

#: the Markdown stays under this many bytes (UTF-8)
MAX_BYTES = 5000


def _md(s: str) -> str:
    """A table cell: pipes escaped, newlines flattened, so user text cannot break the table."""
    return str(s).replace("\\", "\\\\").replace("|", "\\|").replace("\n", " ").replace("\r", " ")


def _table(headers: Sequence[str], rows: Sequence[Sequence[str]], cap: int | None) -> list[str]:
    if not rows:
        return ["_none_", ""]
    shown = rows if cap is None else rows[:cap]
    lines = [
        "| " + " | ".join(_md(h) for h in headers) + " |",
        "|" + "|".join("---" for _ in headers) + "|",
        *("| " + " | ".join(_md(c) for c in r) + " |" for r in shown),
    ]
    if len(shown) < len(rows):
        lines.append(f"\n_{len(rows) - len(shown)} more rows in the HTML card_")
    return [*lines, ""]


def _worst_first(rows: list[tuple[str, ...]], delta_col: int) -> list[tuple[str, ...]]:
    """Most negative delta first (a missing delta sorts last): regressions are what matter."""

    def key(r: tuple[str, ...]) -> float:
        try:
            return float(r[delta_col])
        except ValueError:
            return float("inf")

    return sorted(rows, key=key)


def _render(card: dict[str, Any], cap: int | None, detail_chars: int) -> str:
    challenger, champion = ct.models(card)
    label, reasons = ct.verdict(card)
    lines = [
        f"# {_md(label)}: {_md(card.get('task', ''))} challenger "
        f"{_md(ct.fmt(challenger.get('version')))} vs champion "
        f"{_md(ct.fmt((champion or {}).get('version')))}",
        "",
        *(f"- {_md(r)[:detail_chars]}" for r in reasons),
        "",
        " · ".join(f"**{k}** {_md(v)}" for k, v in ct.facts(card)),
        "",
        "## Metrics",
        *_table(["metric", "champion", "challenger", "delta"], ct.metric_rows(card), None),
    ]
    exps = [
        (name, champ, chall, detail[:detail_chars])
        for name, champ, chall, detail in ct.expectation_rows(card)
    ]
    failing = [r for r in exps if r[2].startswith("FAIL")]
    lines += [
        "## Expectation tests",
        *_table(
            ["test", "champion", "challenger", "detail"],
            failing + [r for r in exps if r not in failing],
            cap,
        ),
    ]
    suites = [(*r[:6], r[6][:detail_chars]) for r in ct.suite_rows(card)]
    if suites:
        failing = [r for r in suites if r[5] == "FAIL"]
        lines += [
            "## Edge-case suites",
            *_table(
                ["suite", "gate", "rows", "champion", "challenger", "result", "detail"],
                failing + [r for r in suites if r not in failing],
                cap,
            ),
        ]
    checks = [r[:6] for r in ct.gate_rows(card)]
    if checks:
        lines += [
            "## Gate checks",
            *_table(["check", "result", "value", "limit", "test", "p-value"], checks, cap),
        ]
    gallery = card.get("gallery") or {}
    if gallery:
        counts = {
            k: (gallery.get(k) or {}).get("total", 0) for k in ("disagree", "challenger_wrong")
        }
        lines += [
            f"_Gallery (HTML card): {counts['disagree']} rows where the models disagree, "
            f"{counts['challenger_wrong']} the challenger gets wrong._",
            "",
        ]
    lines += [
        "## Per slice (worst first)",
        *_table(
            ["slice", "rows", "champion", "challenger", "delta"],
            _worst_first(ct.slice_rows(card), 4),
            cap,
        ),
        "## Per class (worst first)",
        *_table(
            ["class", "support", "champion F1", "challenger F1", "delta F1"],
            _worst_first([r[:5] for r in ct.class_rows(card)], 4),
            cap,
        ),
    ]
    return "\n".join(lines).rstrip() + "\n"


def card_markdown(card: dict[str, Any]) -> str:
    """Verdict, reasons, headline metrics, expectations, slices and classes, under 5 KB.

    Tables are shortened (worst rows kept) until the text fits `MAX_BYTES`.
    """
    text = ""
    for cap, detail_chars in ((None, 300), (20, 200), (10, 120), (5, 80), (0, 60)):
        text = _render(card, cap, detail_chars)
        if len(text.encode("utf-8")) <= MAX_BYTES:
            return text
    cut = text.encode("utf-8")[: MAX_BYTES - 40].decode("utf-8", errors="ignore")
    return cut.rstrip() + "\n\n_(truncated: see the HTML card)_\n"
