"""The parts of a monitor-only task: a model served elsewhere, known to loopwright by its class
names alone (`[task] classes`), watched through what its serving stack logged.

Why a task at all: logging, drift, curation and label sync only need the classes and a way
to show a labeler what was logged. That way is generic here, because nothing is known about
the input's modality: an image (PNG, JPEG, GIF, WebP bytes) is shown as an image; UTF-8
text is shown as text, and a JSON object as a table of its fields (a tabular row logged as
`{"alcohol": 13.2, ...}`); an `input_uri` is shown as a link (and as the image when it
points to one). The Label Studio view is an inline HyperText named `image`, so the rest of
the labeling contract (a `label` Choices, tasks carrying `image`) is the one digits uses.
Anything that needs a model raises `MonitorOnlyError`, which says what to set instead.
"""

from __future__ import annotations

import base64
import html
import io
import json
from collections.abc import Sequence
from xml.sax.saxutils import quoteattr

DEFAULT_PLUGIN = "retrain.digits.task:TASK"  # [task] plugin's default (the embedded demo)
_IMAGE_MAGIC = (
    (b"\x89PNG\r\n\x1a\n", "image/png"),
    (b"\xff\xd8\xff", "image/jpeg"),
    (b"GIF87a", "image/gif"),
    (b"GIF89a", "image/gif"),
)
_IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".gif", ".webp", ".bmp", ".svg")
MAX_TEXT = 20_000  # characters of a text input shown; the rest is cut (and said so)
SHOWN_PIXELS, MAX_PIXELS = 256, 768  # an image's longer side is shown at least / at most this


class MonitorOnlyError(ValueError):
    """A monitor-only task was asked for its model (to train, score or decode inputs)."""


def _no_model(what: str):
    def refuse(*_args, **_kwargs):
        raise MonitorOnlyError(
            f"the task comes from [task] classes only (a model served elsewhere), so it cannot "
            f"{what}: log predictions with `loopwright log-predictions`, or set [task] plugin to "
            "a module:object Task with a model (docs: README, 'Watching a model you serve "
            "elsewhere')"
        )

    return refuse


def image_type(data: bytes) -> str | None:
    """The MIME type of image bytes, from their first bytes; None if not an image.

    >>> image_type(b"\\x89PNG\\r\\n\\x1a\\n..."), image_type(b"hello")
    ('image/png', None)
    """
    for magic, mime in _IMAGE_MAGIC:
        if data.startswith(magic):
            return mime
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    return None


def render_input(data: bytes) -> str:
    """What a labeler sees of a logged `input`: HTML for Label Studio's inline HyperText.

    >>> render_input(b'{"alcohol": 13.2, "hue": 1.04}')
    '<table><tr><th>alcohol</th><td>13.2</td></tr><tr><th>hue</th><td>1.04</td></tr></table>'
    >>> render_input(b"a <b>review</b>")
    '<pre style="white-space: pre-wrap">a &lt;b&gt;review&lt;/b&gt;</pre>'
    """
    if not isinstance(data, bytes | bytearray | memoryview):
        raise ValueError(f"input is a {type(data).__name__}: log raw bytes (or an input_uri)")
    data = bytes(data)
    mime = image_type(data)
    if mime is not None:
        return _image_box(data, mime)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise ValueError(
            f"input is {len(data)} bytes that are neither an image (PNG, JPEG, GIF, WebP) nor "
            "UTF-8 text: log what a labeler can look at (e.g. JSON of the fields, or the image), "
            "or an input_uri, or set [task] plugin to a task whose render() shows this input"
        ) from None
    try:
        parsed = json.loads(text)
    except ValueError:
        parsed = None
    if isinstance(parsed, dict) and parsed:
        rows = "".join(
            f"<tr><th>{html.escape(str(k))}</th><td>{html.escape(_cell(v))}</td></tr>"
            for k, v in parsed.items()
        )
        return f"<table>{rows}</table>"
    cut = f"\n… ({len(text) - MAX_TEXT} more characters)" if len(text) > MAX_TEXT else ""
    return f'<pre style="white-space: pre-wrap">{html.escape(text[:MAX_TEXT] + cut)}</pre>'


def _image_box(data: bytes, mime: str) -> str:
    """Image bytes as a box with the image as its CSS background. Why not `<img src="data:">`:
    Label Studio's HyperText sanitizer drops data URIs from `src` (seen on 1.23.2; the box
    survives). Small images are scaled up (pixelated) so that a person can read them."""
    try:
        from PIL import Image

        width, height = Image.open(io.BytesIO(data)).size
    except Exception:  # an image Pillow cannot read still gets a square box
        width = height = 1
    scale = max(SHOWN_PIXELS / max(width, height), 1.0) if width and height else 1.0
    scale = min(scale, MAX_PIXELS / max(width, height, 1))
    w, h = round(width * scale), round(height * scale)
    uri = f"data:{mime};base64," + base64.b64encode(data).decode("ascii")
    return (
        f'<div style="width: {w}px; height: {h}px; background-image: url({uri}); '
        'background-size: contain; background-repeat: no-repeat; image-rendering: pixelated">'
        "</div>"
    )


def _cell(value) -> str:
    return value if isinstance(value, str) else json.dumps(value)


def render_uri(uri: str) -> str:
    """What a labeler sees of a logged `input_uri`: a link, and the image when it is one.

    >>> render_uri("https://example.org/a.png")
    '<a href="https://example.org/a.png" target="_blank">https://example.org/a.png</a><br/><img src="https://example.org/a.png" style="max-width: 100%"/>'
    """
    if not isinstance(uri, str) or not uri.strip():
        raise ValueError("input_uri is empty: log where the input lives, or the input itself")
    link = html.escape(uri, quote=True)
    out = f'<a href="{link}" target="_blank">{link}</a>'
    if uri.lower().split("?", 1)[0].endswith(_IMAGE_SUFFIXES) or uri.startswith("data:image/"):
        out += f'<br/><img src="{link}" style="max-width: 100%"/>'
    return out


def labeling_config(classes: Sequence[str]) -> str:
    """The Label Studio view: the model's scores, the logged input, one choice per class."""
    choices = "".join(f"    <Choice value={quoteattr(str(c))}/>\n" for c in classes)
    return (
        "<View>\n"
        '  <Header value="$scores" size="6"/>\n'
        '  <HyperText name="image" value="$image" inline="true" clickableLinks="true"/>\n'
        '  <Choices name="label" toName="image" choice="single" showInLine="true">\n'
        f"{choices}"
        "  </Choices>\n"
        "</View>\n"
    )


def monitor_parts(classes: Sequence[str]) -> dict:
    """The `Task` fields of a monitor-only task of these classes (see `retrain.task`)."""
    return {
        "build_model": _no_model("build or train a model"),
        "encode_input": _no_model("encode an input for a model"),
        "decode_inputs": _no_model("decode inputs for a model (score-batch, retrain)"),
        "features": _no_model("compute features from inputs: log them with the prediction"),
        "render": render_input,
        "render_uri": render_uri,
        "labeling_config": labeling_config(classes),
    }
