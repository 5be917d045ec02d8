"""The tabular task's record: River's Agrawal loan applicant, as stored, shown and fed to a model.

Why a JSON record in the log: a labeler, a drift report and a person debugging a row all read
fields by name (`salary`, `car`), and a record logged by another system is JSON already.
Decoding is a few microseconds a row, far below scoring.

The model input is a fixed float layout: the 6 numeric fields in natural units (dollars,
years), then one-hot blocks for the 3 categorical fields (34 columns). The network
standardises the numeric columns itself, with statistics fixed when it was first trained and
saved in its state dict (`retrain/tabular/model.py`), so serving and fine-tunes see one scale.
Drift features (`features`) standardise with the schema's reference statistics instead
(`REFERENCE_MEAN/STD`): `Task.features` gets no model.
"""

from __future__ import annotations

import html
import json
import math
from collections.abc import Mapping, Sequence

import numpy as np

NUMERIC = ("salary", "commission", "age", "hvalue", "hyears", "loan")
#: categorical field -> its values, in one-hot order (River's Agrawal ranges)
CATEGORICAL: dict[str, tuple[int, ...]] = {
    "elevel": tuple(range(0, 5)),
    "car": tuple(range(1, 21)),
    "zipcode": tuple(range(0, 9)),
}
FIELDS = ("salary", "commission", "age", "elevel", "car", "zipcode", "hvalue", "hyears", "loan")
#: fields River generates as whole numbers (shown without decimals)
WHOLE = ("age", "hyears", "elevel", "car", "zipcode")
#: mean and std of each numeric field in Agrawal's generator, measured on 200,000 rows
#: (`Agrawal(0, seed=0)`): the drift features' fixed scale and an untrained model's scale
REFERENCE_MEAN = np.array([84955.0, 20135.7, 50.0, 400404.0, 15.5, 249880.1], dtype=np.float32)
REFERENCE_STD = np.array([37573.5, 27399.1, 17.6, 292722.1, 8.7, 144109.1], dtype=np.float32)
N_NUMERIC = len(NUMERIC)
N_INPUT = N_NUMERIC + sum(len(v) for v in CATEGORICAL.values())


def feature_names() -> tuple[str, ...]:
    """Names of the model-input (and drift-feature) columns.

    >>> names = feature_names()
    >>> len(names), names[:2], names[6], names[-1]
    (40, ('salary', 'commission'), 'elevel=0', 'zipcode=8')
    """
    cats = tuple(f"{k}={v}" for k, values in CATEGORICAL.items() for v in values)
    return NUMERIC + cats


def _offsets() -> dict[str, int]:
    out, at = {}, N_NUMERIC
    for k, values in CATEGORICAL.items():
        out[k] = at
        at += len(values)
    return out


OFFSETS = _offsets()


def check_record(record: object, where: str = "record") -> dict[str, float | int]:
    """A record with every field, numbers finite, categories in range; else a ValueError
    naming the field and the fix."""
    if not isinstance(record, Mapping):
        raise ValueError(
            f"{where} is a {type(record).__name__}: send an object with the fields {list(FIELDS)}"
        )
    missing = [k for k in FIELDS if k not in record]
    if missing:
        raise ValueError(f"{where} has no field {missing[0]!r}: send all of {list(FIELDS)}")
    extra = sorted(set(record) - set(FIELDS))
    if extra:
        raise ValueError(f"{where} has unknown field {extra[0]!r}: the fields are {list(FIELDS)}")
    out: dict[str, float | int] = {}
    for k in FIELDS:
        v = record[k]
        if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v):
            raise ValueError(f"{where}.{k} = {v!r}: send a finite number")
        if k in CATEGORICAL:
            if int(v) != v or int(v) not in CATEGORICAL[k]:
                values = CATEGORICAL[k]
                raise ValueError(
                    f"{where}.{k} = {v!r}: a category is a whole number {values[0]}..{values[-1]}"
                )
            out[k] = int(v)
        else:
            out[k] = float(np.float32(v))  # the precision the model input keeps
    return out


def record_to_vector(record: Mapping[str, float | int]) -> np.ndarray:
    """One checked record -> the (40,) float32 model input."""
    x = np.zeros(N_INPUT, dtype=np.float32)
    x[:N_NUMERIC] = [record[k] for k in NUMERIC]
    for k, values in CATEGORICAL.items():
        x[OFFSETS[k] + values.index(int(record[k]))] = 1.0
    return x


def vector_to_record(x: np.ndarray) -> dict[str, float | int]:
    """A (40,) model input -> its record (each one-hot block must hold exactly one 1)."""
    x = np.asarray(x, dtype=np.float32).reshape(-1)
    if x.size != N_INPUT:
        raise ValueError(f"input has {x.size} values: a tabular model input has {N_INPUT}")
    rec: dict[str, float | int] = {k: float(x[j]) for j, k in enumerate(NUMERIC)}
    for k, values in CATEGORICAL.items():
        block = x[OFFSETS[k] : OFFSETS[k] + len(values)]
        if not (np.count_nonzero(block) == 1 and block.max() == 1.0):
            raise ValueError(f"input's {k} one-hot block is {block.tolist()}: set exactly one 1")
        rec[k] = values[int(block.argmax())]
    return rec


def encode_input(x: np.ndarray | Mapping[str, float | int]) -> bytes:
    """A model input (40,) or a record -> the JSON bytes stored in the prediction log."""
    rec = check_record(x) if isinstance(x, Mapping) else vector_to_record(x)
    return json.dumps({k: rec[k] for k in FIELDS}, separators=(",", ":")).encode()


def decode_record(data: bytes) -> dict[str, float | int]:
    try:
        value = json.loads(data)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(
            f"logged input is not a JSON record ({exc}): log encode_input(...)"
        ) from None
    return check_record(value, "logged input")


def decode_inputs(items: Sequence[bytes]) -> np.ndarray:
    """Logged JSON records -> (N, 40) float32 model inputs."""
    if len(items) == 0:
        return np.zeros((0, N_INPUT), dtype=np.float32)
    return np.stack([record_to_vector(decode_record(b)) for b in items])


def features(x: np.ndarray) -> np.ndarray:
    """Drift features: numeric columns standardised with the reference statistics, one-hots as is."""
    x = np.asarray(x, dtype=np.float32).reshape(len(x), -1)
    out = x.copy()
    out[:, :N_NUMERIC] = (x[:, :N_NUMERIC] - REFERENCE_MEAN) / REFERENCE_STD
    return out


def _shown(k: str, v: float | int) -> str:
    return f"{int(v)}" if k in WHOLE else f"{float(v):,.0f}"


def render(data: bytes) -> str:
    """Stored record -> an HTML table of its fields, for Label Studio's HyperText view."""
    rec = decode_record(data)
    rows = "".join(
        f"<tr><th>{html.escape(k)}</th><td>{html.escape(_shown(k, rec[k]))}</td></tr>"
        for k in FIELDS
    )
    return f'<table class="loopwright-record">{rows}</table>'


def parse_input(value: object) -> np.ndarray:
    """A serving request's `input`: one record (the 9 fields) -> the (40,) model input."""
    return record_to_vector(check_record(value, "input"))


INPUT_SCHEMA: dict[str, object] = {
    "description": "A loan applicant: River's Agrawal record (categories as whole numbers)",
    "type": "object",
    "properties": {
        **{k: {"type": "number"} for k in NUMERIC},
        **{
            k: {"type": "integer", "minimum": v[0], "maximum": v[-1]}
            for k, v in CATEGORICAL.items()
        },
    },
    "required": list(FIELDS),
    "additionalProperties": False,
    "example": {
        "salary": 103125.48,
        "commission": 0,
        "age": 21,
        "elevel": 2,
        "car": 8,
        "zipcode": 3,
        "hvalue": 319768.96,
        "hyears": 4,
        "loan": 338349.74,
    },
}
