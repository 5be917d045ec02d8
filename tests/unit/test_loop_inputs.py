"""The loop's decoded-input cache: the task's own decoding, each distinct input once."""

from __future__ import annotations

import numpy as np
import pytest

from flows.loop.inputs import DecodedInputs
from retrain.digits.codec import decode_inputs, encode_input


def digits(n: int, seed: int = 0) -> list[bytes]:
    rng = np.random.default_rng(seed)
    return [encode_input(rng.random((8, 8))) for _ in range(n)]


class Counting:
    def __init__(self) -> None:
        self.items: list[bytes] = []

    def __call__(self, items):
        self.items += list(items)
        return decode_inputs(items)


def test_same_bits_as_the_task_and_each_input_decoded_once():
    a, b = digits(30), digits(20, seed=1)
    counting = Counting()
    cache = DecodedInputs(counting)
    first = cache.decode(a)
    again = cache.decode(b[:5] + a[::-1] + b[:5])  # repeats, new ones, another order
    assert np.array_equal(first, decode_inputs(a)) and first.dtype == np.float32
    assert np.array_equal(again, decode_inputs(b[:5] + a[::-1] + b[:5]))
    assert len(counting.items) == 35  # 30, then the 5 new ones once (not twice)
    assert (cache.hits, cache.misses, len(cache)) == (35, 35, 35)
    again[:] = -1.0  # a caller may change what it got: the cache keeps its own copy
    assert np.array_equal(cache.decode(a), first)


def test_empty_and_errors_are_the_tasks_own():
    cache = DecodedInputs(decode_inputs)
    assert cache.decode([]).shape == (0, 1, 8, 8)
    good = digits(3)
    cache.decode(good)
    with pytest.raises(ValueError, match="input 2 is not a readable image"):
        cache.decode([good[0], good[1], b"not a png"])  # position in the caller's list
    assert len(cache) == 3  # nothing kept from the failed call


def test_bounded_oldest_entries_go_first():
    items = digits(10)
    row = decode_inputs(items[:1])[0].nbytes
    cache = DecodedInputs(decode_inputs, max_bytes=4 * row)
    out = cache.decode(items)  # more than fits at once: still the whole answer
    assert np.array_equal(out, decode_inputs(items)) and len(cache) == 4
    counting = Counting()
    cache._decode = counting
    cache.decode(items[-4:])
    assert counting.items == []  # the newest four stayed
    cache.decode(items[:1])
    assert counting.items == items[:1] and len(cache) == 4
