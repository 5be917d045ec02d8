"""The runnable examples in docstrings are tests too."""

from __future__ import annotations

import doctest
import importlib

import pytest

MODULES = [
    "retrain.triggers",
    "retrain.dataset_policy",
    "retrain.digits.data",
    "retrain.digits.transforms",
    "retrain.digits.simulator",
]


@pytest.mark.parametrize("name", MODULES)
def test_doctests(name: str) -> None:
    result = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0 and result.failed == 0
