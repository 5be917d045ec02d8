"""Small helpers shared by the bench scripts: timing, medians, peak memory, printing."""

from __future__ import annotations

import json
import os
import platform
import resource
import statistics
import sys
import time
from collections.abc import Callable
from typing import Any


def timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    t0 = time.perf_counter()
    out = fn()
    return time.perf_counter() - t0, out


def median(xs: list[float]) -> float:
    return float(statistics.median(xs))


def peak_rss_mb(children: bool = False) -> float:
    """Peak resident set size of this process (or of its waited-for children), in MB."""
    who = resource.RUSAGE_CHILDREN if children else resource.RUSAGE_SELF
    return resource.getrusage(who).ru_maxrss / 1024  # Linux reports KiB


def machine() -> dict:
    return {
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "command": " ".join([os.path.basename(sys.executable), *sys.argv]),
    }


def emit(result: dict, json_out: str | None) -> None:
    """Print the figures (one JSON document) and optionally save them."""
    text = json.dumps(result, indent=2, default=str)
    print(text)
    if json_out:
        with open(json_out, "w") as f:
            f.write(text + "\n")
