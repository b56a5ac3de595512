"""Package hygiene: the public names are exported, importing the cache is cheap."""

from __future__ import annotations

import subprocess
import sys

import perfect21.cache as cache_pkg


def test_all_names_exist() -> None:
    for name in cache_pkg.__all__:
        assert hasattr(cache_pkg, name), name


def test_import_does_not_pull_redis_or_sqlite() -> None:
    """`import perfect21.cache` stays light: Redis and SQLite load with their tiers."""
    code = (
        "import sys, perfect21.cache; "
        "print(sorted(m for m in ('redis', 'sqlite3', 'perfect21.cache.disk', "
        "'perfect21.cache.redis') if m in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert out.stdout.strip() == "[]"
