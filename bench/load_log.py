"""A data home like the one the load test builds, at any size, for the reader-memory and
compaction benchmarks: a champion trained on the seed digits (through the real `retrain`
flow, Prefect in ephemeral mode), then `rows` digit predictions appended by 2 writer
processes in parts of `part_rows` (what a serving loop's appends make), with inputs (PNG) and
64 features, plus a small queue and label log so that curation has rows to exclude.

    .venv/bin/python -m bench.load_log /tmp/lw-load-1000000 --rows 1000000

A home is built once and reused (`<root>/BUILT` holds its figures); benchmarks copy it with
hard links (`clone`), since no loopwright code ever rewrites a visible file.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

CLASSES = [str(i) for i in range(10)]
CONFIG = """[home]
path = "{home}"
[drift]
reference_rows = 100
window_rows = 100
report_sample_rows = 200
html_report = "never"
[retrain]
max_epochs = 40
[gate]
min_eval_rows = 10
min_slice_rows = 10
"""


def _append(home: str, writer: int, parts: int, part_rows: int) -> tuple[int, float]:
    """One writer: `parts` appends of `part_rows` digit predictions; (rows, seconds)."""
    from retrain.digits.data import split_digits
    from retrain.digits.task import TASK
    from storage.home import DataHome
    from storage.prediction_log import PredictionLog, make_batch

    images = split_digits(seed_rows=300, holdout_rows=200, seed=0).pool_x[:500]
    feats = TASK.features(images.reshape(-1, 1, 8, 8).astype(np.float32))
    inputs = [TASK.encode_input(i) for i in images]
    rng = np.random.default_rng(writer)
    plog = PredictionLog(DataHome(Path(home)))
    t0, rows = time.perf_counter(), 0
    for i in range(parts):
        pick = rng.integers(0, len(inputs), part_rows)
        batch = make_batch(
            request_ids=[f"load-w{writer}-{i:06d}-{j:05d}" for j in range(part_rows)],
            features=feats[pick],
            probs=rng.dirichlet(np.full(len(CLASSES), 0.3), size=part_rows),
            classes=CLASSES,
            model_version="v0001",
            inputs=[inputs[k] for k in pick],
        )
        rows += plog.append(batch, classes=CLASSES)
    return rows, time.perf_counter() - t0


def champion(root: Path) -> None:
    """Seed digits and a first champion, trained by the `retrain` flow."""
    env = {**os.environ, "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
           "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "300",
           "PREFECT_HOME": str(root / "prefect")}  # fmt: skip
    code = (
        "from flows.loop.open import open_loop; from flows.retrain import retrain_flow;"
        "from retrain.digits.simulation import seed_examples;"
        f"cfg = {str(root / 'loopwright.toml')!r};"
        "open_loop(cfg).write_seed(seed_examples(seed_rows=300, holdout_rows=200));"
        "out = retrain_flow(force=True, reason='bench champion', config_path=cfg);"
        "assert out['promoted'], out"
    )
    subprocess.run([sys.executable, "-c", code], env=env, check=True, cwd=Path(__file__).parents[1],
                   stdout=subprocess.DEVNULL)  # fmt: skip


def queue_and_labels(root: Path, rows: int) -> None:
    """1,000 queued ids and 500 labeled ones among the logged rows."""
    from storage.home import DataHome
    from storage.label_log import LabelEvent, LabelLog
    from storage.queue_log import QueueLog

    home = DataHome(root / "home")
    per = rows // 2 // 2000
    ids = [f"load-w{k % 2}-{(k * 7919) % max(per, 1):06d}-{k % 2000:05d}" for k in range(1000)]
    QueueLog(home).append(ids, "uncertainty")
    now = datetime.now(UTC)
    LabelLog(home).append([LabelEvent(i, "3", "feedback", "bench", ts=now) for i in ids[:500]])


def build(root: Path, rows: int, part_rows: int = 2000, writers: int = 2) -> dict:
    """The home under `root` (built once; its figures are kept in `root/BUILT`)."""
    done = root / "BUILT"
    if done.is_file():
        return json.loads(done.read_text())
    if root.exists():
        shutil.rmtree(root)
    root.mkdir(parents=True)
    (root / "loopwright.toml").write_text(CONFIG.format(home=root / "home"))
    t0 = time.perf_counter()
    champion(root)
    trained = time.perf_counter() - t0
    parts = rows // part_rows // writers
    with ProcessPoolExecutor(writers) as pool:
        out = list(pool.map(_append, [str(root / "home")] * writers, range(writers),
                            [parts] * writers, [part_rows] * writers))  # fmt: skip
    queue_and_labels(root, rows)
    files = list((root / "home" / "predictions").rglob("*.parquet"))
    figures = {
        "rows": sum(r for r, _ in out),
        "part_rows": part_rows,
        "parts": len(files),
        "log_mb": round(sum(p.stat().st_size for p in files) / 1e6, 1),
        "champion_s": round(trained, 1),
        "append_s": round(max(s for _, s in out), 1),
        "rows_per_second": round(sum(r for r, _ in out) / max(s for _, s in out)),
    }
    done.write_text(json.dumps(figures))
    return figures


def clone(root: Path, dest: Path) -> Path:
    """A copy of the built home whose files are hard links (the logs are never rewritten)."""
    if dest.exists():
        shutil.rmtree(dest)
    dest.mkdir(parents=True)
    subprocess.run(["cp", "-al", str(root / "home"), str(dest / "home")], check=True)
    (dest / "loopwright.toml").write_text(CONFIG.format(home=dest / "home"))
    return dest


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("root", type=Path)
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--part-rows", type=int, default=2000)
    args = ap.parse_args()
    print(json.dumps(build(args.root, args.rows, args.part_rows)))


if __name__ == "__main__":
    main()
