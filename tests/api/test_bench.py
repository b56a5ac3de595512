"""``perfect21 bench api`` runs end to end (a short smoke run; numbers are not asserted)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

pytestmark = pytest.mark.integration


def test_bench_api_json_smoke() -> None:
    done = subprocess.run([sys.executable, "-m", "perfect21", "bench", "api", "--json",
                           "--duration", "1"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    data = json.loads(done.stdout)  # exactly one JSON object on stdout
    for key in ("rps", "p50_ms", "p95_ms", "p99_ms", "errors", "clients", "ceiling_rps"):
        assert key in data, key
    assert data["errors"] == 0 and data["clients"] == 10
    assert data["rps"] > 0 and data["ceiling_rps"] > 0
    assert data["client"] in ("wrk", "builtin")
    assert "bench api" in done.stderr  # progress goes to stderr
