"""HTTP API and live dashboard (FastAPI + uvicorn): ``create_app(config)``.

FastAPI costs ~350 ms to import, so this package imports it only when ``create_app`` is
first used; ``perfect21.api.security`` and ``perfect21.api.profiles`` are stdlib only.
"""

from __future__ import annotations

from typing import Any

__all__ = ["RunnerProfile", "create_app", "load_profiles", "status_for"]

_LAZY = {
    "create_app": "perfect21.api.app",
    "status_for": "perfect21.api.app",
    "RunnerProfile": "perfect21.api.profiles",
    "load_profiles": "perfect21.api.profiles",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'perfect21.api' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(module), name)
