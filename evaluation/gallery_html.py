"""The report card's gallery as HTML: each input as the task shows it, with both guesses.

Why a module of its own: the inputs are the one part of the page whose markup comes from
the task (its `render`), so how each kind is embedded is decided here, in one place: a
`data:` image as an <img>, `data:` text as escaped <pre>, the task's HTML (a table of fields)
inside a frame sandboxed with no permissions (no script runs, nothing is fetched: the
page's Content-Security-Policy applies to it too).
"""

from __future__ import annotations

import base64
from html import escape
from typing import Any

from evaluation import card_text as ct

GALLERY_CSS = """
.gallery{display:flex;flex-wrap:wrap;gap:.6rem;margin:.5rem 0}
.gallery figure{margin:0;padding:.4rem;border:1px solid #ddd;border-radius:4px;width:190px;font-size:12px}
.gallery img{width:112px;height:auto;image-rendering:pixelated;display:block;margin:0 auto .3rem;border:1px solid #eee}
.gallery iframe{width:100%;height:150px;border:1px solid #eee}.gallery pre{white-space:pre-wrap;margin:0;font-size:11px}
.gallery figcaption div{display:flex;justify-content:space-between}
"""


def _e(s: Any) -> str:
    return escape(str(s), quote=True)


def _shown(row: dict[str, Any]) -> str:
    """A gallery input as the task renders it: a data: image as <img>, data: text as <pre>,
    the task's HTML (a table of fields...) in a sandboxed frame that runs no script."""
    shown, rid = row.get("shown"), str(row.get("request_id", ""))
    if not shown:
        return f'<p class="muted">{_e(row.get("shown_error") or "no input to show")}</p>'
    if shown.startswith("data:image/"):
        return f'<img src="{_e(shown)}" alt="input of {_e(rid)}">'
    if shown.startswith("data:text/plain;base64,"):
        try:
            text = base64.b64decode(shown.split(",", 1)[1]).decode("utf-8", errors="replace")
        except ValueError:
            text = shown
        return f"<pre>{_e(text)}</pre>"
    if shown.startswith("data:"):
        return f'<p class="muted">input of type {_e(shown[5:].split(",", 1)[0])}</p>'
    return f'<iframe sandbox="" title="input of {_e(rid)}" srcdoc="{_e(shown)}"></iframe>'


def _guess(name: str, g: dict[str, Any] | None, label: str) -> str:
    if not g:
        return ""
    mark = "pos" if g.get("pred") == label else "neg"
    return (
        f'<div><span>{_e(name)}</span><span class="{mark}">{_e(g.get("pred"))} '
        f"({_e(ct.fmt(g.get('confidence'), 2))})</span></div>"
    )


def gallery_html(card: dict[str, Any]) -> list[str]:
    """Two capped lists of eval inputs: disagreements, then the challenger's mistakes."""
    gallery = card.get("gallery")
    if not isinstance(gallery, dict):
        return []
    out = ["<h2>Gallery</h2>"]
    for key, title in (
        ("disagree", "Where challenger and champion disagree"),
        ("challenger_wrong", "Where the challenger is wrong"),
    ):
        section = gallery.get(key) or {}
        rows = section.get("rows") or []
        out.append(
            f"<h3>{_e(title)} ({len(rows)} shown of {_e(section.get('total', len(rows)))}, "
            "most confident first)</h3>"
        )
        if not rows:
            out.append('<p class="muted">none</p>')
            continue
        out.append(f'<div class="gallery" data-section="{_e(key)}">')
        for r in rows:
            label = str(r.get("label", ""))
            out.append(
                f"<figure>{_shown(r)}<figcaption><div><span>id</span>"
                f"<span>{_e(r.get('request_id'))}</span></div>"
                f"<div><span>label</span><span>{_e(label)}</span></div>"
                f"{_guess('challenger', r.get('challenger'), label)}"
                f"{_guess('champion', r.get('champion'), label)}</figcaption></figure>"
            )
        out.append("</div>")
    return out
