"""BLAKE2b without ``import hashlib``.

``import hashlib`` loads OpenSSL (~11M instructions, ~3 ms, by valgrind and ``-X importtime``;
see docs/adr/0005-startup.md), and ``perfect21 plan`` needs a hash only for the plan id and
the catalog's cache key and version. CPython's built-in BLAKE2 module is used directly;
another Python falls back to ``hashlib``.
"""

from __future__ import annotations

try:
    from _blake2 import blake2b
except ImportError:  # pragma: no cover - Python implementations without the module
    from hashlib import blake2b

__all__ = ["blake2b"]
