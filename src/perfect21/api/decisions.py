"""Adapter between the HTTP routes and :mod:`perfect21.decisions` (filled in when it lands)."""

from __future__ import annotations

from typing import Any

from perfect21._config import Config

__all__ = ["open_store"]


def open_store(config: Config) -> Any:
    """The decision store adapter, or ``None`` when the package is not in this build."""
    try:
        import perfect21.decisions  # noqa: F401
    except ImportError:
        return None
    return None
