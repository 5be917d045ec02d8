"""Dataset versions: a manifest of exactly which labeled rows (and labels) trained a model,
so any model can be traced to its data and any training set rebuilt.

The train/test split is a hash of the request id, not a random draw per version: a row that
is test once is test forever, so no later version ever trains on an earlier test row. The
loop passes `eval_ids` instead (its versioned eval set, `storage/eval_sets.py`): those rows
are the test side, every other row trains.
"""

from __future__ import annotations

import hashlib
from collections.abc import Collection, Mapping
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any, Literal

import pyarrow as pa
import pyarrow.compute as pc

from storage.home import DataHome, StorageError
from storage.manifests import id_pattern, read_checked, store_new

_ID_RE = id_pattern("ds")


@dataclass(frozen=True)
class DatasetVersion:
    id: str
    created: str
    policy: str
    params: dict
    parent_model: str | None
    train_ids: tuple[str, ...]
    train_labels: tuple[str, ...]
    test_ids: tuple[str, ...]
    test_labels: tuple[str, ...]
    sha256: str
    eval_set: str | None = None  # the eval set version its test rows are (None: hash split)

    @property
    def n_train(self) -> int:
        return len(self.train_ids)

    @property
    def n_test(self) -> int:
        return len(self.test_ids)


#: the share of request ids (or groups) the stable split sends to evaluation
TEST_SHARE = 0.2


def split_of(request_id: str, test_share: float = TEST_SHARE) -> Literal["train", "test"]:
    """Stable split: the first 8 bytes of sha256(request_id) as a fraction of 2**64.

    >>> split_of("req-1") == split_of("req-1")
    True
    """
    if not 0.0 <= test_share < 1.0:
        raise StorageError(f"test_share is {test_share}: pass a fraction in [0, 1), e.g. 0.2")
    h = int.from_bytes(hashlib.sha256(request_id.encode()).digest()[:8], "big")
    return "test" if h / 2**64 < test_share else "train"


def _as_dict(attrs: Any) -> dict[str, Any]:
    """Arrow map columns come back as lists of (key, value) pairs."""
    if attrs is None:
        return {}
    return dict(attrs)


def split_key(request_id: str, attrs: Mapping[str, Any] | None, group_attr: str | None) -> str:
    """What the split hashes: the row's group (attrs[group_attr]) when it has one, else its id.

    Why groups: rows that share a source (the same scanned document, user or patient) are
    near-copies; if some are train and some test, the test score rewards memorising the
    source, and the gate promotes models that are worse on sources never seen. Grouped,
    a source is all train or all test. Rows without the attr fall back to their own id.

    >>> split_key("r1", {"scan": "s7"}, "scan"), split_key("r2", {}, "scan"), split_key("r3", {"scan": "s7"}, None)
    ('group:s7', 'r2', 'r3')
    """
    if group_attr and attrs and attrs.get(group_attr) not in (None, ""):
        return f"group:{attrs[group_attr]}"
    return request_id


def create_dataset(
    home: DataHome,
    labeled: pa.Table,
    policy: str,
    params: Mapping[str, Any],
    parent_model: str | None,
    test_share: float = TEST_SHARE,
    group_attr: str | None = None,
    eval_ids: Collection[str] | None = None,
    eval_set: str | None = None,
) -> DatasetVersion:
    """Freeze `labeled` (columns request_id, label) into a new dataset version on disk.

    With `group_attr`, rows are split by that attr's value (see `split_key`), so every row
    of one source lands on the same side; `labeled` then needs its `attrs` column.
    With `eval_ids` (the rows of eval set `eval_set`), the split is given, not hashed: those
    rows are test, the rest train (the caller already left out rows that may be neither).
    """
    for column in ("request_id", "label"):
        if column not in labeled.column_names:
            raise StorageError(
                f"labeled has no {column!r} column: pass Queries.labeled_examples() or a table "
                "with request_id and label"
            )
    if labeled.num_rows == 0:
        raise StorageError("labeled is empty: label some examples before creating a dataset")
    if labeled["request_id"].null_count or labeled["label"].null_count:
        raise StorageError("labeled has null request_id or label values: drop those rows first")
    if pc.count_distinct(labeled["request_id"]).as_py() != labeled.num_rows:
        raise StorageError(
            "labeled has a request_id more than once: pass one row per example "
            "(Queries.labeled_examples keeps the latest label)"
        )
    if not policy:
        raise StorageError("policy is empty: name how the rows were chosen (e.g. 'all', 'window')")
    split_of("", test_share)  # validates test_share
    if group_attr and "attrs" not in labeled.column_names:
        raise StorageError(
            f"group_attr is {group_attr!r} but labeled has no 'attrs' column: pass "
            'Queries.labeled_examples() (it carries attrs) or set [retrain] split_group = ""'
        )
    given = None if eval_ids is None else set(eval_ids)
    attrs = (
        labeled["attrs"].to_pylist() if group_attr and given is None else [None] * labeled.num_rows
    )
    # user feedback is not an unbiased sample (users answer when something looks wrong):
    # training data always, never the test set (docs/contracts.md, "Feedback")
    sources = (
        labeled["source"].to_pylist() if "source" in labeled.column_names else [None] * len(attrs)
    )
    train_ids, train_labels, test_ids, test_labels = [], [], [], []
    for rid, label, a, source in zip(
        labeled["request_id"].to_pylist(), labeled["label"].to_pylist(), attrs, sources,
        strict=True,
    ):  # fmt: skip
        if given is not None:
            is_test = rid in given
        else:
            is_test = source != "feedback" and split_of(split_key(rid, _as_dict(a), group_attr),
                                                        test_share) == "test"  # fmt: skip
        if is_test:
            test_ids.append(rid)
            test_labels.append(label)
        else:
            train_ids.append(rid)
            train_labels.append(label)
    manifest: dict[str, Any] = {
        "id": "",
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "policy": policy,
        "params": dict(params),
        "parent_model": parent_model,
        "train_ids": train_ids,
        "train_labels": train_labels,
        "test_ids": test_ids,
        "test_labels": test_labels,
        "test_share": test_share,
        "group_attr": group_attr,
        "eval_set": eval_set,
    }
    return _from_manifest(store_new(home.datasets, "ds", manifest, "params"))


def _from_manifest(m: Mapping[str, Any]) -> DatasetVersion:
    return DatasetVersion(
        id=m["id"],
        created=m["created"],
        policy=m["policy"],
        params=dict(m["params"]),
        parent_model=m["parent_model"],
        train_ids=tuple(m["train_ids"]),
        train_labels=tuple(m["train_labels"]),
        test_ids=tuple(m["test_ids"]),
        test_labels=tuple(m["test_labels"]),
        sha256=m["sha256"],
        eval_set=m.get("eval_set"),
    )


def load_dataset(home: DataHome, dataset_id: str) -> DatasetVersion:
    """Read a manifest and check its sha256, so a hand-edited dataset cannot pass silently."""
    if not isinstance(dataset_id, str) or not _ID_RE.match(dataset_id):
        raise StorageError(
            f"dataset id {dataset_id!r} is not a dataset id (ds-0001, ds-0002...): "
            "pass one from list_datasets()"
        )
    path = home.datasets / f"{dataset_id}.json"
    known = list_datasets(home) if not path.is_file() else []
    fix = f"restore {path} or create a new dataset"
    return _from_manifest(read_checked(path, f"dataset {dataset_id}", known, fix))


def list_datasets(home: DataHome) -> list[str]:
    """Dataset ids on disk, oldest first."""
    if not home.datasets.is_dir():
        return []
    found = [
        (int(m[1]), m[0])
        for p in home.datasets.glob("ds-*.json")
        if (m := _ID_RE.match(p.name.removesuffix(".json")))
    ]
    return [name for _, name in sorted(found)]


def as_dict(version: DatasetVersion) -> dict[str, Any]:
    """A JSON-friendly view (lists instead of tuples), e.g. for report cards."""
    d = asdict(version)
    return {k: list(v) if isinstance(v, tuple) else v for k, v in d.items()}
