"""The real HTTP /metrics endpoint of `perfect21 serve`, scraped concurrently while it works."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from importlib.util import find_spec
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(find_spec("perfect21.cli.serve") is None, reason="serve not built"),
]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def server(tmp_path: Path) -> Iterator[str]:
    """`perfect21 serve` as a real process on a free loopback port."""
    port = free_port()
    env = {**os.environ, "PERFECT21_HOME": str(tmp_path / "home")}
    proc = subprocess.Popen(
        [sys.executable, "-m", "perfect21", "serve", "--port", str(port)],
        env=env, cwd=tmp_path, stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(base + "/healthz", timeout=1) as response:
                    if response.status == 200:
                        break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    err = proc.stderr.read().decode() if proc.stderr else ""
                    pytest.fail(f"server did not start: {err[-2000:]}")
                time.sleep(0.1)
        yield base
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        if proc.stderr:
            proc.stderr.close()


def test_metrics_scraped_concurrently_while_planning(server: str) -> None:
    """4 scrapers x 15 scrapes while 2 clients plan: every scrape is 200 and valid Prometheus
    text, memory gauges are present, and the plan counter never goes backwards."""
    errors: list[BaseException] = []
    stop = threading.Event()

    def planner_client(n: int) -> None:
        i = 0
        try:
            while not stop.is_set():
                i += 1
                body = json.dumps({"request": f"implement feature {n}-{i} with JWT"}).encode()
                request = urllib.request.Request(
                    server + "/v1/plan", data=body, headers={"Content-Type": "application/json"}
                )
                with urllib.request.urlopen(request, timeout=10) as response:
                    assert response.status == 200
        except BaseException as exc:
            errors.append(exc)

    def scraper() -> None:
        last = -1.0
        try:
            for _ in range(15):
                with urllib.request.urlopen(server + "/metrics", timeout=10) as response:
                    assert response.status == 200
                    text = response.read().decode()
                families = {f.name: f for f in text_string_to_metric_families(text)}
                assert "perfect21_memory_rss_mb" in families
                plans = families.get("perfect21_plans_generated")
                value = plans.samples[0].value if plans else 0.0
                assert value >= last
                last = value
        except BaseException as exc:
            errors.append(exc)

    clients = [threading.Thread(target=planner_client, args=(n,)) for n in range(2)]
    scrapers = [threading.Thread(target=scraper) for _ in range(4)]
    for t in clients + scrapers:
        t.start()
    for t in scrapers:
        t.join(timeout=120)
    stop.set()
    for t in clients:
        t.join(timeout=30)
    assert not errors, errors[0]
