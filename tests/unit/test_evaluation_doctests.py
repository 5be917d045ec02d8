"""The runnable examples in evaluation's docstrings are tests too."""

from __future__ import annotations

import doctest

import pytest

from evaluation import metrics, slices


@pytest.mark.parametrize("module", [metrics, slices], ids=lambda m: m.__name__)
def test_docstring_examples(module) -> None:
    result = doctest.testmod(module)
    assert result.attempted > 0 and result.failed == 0
