"""Every endpoint over real HTTP against a real ``perfect21 serve`` process."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from typing import Any

import httpx
import pytest

from .conftest import Server

pytestmark = pytest.mark.integration

REQUEST = "实现用户登录功能，使用JWT认证"


def assert_no_trace(response: httpx.Response) -> None:
    text = response.text
    assert "Traceback" not in text and 'File "' not in text, text


def wait_run(client: httpx.Client, run_id: str, timeout_s: float = 20.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        data: dict[str, Any] = client.get(f"/v1/runs/{run_id}").json()
        if data["status"] != "running":
            return data
        time.sleep(0.1)
    raise AssertionError(f"run {run_id} still running after {timeout_s} s")


def test_health_ready_metrics_openapi(client: httpx.Client) -> None:
    """The operational endpoints answer; /metrics is Prometheus text."""
    assert client.get("/healthz").json() == {"status": "ok"}
    ready = client.get("/readyz")
    assert ready.status_code == 200 and ready.json()["ready"] is True
    metrics = client.get("/metrics")
    assert metrics.status_code == 200
    assert metrics.headers["content-type"].startswith("text/plain")
    assert "# TYPE" in metrics.text
    spec = client.get("/openapi.json").json()
    for path in ("/v1/plan", "/v1/plan/batch", "/v1/agents", "/v1/decisions",
                 "/v1/decisions/search", "/v1/decisions/{decision_id}", "/v1/runs",
                 "/v1/runs/{run_id}", "/v1/runs/{run_id}/cancel", "/healthz", "/readyz"):
        assert path in spec["paths"], path
    status = client.get("/v1/status").json()
    assert status["agents"] > 40 and "monitor" in status


def test_dashboard_and_docs_are_served_offline(client: httpx.Client) -> None:
    """The dashboard shell and its assets come from the app; no external URL in them."""
    page = client.get("/")
    assert page.status_code == 200 and "text/html" in page.headers["content-type"]
    for asset in ("/static/app.js", "/static/style.css", "/docs", "/static/docs.js"):
        response = client.get(asset)
        assert response.status_code == 200, asset
        assert "http://" not in response.text and "https://" not in response.text, asset
    assert "http" not in page.text.replace("http-equiv", "")


def test_plan_is_the_cli_json(server: Server, client: httpx.Client) -> None:
    """POST /v1/plan returns exactly what `perfect21 plan --format json` prints."""
    response = client.post("/v1/plan", json={"request": REQUEST})
    assert response.status_code == 200
    env = {**os.environ, "PERFECT21_HOME": str(server.home),
           "HOME": str(server.home.parent / "userhome")}
    cli = subprocess.run([sys.executable, "-m", "perfect21", "plan", REQUEST, "--format",
                          "json"], capture_output=True, text=True, env=env,
                         cwd=server.workdir, check=True)
    assert response.json() == json.loads(cli.stdout)
    again = client.post("/v1/plan", json={"request": REQUEST, "options": {}})
    assert again.content == response.content


def test_plan_options(client: httpx.Client) -> None:
    """format renders other views; team_size bounds the team like --team-size."""
    mermaid = client.post("/v1/plan", json={"request": REQUEST,
                                            "options": {"format": "mermaid"}}).json()
    assert mermaid["format"] == "mermaid" and mermaid["text"].startswith("flowchart")
    big = "build an e-commerce platform with payments, search, React frontend, Kubernetes"
    small = client.post("/v1/plan", json={"request": big,
                                          "options": {"team_size": "2-2-2"}}).json()
    assert len(small["agents"]) == 2
    bad = client.post("/v1/plan", json={"request": REQUEST, "options": {"team_size": "x"}})
    assert bad.status_code == 422 and "team-size" in bad.json()["message"]


def test_plan_batch(client: httpx.Client) -> None:
    """Each request is planned on its own; an empty one is reported, not fatal."""
    response = client.post("/v1/plan/batch", json={"requests": [
        {"id": "a", "request": REQUEST}, {"id": 2, "request": "   "},
        {"request": "fix the flaky checkout test"}]})
    assert response.status_code == 200
    data = response.json()
    assert [p["input_id"] for p in data["plans"]] == ["a", None]
    assert data["errors"] == [{"index": 1, "input_id": 2,
                               "message": "request is empty: describe the task to plan"}]


def test_agents(client: httpx.Client) -> None:
    agents = client.get("/v1/agents").json()["agents"]
    names = {a["name"] for a in agents}
    assert {"backend-architect", "security-auditor", "python-pro"} <= names
    quality = client.get("/v1/agents", params={"category": "quality"}).json()["agents"]
    assert quality and all(a["category"] == "quality" for a in quality)
    one = client.get("/v1/agents/python-pro").json()
    assert one["name"] == "python-pro" and one["description"]


@pytest.mark.parametrize(("body", "field"), [
    ({"request": 5}, "request"),
    ({}, "request"),
    ({"request": REQUEST, "options": {"format": "pdf"}}, "options.format"),
    ({"request": REQUEST, "options": {"bogus": 1}}, "options.bogus"),
    ({"request": REQUEST, "extra": True}, "extra"),
    ({"request": ""}, "request"),
])
def test_wrong_types_are_422_naming_the_field(client: httpx.Client, body: dict[str, Any],
                                              field: str) -> None:
    response = client.post("/v1/plan", json=body)
    assert response.status_code == 422
    data = response.json()
    assert data["error"] == "validation_error"
    assert field in [f["field"] for f in data["fields"]]
    assert field in data["message"]
    assert_no_trace(response)


@pytest.mark.parametrize("raw", [b'{"request": ', b"not json", b'{"request": "a",}', b"\xff\xfe"])
def test_malformed_json_is_422(client: httpx.Client, raw: bytes) -> None:
    response = client.post("/v1/plan", content=raw,
                           headers={"content-type": "application/json"})
    assert response.status_code == 422
    assert response.json()["fields"][0]["field"] == "body"
    assert_no_trace(response)


def test_body_over_1mb_is_413(client: httpx.Client) -> None:
    """A declared length over 1 MB is refused at once; a chunked body as it streams."""
    big = json.dumps({"request": "x" * (1024 * 1024 + 10)}).encode()
    response = client.post("/v1/plan", content=big, headers={"content-type": "application/json"})
    assert response.status_code == 413 and response.json()["error"] == "payload_too_large"

    def chunks() -> Any:
        for _ in range(20):
            yield b"x" * 65536

    chunked = client.post("/v1/plan", content=chunks(),
                          headers={"content-type": "application/json"})
    assert chunked.status_code == 413
    small = client.post("/v1/plan", content=iter([json.dumps({"request": REQUEST}).encode()]),
                        headers={"content-type": "application/json"})
    assert small.status_code == 200


@pytest.mark.parametrize(("method", "path"), [
    ("GET", "/v1/runs/r-20990101-000000-ffffff"),
    ("POST", "/v1/runs/r-20990101-000000-ffffff/cancel"),
    ("GET", "/v1/agents/no-such-agent"),
    ("GET", "/v1/decisions/no-such-decision"),
    ("GET", "/v1/nothing-here"),
])
def test_unknown_ids_are_404(client: httpx.Client, method: str, path: str) -> None:
    response = client.request(method, path)
    if path.startswith("/v1/decisions") and response.status_code == 503:
        pytest.skip("the decision store is not in this build")
    assert response.status_code == 404, response.text
    assert response.json()["error"] == "not_found"
    assert_no_trace(response)


def test_runner_profiles_are_listed_without_commands(client: httpx.Client) -> None:
    profiles = {p["name"]: p for p in client.get("/v1/runners").json()["profiles"]}
    assert set(profiles) == {"local", "toml-agent"}
    assert profiles["toml-agent"]["description"] == "from toml"
    assert "agent.py" not in json.dumps(profiles)


def test_runs_only_use_configured_profiles(client: httpx.Client) -> None:
    """An unknown profile is 404; a command line in the body is refused (422 naming it)."""
    unknown = client.post("/v1/runs", json={"profile": "sh", "request": REQUEST})
    assert unknown.status_code == 404 and "not configured" in unknown.json()["message"]
    smuggled = client.post("/v1/runs", json={"profile": "local", "request": REQUEST,
                                             "command": "touch /tmp/pwned"})
    assert smuggled.status_code == 422
    assert "command" in [f["field"] for f in smuggled.json()["fields"]]
    both = client.post("/v1/runs", json={"profile": "local"})
    assert both.status_code == 422 and "exactly one" in both.json()["message"]
    bad_plan = client.post("/v1/runs", json={"profile": "local", "plan": {"id": 1}})
    assert bad_plan.status_code == 422
    assert_no_trace(bad_plan)


def test_run_a_plan_with_provenance(client: httpx.Client) -> None:
    """A plan from /v1/plan runs with the toml profile; the run shows what really ran."""
    plan = client.post("/v1/plan", json={"request": REQUEST}).json()
    for stage in plan["stages"]:  # a gate command in a client's plan is never run
        if stage.get("gate"):
            stage["gate"]["checks"] = [{"name": "evil", "command": "touch pwned"}]
    started = client.post("/v1/runs", json={"profile": "toml-agent", "plan": plan})
    assert started.status_code == 202, started.text
    run_id = started.json()["id"]
    run = wait_run(client, run_id)
    assert run["status"] == "succeeded", run
    assert len(run["tasks"]) == sum(len(s["tasks"]) for s in plan["stages"])
    for task in run["tasks"]:
        assert task["status"] == "succeeded"
        assert task["exit_code"] == 0 and task["pid"]
        assert "agent.py" in " ".join(task["argv"])
        assert "done" in task["stdout_tail"]
    assert all("pwned" not in json.dumps(s.get("gate")) for s in run["plan"]["stages"])
    listed = client.get("/v1/runs").json()["runs"]
    assert run_id in [r["id"] for r in listed]
    cancel = client.post(f"/v1/runs/{run_id}/cancel")
    assert cancel.status_code == 202 and cancel.json()["cancelling"] is False


def test_cancel_a_running_run(client: httpx.Client) -> None:
    """Cancel kills the agent processes; the run ends interrupted (resumable)."""
    started = client.post("/v1/runs", json={"profile": "local",
                                            "request": "SLOW: add a health endpoint"})
    assert started.status_code == 202
    run_id = started.json()["id"]
    time.sleep(0.5)
    cancel = client.post(f"/v1/runs/{run_id}/cancel")
    assert cancel.json()["cancelling"] is True
    run = wait_run(client, run_id, timeout_s=15)
    assert run["status"] == "interrupted"


def test_decisions_record_list_get_search(client: httpx.Client) -> None:
    """A decision posted over HTTP is stored, listed, fetched by id and by number, found."""
    if not client.get("/v1/status").json()["decisions"]:
        pytest.skip("the decision store is not in this build")
    created = client.post("/v1/decisions", json={
        "title": "Use JWT sessions for the API", "context": "登录需要无状态会话",
        "decision": "JWT with short expiry", "status": "accepted", "tags": ["auth"],
        "options": ["server sessions", {"name": "JWT", "pros": ["stateless"]}]})
    assert created.status_code == 201, created.text
    record = created.json()
    assert record["id"] and record["number"] >= 1 and record["status"] == "accepted"
    assert client.get(f"/v1/decisions/{record['id']}").json() == record
    assert client.get(f"/v1/decisions/{record['number']}").json()["id"] == record["id"]
    listed = client.get("/v1/decisions", params={"tag": "auth"}).json()["decisions"]
    assert record["id"] in [d["id"] for d in listed]
    deadline = time.monotonic() + 5  # the search index may lag writes by ~1 s
    while time.monotonic() < deadline:
        found = client.get("/v1/decisions/search", params={"q": "JWT 会话"}).json()
        if record["id"] in [d["id"] for d in found["decisions"]]:
            break
        time.sleep(0.1)
    else:
        raise AssertionError("decision not found by search")
    bad = client.post("/v1/decisions", json={"title": "x", "status": "maybe"})
    assert bad.status_code == 422 and "status" in bad.json()["message"]
    missing = client.post("/v1/decisions", json={"context": "no title"})
    assert missing.status_code == 422 and "title" in missing.json()["message"]


def test_plan_record_option_stores_a_decision(client: httpx.Client) -> None:
    if not client.get("/v1/status").json()["decisions"]:
        pytest.skip("the decision store is not in this build")
    plan = client.post("/v1/plan", json={"request": "add SSO login",
                                         "options": {"record": True}}).json()
    decisions = client.get("/v1/decisions", params={"tag": "workflow"}).json()["decisions"]
    assert plan["id"] in [d["links"]["workflow_id"] for d in decisions]


def test_metrics_reflect_api_activity(client: httpx.Client) -> None:
    """Plans (count and time) and finished runs show up in the Prometheus scrape."""
    client.post("/v1/plan", json={"request": "add pagination to the orders API"})
    started = client.post("/v1/runs", json={"profile": "local", "request": "add a README"})
    wait_run(client, started.json()["id"])
    text = client.get("/metrics").text
    samples = {line.split(" ")[0]: float(line.split(" ")[-1]) for line in text.splitlines()
               if line and not line.startswith("#")}
    assert samples["perfect21_plans_generated_total"] >= 1
    assert samples["perfect21_workflow_generation_seconds_count"] >= 1
    assert any(k.startswith("perfect21_executor_tasks_total") for k in samples)


def test_concurrent_runs_are_bounded(client: httpx.Client) -> None:
    """At most 4 runs at once: the fifth is a 503 (over capacity), not a fifth process tree."""
    ids = []
    try:
        for _ in range(4):
            started = client.post("/v1/runs", json={"profile": "local",
                                                    "request": "SLOW: tidy the logs"})
            assert started.status_code == 202, started.text
            ids.append(started.json()["id"])
        refused = client.post("/v1/runs", json={"profile": "local", "request": "SLOW: more"})
        assert refused.status_code == 503
        assert refused.json()["error"] == "over_capacity"
    finally:
        for run_id in ids:
            client.post(f"/v1/runs/{run_id}/cancel")
        for run_id in ids:
            assert wait_run(client, run_id, timeout_s=15)["status"] == "interrupted"
