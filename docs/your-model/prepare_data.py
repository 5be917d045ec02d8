"""Write the files a user brings: labeled flowers for the first champion (seed.parquet) and
unlabeled production traffic (traffic.parquet), from scikit-learn's iris data set.

    python prepare_data.py [OUT_DIR]

`truth.json` keeps the traffic's true species, standing in for the person who labels them.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from iris_task import CLASSES, encode_input
from sklearn.datasets import load_iris


def main(out: Path) -> None:
    data = load_iris()
    order = np.random.default_rng(0).permutation(len(data.target))
    seed, traffic = order[:100], order[100:]
    out.mkdir(parents=True, exist_ok=True)
    pq.write_table(
        pa.table(
            {
                "request_id": [f"iris-{i:03d}" for i in seed],
                "input": pa.array([encode_input(data.data[i]) for i in seed], pa.binary()),
                "label": [CLASSES[int(data.target[i])] for i in seed],
            }
        ),
        out / "seed.parquet",
    )
    pq.write_table(
        pa.table(
            {
                "request_id": [f"iris-{i:03d}" for i in traffic],
                "input": pa.array([encode_input(data.data[i]) for i in traffic], pa.binary()),
            }
        ),
        out / "traffic.parquet",
    )
    truth = {f"iris-{i:03d}": CLASSES[int(data.target[i])] for i in traffic}
    (out / "truth.json").write_text(json.dumps(truth, indent=1))
    print(f"wrote {len(seed)} labeled and {len(traffic)} unlabeled flowers to {out}")


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else Path("."))
