"""The WebSocket event stream, checked with ``websockets`` while a real run progresses."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
import websockets
from websockets.exceptions import ConnectionClosed, InvalidStatus

from .conftest import TOKEN, Server

pytestmark = pytest.mark.integration


async def collect(url: str, limit_s: float = 20.0) -> tuple[list[dict[str, Any]], int | None]:
    import asyncio

    events: list[dict[str, Any]] = []
    async with websockets.connect(url, open_timeout=5) as ws:
        try:
            async with asyncio.timeout(limit_s):
                async for message in ws:
                    events.append(json.loads(message))
        except ConnectionClosed:
            pass
        return events, ws.close_code


async def test_events_arrive_live_and_the_run_finishes(server: Server) -> None:
    """Task events stream while the run is still running; the stream ends with its status."""
    async with httpx.AsyncClient(base_url=server.base) as client:
        started = await client.post("/v1/runs", json={
            "profile": "local", "request": "build a REST API with tests and docs"})
        assert started.status_code == 202, started.text
        run_id = started.json()["id"]
        assert started.json()["events"] == f"/v1/runs/{run_id}/events"
        ws_url = server.base.replace("http", "ws") + f"/v1/runs/{run_id}/events"
        status_at_connect = (await client.get(f"/v1/runs/{run_id}")).json()["status"]
        events, code = await collect(ws_url)
        final = (await client.get(f"/v1/runs/{run_id}")).json()
    assert status_at_connect == "running"  # we watched a run in progress, not a replay
    kinds = [e["event"] for e in events]
    assert kinds[0] == "run_started"
    assert "task_started" in kinds and "task_finished" in kinds
    assert kinds[-2:] == ["run_finished", "run_status"]
    assert events[-1]["status"] == "succeeded" == final["status"]
    finished = {e["task_id"] for e in events if e["event"] == "task_finished"}
    assert finished == {t["task_id"] for t in final["tasks"]}
    assert code == 1000


async def test_events_of_a_finished_run_and_of_an_unknown_one(server: Server) -> None:
    """A finished run replays its history; an unknown id closes with 4404."""
    async with httpx.AsyncClient(base_url=server.base) as client:
        runs = (await client.get("/v1/runs")).json()["runs"]
    done = [r for r in runs if r["status"] != "running"]
    if done:
        events, code = await collect(server.base.replace("http", "ws")
                                     + f"/v1/runs/{done[0]['id']}/events")
        assert events[-1]["event"] == "run_status" and code == 1000
    events, code = await collect(server.base.replace("http", "ws")
                                 + "/v1/runs/r-20990101-000000-ffffff/events")
    assert events == [{"event": "error", "error": "not_found",
                       "message": "run not found: r-20990101-000000-ffffff "
                                  "(see `perfect21 runs list`)"}]
    assert code == 4404


async def test_websocket_needs_the_token(secured_server: Server) -> None:
    """Without the token the handshake is refused; ?token= (browsers) is accepted."""
    base = secured_server.base.replace("http", "ws") + "/v1/runs/r-x/events"
    with pytest.raises(InvalidStatus) as info:
        async with websockets.connect(base, open_timeout=5):
            pass
    assert info.value.response.status_code == 403
    with pytest.raises(InvalidStatus):
        async with websockets.connect(base + "?token=wrong", open_timeout=5):
            pass
    events, code = await collect(base + f"?token={TOKEN}")
    assert code == 4404 and events[0]["error"] == "not_found"
    events, code = await collect_with_header(base, TOKEN)
    assert code == 4404


async def collect_with_header(url: str, token: str) -> tuple[list[dict[str, Any]], int | None]:
    events: list[dict[str, Any]] = []
    async with websockets.connect(url, additional_headers={"Authorization": f"Bearer {token}"},
                                  open_timeout=5) as ws:
        try:
            async for message in ws:
                events.append(json.loads(message))
        except ConnectionClosed:
            pass
        return events, ws.close_code


async def test_watcher_leaving_mid_run_is_harmless(server: Server) -> None:
    """A client that closes its socket while the run goes on is dropped; the run continues
    and can still be watched and cancelled."""
    async with httpx.AsyncClient(base_url=server.base) as client:
        started = await client.post("/v1/runs", json={"profile": "local",
                                                      "request": "SLOW: write the docs"})
        run_id = started.json()["id"]
        url = server.base.replace("http", "ws") + f"/v1/runs/{run_id}/events"
        async with websockets.connect(url, open_timeout=5) as ws:
            first = json.loads(await ws.recv())
        assert first["event"] == "run_started"
        assert (await client.get(f"/v1/runs/{run_id}")).json()["status"] == "running"
        cancel = await client.post(f"/v1/runs/{run_id}/cancel")
        assert cancel.json()["cancelling"] is True
        events, code = await collect(url)
        assert events[-1] == {"event": "run_status", "run_id": run_id, "status": "interrupted"}
        assert code == 1000
