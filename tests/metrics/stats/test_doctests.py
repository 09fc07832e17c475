"""Run the docstring examples of metrics/stats in the normal test run."""

from __future__ import annotations

import doctest
import importlib
import pkgutil

import pytest

import metrics.stats

MODULES = sorted(m.name for m in pkgutil.iter_modules(metrics.stats.__path__, "metrics.stats."))


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name: str) -> None:
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
    assert result.failed == 0, f"{result.failed} docstring example(s) failed in {name}"
