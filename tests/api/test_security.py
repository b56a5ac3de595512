"""Security rules over real HTTP: token, loopback default, rate limit, no stack traces."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from .conftest import TOKEN, Server, start_server, stop_server

pytestmark = pytest.mark.integration


@pytest.mark.parametrize("path", ["/healthz", "/v1/agents", "/metrics", "/openapi.json"])
def test_token_required_when_configured(secured_server: Server, path: str) -> None:
    """No header or a wrong token → 401; the right bearer token → 200."""
    with httpx.Client(base_url=secured_server.base) as client:
        missing = client.get(path)
        assert missing.status_code == 401
        assert missing.headers["www-authenticate"] == "Bearer"
        assert missing.json()["error"] == "unauthorized"
        for wrong in (f"Bearer {TOKEN}x", TOKEN, f"bearer {TOKEN}", "Bearer x", f"Basic {TOKEN}"):
            assert client.get(path, headers={"Authorization": wrong}).status_code == 401
        ok = client.get(path, headers={"Authorization": f"Bearer {TOKEN}"})
        assert ok.status_code == 200


def test_token_protects_writes_and_static_shell_is_public(secured_server: Server) -> None:
    with httpx.Client(base_url=secured_server.base) as client:
        refused = client.post("/v1/runs", json={"profile": "local", "request": "x"})
        assert refused.status_code == 401
        assert client.post("/v1/plan", json={"request": "x"}).status_code == 401
        # the dashboard shell holds no data; it asks for the token itself
        assert client.get("/").status_code == 200
        assert client.get("/static/app.js").status_code == 200
    with secured_server.client() as client:
        assert client.post("/v1/plan", json={"request": "add a cache"}).status_code == 200


def test_non_loopback_bind_needs_a_token(tmp_path: object) -> None:
    """`serve --host 0.0.0.0` without PERFECT21_API_TOKEN refuses to start (exit 2)."""
    env = {k: v for k, v in os.environ.items() if k != "PERFECT21_API_TOKEN"}
    done = subprocess.run([sys.executable, "-m", "perfect21", "serve", "--host", "0.0.0.0",
                           "--port", "1"], capture_output=True, text=True, env=env, timeout=30)
    assert done.returncode == 2
    assert "PERFECT21_API_TOKEN" in done.stderr and "0.0.0.0" in done.stderr
    assert "Traceback" not in done.stderr


def test_busy_port_is_a_clear_error(server: Server) -> None:
    done = subprocess.run([sys.executable, "-m", "perfect21", "serve", "--port",
                           str(server.port)], capture_output=True, text=True, timeout=30)
    assert done.returncode == 2
    assert f"cannot listen on 127.0.0.1:{server.port}" in done.stderr


def test_rate_limit_answers_429_with_retry_after(limited_server: Server) -> None:
    """Burst 3 at 0.5 request/s: quick requests beyond the burst get 429 + Retry-After, and
    waiting that long is enough to be served again."""
    import time

    with limited_server.client() as client:
        statuses = [client.get("/healthz") for _ in range(6)]
        codes = [r.status_code for r in statuses]
        assert 200 in codes and 429 in codes, codes
        assert codes == sorted(codes), codes  # served until the bucket is empty, then refused
        limited = [r for r in statuses if r.status_code == 429]
        for response in limited:
            assert int(response.headers["retry-after"]) >= 1
            assert response.json()["error"] == "rate_limited"
        time.sleep(int(limited[-1].headers["retry-after"]))
        assert client.get("/healthz").status_code == 200


def test_server_log_has_no_unexpected_errors(server: Server) -> None:
    """`serve` printed its URL, and everything the other tests did was answered without an
    unhandled exception."""
    log = server.log.read_text(errors="replace")
    assert f"perfect21 serving http://127.0.0.1:{server.port}/" in log
    assert "Traceback" not in log


def test_broken_decision_store_degrades_not_dies(tmp_path: Path) -> None:
    """A decisions.db that is not a database: the server still plans, the decision endpoints
    answer 503 without detail, /readyz says not ready, and the file is left untouched."""
    home = tmp_path / "srv" / "home"
    home.mkdir(parents=True)
    junk = b"this is not a database\n" * 10
    (home / "decisions.db").write_bytes(junk)
    server, proc = start_server(tmp_path / "srv")
    try:
        with server.client() as client:
            assert client.post("/v1/plan", json={"request": "add login"}).status_code == 200
            listed = client.get("/v1/decisions")
            assert listed.status_code == 503
            assert listed.json()["error"] == "store_unavailable"
            assert str(home) not in listed.text
            ready = client.get("/readyz")
            assert ready.status_code == 503 and ready.json()["checks"]["decisions"] is False
    finally:
        stop_server(proc)
    assert (home / "decisions.db").read_bytes() == junk


def test_cross_site_requests_are_refused(server: Server) -> None:
    """DNS rebinding (a foreign Host) and cross-site requests (an Origin that is not this
    server) get 403 before any route runs; same-origin browser requests and plain clients
    (no Origin) are served."""
    with server.client() as client:
        rebound = client.get("/v1/agents", headers={"Host": f"evil.example:{server.port}"})
        assert rebound.status_code == 403 and rebound.json()["error"] == "forbidden"
        csrf = client.post("/v1/runs", json={"profile": "local", "request": "x"},
                           headers={"Origin": "http://evil.example"})
        assert csrf.status_code == 403
        assert client.post("/v1/runs/r-x/cancel",
                           headers={"Origin": "null"}).status_code == 403
        same = client.post("/v1/plan", json={"request": "add login"},
                           headers={"Origin": server.base})
        assert same.status_code == 200
        assert client.get("/healthz", headers={"Host": f"localhost:{server.port}"}).is_success


async def test_cross_site_websocket_is_refused(server: Server) -> None:
    import websockets
    from websockets.exceptions import InvalidStatus

    url = server.base.replace("http", "ws") + "/v1/runs/r-x/events"
    with pytest.raises(InvalidStatus) as info:
        async with websockets.connect(url, origin="http://evil.example", open_timeout=5):
            pass
    assert info.value.response.status_code == 403
