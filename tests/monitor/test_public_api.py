"""Each monitor module's ``__all__`` names exactly its public classes and functions."""

from __future__ import annotations

import importlib
import inspect

import pytest

MODULES = ["kpi", "memory", "metrics", "alerts", "runtime", "hooks"]


@pytest.mark.parametrize("name", MODULES)
def test_all_is_complete(name: str) -> None:
    module = importlib.import_module(f"perfect21.monitor.{name}")
    exported = set(module.__all__)
    assert all(hasattr(module, n) for n in exported)
    public = {
        n
        for n, obj in vars(module).items()
        if not n.startswith("_")
        and (inspect.isclass(obj) or inspect.isfunction(obj))
        and getattr(obj, "__module__", "") == module.__name__
    }
    assert public <= exported, public - exported
