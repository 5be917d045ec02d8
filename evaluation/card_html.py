"""The report card as one self-contained HTML page: inline CSS, inline SVG, no scripts.

Why self-contained: the page is archived next to the model version and opened years later,
offline or from an artifact store; it must not depend on a CDN or on JavaScript. Every
piece of text goes through `html.escape`, since class names and slice values come from users.
"""

from __future__ import annotations

from collections.abc import Sequence
from html import escape
from typing import Any

from evaluation import card_text as ct
from evaluation.gallery_html import GALLERY_CSS, gallery_html

_CSS = (
    """
body{font:14px/1.45 system-ui,sans-serif;margin:2rem auto;max-width:980px;color:#222;padding:0 1rem}
h1{font-size:1.5rem;margin-bottom:.2rem}h2{font-size:1.15rem;margin-top:2rem;border-bottom:1px solid #ddd}
table{border-collapse:collapse;margin:.5rem 0}th,td{padding:.25rem .6rem;border-bottom:1px solid #eee;text-align:right}
th:first-child,td:first-child{text-align:left}th{background:#f6f6f6}
.verdict{padding:1rem 1.2rem;border-radius:6px;margin:1rem 0}.verdict h2{margin:0;border:0;font-size:1.4rem}
.promote{background:#e7f6ea;border:1px solid #3c9a4f}.keep{background:#fdecea;border:1px solid #c0392b}
.pending{background:#f3f3f3;border:1px solid #999}
.pos{color:#1e7b34}.neg{color:#b0302a}.pass{color:#1e7b34;font-weight:600}.fail{color:#b0302a;font-weight:600}
.facts td{text-align:left}.muted{color:#777}svg text{font:11px system-ui,sans-serif;fill:#333}
td.text{text-align:left}h3{font-size:1rem;margin:1rem 0 .2rem}
"""
    + GALLERY_CSS
)

#: no network and no scripts: the page shows only what it carries (data: images, inline CSS)
_CSP = "default-src 'none'; img-src data:; style-src 'unsafe-inline'; frame-src 'self'"

_CHAMP, _CHALL = "#9aa5b1", "#2f6db5"


def _e(s: Any) -> str:
    return escape(str(s), quote=True)


def _cell(
    text: str, numeric_delta: bool = False, lower_is_better: bool = False, prose: bool = False
) -> str:
    """A table cell; a nonzero delta is green when it is an improvement, red otherwise;
    `prose` (a detail sentence) is left-aligned."""
    cls = ' class="text"' if prose else ""
    if numeric_delta and text[:1] in "+-" and text.strip("+-0.") != "":
        better = text.startswith("-") if lower_is_better else text.startswith("+")
        cls = ' class="pos"' if better else ' class="neg"'
    elif text == "pass" or text.startswith("pass ("):
        cls = ' class="pass"'
    elif text == "FAIL" or text.startswith("FAIL ("):
        cls = ' class="fail"'
    return f"<td{cls}>{_e(text)}</td>"


def _table(
    headers: Sequence[str],
    rows: Sequence[Sequence[str]],
    delta_cols: Sequence[int] = (),
    text_cols: Sequence[int] = (),
) -> str:
    if not rows:
        return '<p class="muted">none</p>'
    head = "".join(f"<th>{_e(h)}</th>" for h in headers)
    body = "".join(
        "<tr>"
        + "".join(
            _cell(c, i in delta_cols, r[0] in ct.LOWER_IS_BETTER, i in text_cols)
            for i, c in enumerate(r)
        )
        + "</tr>"
        for r in rows
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _reliability_svg(challenger: dict[str, Any], champion: dict[str, Any] | None) -> str:
    """Challenger bins as bars, champion as dots, the diagonal as perfect calibration."""
    size, pad = 300, 36
    w = size - 2 * pad

    def px(v: float) -> float:
        return pad + v * w

    def py(v: float) -> float:
        return size - pad - v * w

    parts = [
        f'<svg role="img" aria-label="reliability diagram" width="{size}" height="{size}" viewBox="0 0 {size} {size}">',
        f'<rect x="{pad}" y="{pad}" width="{w}" height="{w}" fill="#fafafa" stroke="#ccc"/>',
        f'<line x1="{px(0)}" y1="{py(0)}" x2="{px(1)}" y2="{py(1)}" stroke="#999" stroke-dasharray="4 3"/>',
    ]
    for b in challenger.get("reliability") or []:
        if b.get("count") and b.get("accuracy") is not None:
            x0, x1 = px(b["lo"]), px(b["hi"])
            y = py(b["accuracy"])
            tip = "{:.2f}-{:.2f}: n={}, accuracy {:.3f}, confidence {:.3f}".format(
                b["lo"], b["hi"], b["count"], b["accuracy"], b["confidence"]
            )
            parts.append(
                f'<rect x="{x0 + 1:.1f}" y="{y:.1f}" width="{max(x1 - x0 - 2, 1):.1f}" '
                f'height="{py(0) - y:.1f}" fill="{_CHALL}" fill-opacity="0.75">'
                f"<title>{_e(tip)}</title></rect>"
            )
    for b in (champion or {}).get("reliability") or []:
        if b.get("count") and b.get("accuracy") is not None:
            parts.append(
                f'<circle cx="{px((b["lo"] + b["hi"]) / 2):.1f}" cy="{py(b["accuracy"]):.1f}" r="3" fill="{_CHAMP}" stroke="#555"/>'
            )
    for v in (0, 0.5, 1):
        parts.append(f'<text x="{px(v):.0f}" y="{size - pad + 14}" text-anchor="middle">{v}</text>')
        parts.append(f'<text x="{pad - 6}" y="{py(v) + 4:.0f}" text-anchor="end">{v}</text>')
    parts.append(f'<text x="{size / 2:.0f}" y="{size - 4}" text-anchor="middle">confidence</text>')
    parts.append(
        f'<text x="10" y="{size / 2:.0f}" transform="rotate(-90 10 {size / 2:.0f})" text-anchor="middle">accuracy</text>'
    )
    parts.append("</svg>")
    return "".join(parts)


def _short(name: str, limit: int = 24) -> str:
    """A slice label that fits the chart's label column; the full name is in the table."""
    return name if len(name) <= limit else name[: limit - 1] + "…"


def _slices_svg(items: Sequence[tuple[str, int, float | None, float, float | None]]) -> str:
    """Per slice, a grey bar (champion) above a blue bar (challenger), both on 0..1."""
    if not items:
        return ""
    label_w, bar_w, row_h = 190, 300, 30
    height = row_h * len(items) + 10
    width = label_w + bar_w + 60
    parts = [
        f'<svg role="img" aria-label="accuracy per slice" width="{width}" height="{height}" viewBox="0 0 {width} {height}">'
    ]
    for i, (name, n, champ, chall, _) in enumerate(items):
        y = 5 + i * row_h
        parts.append(
            f'<text x="{label_w - 8}" y="{y + 16}" text-anchor="end">'
            f"<title>{_e(name)}</title>{_e(_short(name))} (n={n})</text>"
        )
        for j, (acc, color) in enumerate(((champ, _CHAMP), (chall, _CHALL))):
            if acc is None:
                continue
            parts.append(
                f'<rect x="{label_w}" y="{y + 2 + j * 12}" width="{acc * bar_w:.1f}" height="10" fill="{color}"/>'
            )
            parts.append(
                f'<text x="{label_w + acc * bar_w + 4:.1f}" y="{y + 11 + j * 12}">{acc:.3f}</text>'
            )
    parts.append("</svg>")
    return "".join(parts)


def _legend() -> str:
    return (
        f'<p class="muted"><span style="color:{_CHAMP}">&#9632;</span> champion '
        f'<span style="color:{_CHALL}">&#9632;</span> challenger</p>'
    )


def _eval_set(card: dict[str, Any]) -> list[str]:
    """The eval set's version, lineage and composition, as far as the card says them."""
    ev = card.get("eval_set") or {}
    facts = [
        (label, ct.fmt(ev.get(key)))
        for key, label in (
            ("version", "version"),
            ("parent", "parent version"),
            ("created", "created"),
            ("n", "rows"),
            ("added", "rows added since the parent"),
            ("recent_rows", "recent rows (the gate's recent view)"),
        )
        if ev.get(key) is not None
    ]
    out = ["<h2>Eval set</h2>", '<table class="facts">']
    out += [f"<tr><th>{_e(k)}</th><td>{_e(v)}</td></tr>" for k, v in facts]
    out.append("</table>")
    for group, rows in ct.composition_rows(card):
        out += [f"<h3>by {_e(group)}</h3>", _table([group, "rows"], rows)]
    return out


def render_html(card: dict[str, Any]) -> str:
    """The whole page, as a string (pure: no file access)."""
    challenger, champion = ct.models(card)
    label, reasons = ct.verdict(card)
    kind = {"PROMOTE": "promote", "NO DECISION": "pending"}.get(label, "keep")
    title = f"Report card: {card.get('task', '')} challenger {challenger.get('version')}"
    out = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f'<meta http-equiv="Content-Security-Policy" content="{_CSP}">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{_e(title)}</title><style>{_CSS}</style></head><body>",
        f"<h1>{_e(title)}</h1>",
        f'<p class="muted">champion {_e(ct.fmt((champion or {}).get("version")))} vs '
        f"challenger {_e(ct.fmt(challenger.get('version')))}</p>",
        f'<div class="verdict {kind}"><h2>{_e(label)}</h2><ul>',
        *(f"<li>{_e(r)}</li>" for r in reasons),
        "</ul></div>",
        '<table class="facts">',
        *(f"<tr><th>{_e(k)}</th><td>{_e(v)}</td></tr>" for k, v in ct.facts(card)),
        "</table>",
        *_eval_set(card),
        "<h2>Metrics</h2>",
        _table(
            ["metric", "champion", "challenger", "delta"], ct.metric_rows(card), delta_cols=(3,)
        ),
        "<h2>Per class</h2>",
        _table(
            [
                "class",
                "support",
                "champion F1",
                "challenger F1",
                "delta F1",
                "challenger precision",
                "challenger recall",
            ],
            ct.class_rows(card),
            delta_cols=(4,),
        ),
        "<h2>Per slice</h2>",
        _table(
            ["slice", "rows", "champion accuracy", "challenger accuracy", "delta"],
            ct.slice_rows(card),
            delta_cols=(4,),
        ),
    ]
    items = ct.slice_items(card)
    if items:
        out += [_legend(), _slices_svg(items)]
    out += gallery_html(card)
    out += [
        "<h2>Expectation tests</h2>",
        _table(
            ["test", "champion", "challenger", "detail"], ct.expectation_rows(card), text_cols=(3,)
        ),
        "<h2>Edge-case suites</h2>",
        _table(
            ["suite", "gate", "rows", "champion", "challenger", "result", "detail"],
            ct.suite_rows(card),
            text_cols=(6,),
        )
        if card.get("suites")
        else '<p class="muted">none: add one with <code>loopwright suite add NAME '
        "--request-ids ...</code> or <code>--where SQL</code></p>",
        "<h2>Calibration</h2>",
        f"<p>ECE challenger {_e(ct.fmt(challenger.get('ece')))}, champion "
        f"{_e(ct.fmt((champion or {}).get('ece')))} (15 equal-width confidence bins; 0 is perfectly calibrated).</p>",
        _legend(),
        _reliability_svg(challenger, champion),
        "<h2>Latency</h2>",
        _table(
            ["metric", "champion", "challenger", "delta"],
            [r for r in ct.metric_rows(card) if r[0].startswith(("latency", "throughput"))],
        ),
        '<p class="muted">p50/p99: one row per call; throughput: one batch of the first eval rows.</p>',
    ]
    if ct.gate_rows(card):
        out += [
            "<h2>Gate checks</h2>",
            _table(
                ["check", "result", "value", "limit", "test", "p-value", "detail"],
                ct.gate_rows(card),
                text_cols=(4, 6),
            ),
        ]
    out.append("</body></html>")
    return "\n".join(out) + "\n"
