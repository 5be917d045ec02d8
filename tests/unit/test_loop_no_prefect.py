"""The engine runs without Prefect: importing it (and every stage module) loads no `prefect`,
so the benchmark and a test drive the loop in process, and the flows are the only wrappers."""

from __future__ import annotations

import subprocess
import sys

from tests.support import REPO

MODULES = ["engine", "open", "round", "parts", "score", "drift", "curate", "sync", "retrain", "card",
           "triggers", "hints", "labeler"]  # fmt: skip


def test_importing_the_engine_loads_no_prefect():
    code = (
        "import sys\n"
        + "".join(f"import flows.loop.{m}\n" for m in MODULES)
        + "import curation.label_sync\n"
        + "bad = sorted(m for m in sys.modules if m == 'prefect' or m.startswith('prefect.'))\n"
        + "print(len(bad)); assert not bad, bad[:5]\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True,
                          timeout=300)  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.strip() == "0"
