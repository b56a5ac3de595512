"""The HTTP API and dashboard: ``create_app(config)`` → a FastAPI application.

The app serves the planner, the decision store and the executor; it adds no logic of its own.
What it does add is the boundary:

* Pydantic request models (:mod:`perfect21.api.models`), unknown fields refused;
* one map from :class:`~perfect21._errors.Perfect21Error` to HTTP status (``_STATUS``), and
  JSON error bodies ``{"error": code, "message": text}`` — never a stack trace;
* the security middleware (:mod:`perfect21.api.security`): token, rate limit, body size;
* runner profiles from the server's config only (:mod:`perfect21.api.profiles`).

The request path of ``POST /v1/plan`` is kept short on purpose: one planner built at startup
(its LRU makes a repeated request a dictionary lookup) and the serialised JSON of recent plans
kept next to it, so a repeated request costs no serialisation either.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, Literal

from fastapi import FastAPI, Query, Request, WebSocket
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.websockets import WebSocketDisconnect

from perfect21 import __version__
from perfect21._config import Config
from perfect21._errors import (
    CapacityError,
    InputError,
    NotFoundError,
    Perfect21Error,
    StoreError,
)
from perfect21.api.models import BatchBody, DecisionBody, PlanBody, PlanOptions, RunBody
from perfect21.api.profiles import RunnerProfile
from perfect21.api.runs import RunManager
from perfect21.api.security import (
    LOOPBACK_NAMES,
    MAX_BODY_BYTES,
    SecurityMiddleware,
    is_loopback,
)
from perfect21.planner import Planner
from perfect21.planner.models import Plan

__all__ = ["STATIC_DIR", "create_app", "status_for"]

log = logging.getLogger("perfect21.api")

STATIC_DIR = Path(__file__).with_name("static")
JSON = "application/json"
_PLAN_BYTES_ENTRIES = 4096
_BODY_PARSE_ERROR = "There was an error parsing the body"
_MAX_TEAM_PLANNERS = 16

# The one map from the error tree to HTTP status (most specific class first).
_STATUS: tuple[tuple[type[Perfect21Error], int, str], ...] = (
    (InputError, 422, "invalid_input"),
    (NotFoundError, 404, "not_found"),
    (CapacityError, 503, "over_capacity"),
    (StoreError, 503, "store_unavailable"),
)


def status_for(exc: Perfect21Error) -> tuple[int, str, str]:
    """``(status, error code, message)`` for an error; unknown kinds get a generic 500."""
    for kind, status, code in _STATUS:
        if isinstance(exc, kind):
            if kind is StoreError:  # the detail names server paths: log it, do not send it
                return status, code, "the store is busy or unavailable; try again later"
            return status, code, str(exc)
    return 500, "internal_error", "internal server error"


def _json(data: Any, status: int = 200) -> Response:
    body = json.dumps(data, ensure_ascii=False, separators=(",", ":")).encode()
    return Response(body, status_code=status, media_type=JSON)


def _error(status: int, code: str, message: str, **extra: Any) -> Response:
    return _json({"error": code, "message": message, **extra}, status)


class _Service:
    """Everything the routes share, built once at startup."""

    def __init__(self, config: Config, profiles: Mapping[str, RunnerProfile],
                 planner: Planner | None) -> None:
        self.config = config
        self.planner = planner if planner is not None else Planner.from_config(config)
        self._team_planners: dict[str, Planner] = {}
        self._plan_bytes: dict[int, tuple[Plan, bytes]] = {}
        self.monitor: Any = None
        self.decisions: Any = None
        self.decisions_problem = ""
        self._record_plan: Any = None
        self.runs = RunManager(config, dict(profiles), agents=self.planner.catalog.get,
                               on_result=self.run_finished)
        self.started_at = time.time()

    # -- plans ------------------------------------------------------------------------------
    def planner_for(self, options: PlanOptions) -> Planner:
        if not options.team_size:
            return self.planner
        planner = self._team_planners.get(options.team_size)
        if planner is None:
            from perfect21.planner import parse_team_size

            bounds = parse_team_size(options.team_size)
            if len(self._team_planners) >= _MAX_TEAM_PLANNERS:
                self._team_planners.clear()
            planner = Planner(self.planner.catalog, bounds=bounds, cache_entries=256)
            self._team_planners[options.team_size] = planner
        return planner

    def plan_bytes(self, plan: Plan) -> bytes:
        """The plan's JSON, serialised once per plan object."""
        entry = self._plan_bytes.get(id(plan))
        if entry is not None and entry[0] is plan:
            return entry[1]
        body = json.dumps(plan.to_dict(), ensure_ascii=False, separators=(",", ":")).encode()
        if len(self._plan_bytes) >= _PLAN_BYTES_ENTRIES:
            self._plan_bytes.clear()
        self._plan_bytes[id(plan)] = (plan, body)
        return body

    def clear_caches(self) -> None:
        """Memory-guard clean-up: drop cached plans and their JSON."""
        self._plan_bytes.clear()
        self._team_planners.clear()
        self.planner.clear_cache()

    def count(self, name: str, **labels: str) -> None:
        if self.monitor is not None:
            self.monitor.registry.inc(name, **labels)

    def timed_plan(self, planner: Planner, request: str) -> Plan:
        """Plan, and report the time to the KPIs (the PerformanceRegression alert reads it)."""
        started = time.perf_counter()
        plan = planner.plan(request)
        if self._record_plan is not None:
            self._record_plan(time.perf_counter() - started, self.monitor.registry)
        return plan

    def run_finished(self, result: Any, workers: int) -> None:
        if self.monitor is not None:
            from perfect21.monitor.hooks import record_run

            record_run(result, workers=workers, registry=self.monitor.registry)

    def decisions_required(self) -> Any:
        if self.decisions is None:
            raise StoreError("the decision store is not available in this build")
        return self.decisions

    def check_capacity(self) -> None:
        if self.monitor is not None:
            self.monitor.guard.check_capacity()

    # -- lifecycle --------------------------------------------------------------------------
    async def start(self, with_monitor: bool) -> None:
        if with_monitor:
            from perfect21.monitor.hooks import record_plan
            from perfect21.monitor.runtime import Monitor

            self.monitor = Monitor.from_config(self.config)
            self._record_plan = record_plan
            self.monitor.guard.register_cleanup(self.clear_caches)
            self.monitor.start()
            self.runs.admission = self.monitor.guard
        from perfect21.api.decisions import open_store

        decisions = open_store(self.config)
        if decisions is not None:
            try:
                await decisions.start()
            except Perfect21Error as exc:
                # A broken decisions.db must not take the planner and runs down with it:
                # those endpoints answer 503, /readyz says why, the file is left untouched.
                log.error("decision store unavailable: %s", exc)
                self.decisions_problem = str(exc)
                decisions = None
        self.decisions = decisions

    async def stop(self) -> None:
        await self.runs.shutdown()
        if self.decisions is not None:
            await self.decisions.close()
        if self.monitor is not None:
            self.monitor.stop()


def _validation_details(exc: RequestValidationError) -> list[dict[str, Any]]:
    details = []
    for err in exc.errors()[:20]:
        kind = str(err.get("type", ""))
        if kind == "json_invalid":
            position = err.get("loc", ("body", 0))[-1]
            problem = (err.get("ctx") or {}).get("error", "invalid JSON")
            details.append({"field": "body", "type": kind,
                            "message": f"invalid JSON at position {position}: {problem}"})
            continue
        loc = [str(part) for part in err.get("loc", ())]
        if len(loc) > 1 and loc[0] in ("body", "query", "path", "header"):
            loc = loc[1:]  # "options.format", not "body.options.format"
        field = ".".join(loc)
        details.append({"field": field or "body", "message": str(err.get("msg", "invalid")),
                        "type": kind})
    return details


def _install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(Perfect21Error)
    async def perfect21_error(request: Request, exc: Perfect21Error) -> Response:
        status, code, message = status_for(exc)
        if status >= 500:
            log.warning("%s %s → %d: %s: %s", request.method, request.url.path, status,
                        type(exc).__name__, exc)
        return _error(status, code, message)

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> Response:
        details = _validation_details(exc)
        message = "; ".join(f"{d['field']}: {d['message']}" for d in details[:5])
        return _error(422, "validation_error", message or "invalid request", fields=details)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        if exc.status_code == 400 and exc.detail == _BODY_PARSE_ERROR:
            # FastAPI's answer to a body that is not UTF-8 JSON: malformed input is a 422.
            message = "body: not valid JSON text (UTF-8)"
            return _error(422, "validation_error", message,
                          fields=[{"field": "body", "message": message, "type": "json_invalid"}])
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
        detail = exc.detail if isinstance(exc.detail, str) else "request refused"
        return _error(exc.status_code, code, detail)

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> Response:
        log.error("unhandled error on %s %s", request.method, request.url.path,
                  exc_info=(type(exc), exc, exc.__traceback__))
        return _error(500, "internal_error", "internal server error")


class _FastLane:
    """The two hottest requests, answered before FastAPI's routing (which costs ~100 µs).

    ``GET /healthz`` and ``POST /v1/plan`` with default options, when the body validates and
    the planner answers. Anything else — other options, invalid input, an error — is passed
    on, body replayed, to the FastAPI route of the same path, so every error is still mapped
    in one place. It sits inside the security middleware: token, rate limit and body size
    apply to it like to every other request.
    """

    def __init__(self, app: Any, service: _Service) -> None:
        self.app = app
        self.service = service
        self._json_headers = [(b"content-type", JSON.encode())]

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            path = scope["path"]
            if path == "/v1/plan" and scope["method"] == "POST":
                body, receive = await _read_body(receive)
                response = self._plan(body)
                if response is not None:
                    await self._send(send, response)
                    return
            elif path == "/healthz" and scope["method"] == "GET":
                await self._send(send, _OK)
                return
        await self.app(scope, receive, send)

    def _plan(self, body: bytes) -> bytes | None:
        from pydantic import ValidationError as PydanticValidationError

        try:
            parsed = PlanBody.model_validate_json(body)
        except PydanticValidationError:
            return None
        options = parsed.options  # compared by field: pydantic's __eq__ costs ~9 µs
        if options.team_size is not None or options.format != "json" or options.record:
            return None
        service = self.service
        try:
            service.check_capacity()
            plan = service.timed_plan(service.planner, parsed.request)
        except Perfect21Error:
            return None
        return service.plan_bytes(plan)

    async def _send(self, send: Any, body: bytes) -> None:
        await send({"type": "http.response.start", "status": 200,
                    "headers": [*self._json_headers,
                                (b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body})


async def _read_body(receive: Any) -> tuple[bytes, Any]:
    """The whole request body (size already capped by the security middleware) and a
    ``receive`` that replays it."""
    from perfect21.api.security import replay_body

    chunks = []
    while True:
        message = await receive()
        if message["type"] != "http.request":
            break
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            break
    body = b"".join(chunks)
    return body, replay_body(body, receive)


def _no_telemetry() -> dict[str, Any]:
    """Newer FastAPI checks its OpenTelemetry providers on every request (~20 µs here); we
    export our own metrics at /metrics, so switch it off where the option exists."""
    import inspect

    if "telemetry" not in inspect.signature(FastAPI).parameters:
        return {}
    return {"telemetry": {"tracing": False, "metrics": False, "logs": False}}


def create_app(config: Config, *, runner_profiles: Mapping[str, RunnerProfile] | None = None,
               planner: Planner | None = None, monitor: bool = True) -> FastAPI:
    """Build the application; the planner's catalog is compiled here, once."""
    service = _Service(config, runner_profiles or {}, planner)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await service.start(monitor)
        import gc

        # The catalog index and the app are long-lived: move them out of the collector's
        # view so a full collection does not walk them (it would show as a latency spike).
        gc.collect()
        gc.freeze()
        try:
            yield
        finally:
            await service.stop()

    app = FastAPI(title="Perfect21", version=__version__, lifespan=lifespan,
                  docs_url=None, redoc_url=None, strict_content_type=False,
                  description="Plan, record, run and watch multi-agent software work.",
                  **_no_telemetry())
    app.state.service = service
    app.add_middleware(_FastLane, service=service)
    app.add_middleware(SecurityMiddleware, token=config.api_token,
                       rate_per_s=config.api_rate_limit_per_s, burst=config.api_rate_burst,
                       max_body=MAX_BODY_BYTES,
                       allowed_hosts=LOOPBACK_NAMES if is_loopback(config.api_host) else None)
    _install_error_handlers(app)
    _plan_routes(app, service)
    _decision_routes(app, service)
    _run_routes(app, service)
    _ops_routes(app, service)
    _dashboard_routes(app)
    return app


# ---------------------------------------------------------------------------------- plans


def _render(plan: Plan, fmt: str) -> dict[str, Any]:
    from perfect21.planner.render import render

    return {"format": fmt, "plan_id": plan.id, "text": render(plan, fmt)}


def _plan_routes(app: FastAPI, service: _Service) -> None:
    @app.post("/v1/plan", tags=["plans"], summary="Plan one request",
              responses={200: {"description": "The plan, as `perfect21 plan --format json`"}})
    async def plan(body: PlanBody) -> Response:
        service.check_capacity()
        result = service.timed_plan(service.planner_for(body.options), body.request)
        if body.options.record:
            await service.decisions_required().record_plan(result)
        if body.options.format != "json":
            return _json(_render(result, body.options.format))
        return Response(service.plan_bytes(result), media_type=JSON)

    @app.post("/v1/plan/batch", tags=["plans"], summary="Plan up to 100 requests")
    async def plan_batch(body: BatchBody) -> Response:
        service.check_capacity()
        planner = service.planner_for(body.options)
        plans: list[dict[str, Any]] = []
        errors: list[dict[str, Any]] = []
        for index, item in enumerate(body.requests):
            try:
                result = service.timed_plan(planner, item.request)
            except InputError as exc:
                errors.append({"index": index, "input_id": item.id, "message": str(exc)})
                continue
            plans.append({**result.to_dict(), "input_id": item.id})
        return _json({"plans": plans, "errors": errors})

    catalog = service.planner.catalog
    everyone = _json({"agents": [a.to_dict() for a in catalog.agents]})  # the catalog is fixed

    @app.get("/v1/agents", tags=["agents"], summary="The agent catalog")
    async def agents(category: str | None = Query(default=None, max_length=64)) -> Response:
        if category is None:
            return Response(everyone.body, media_type=JSON)
        return _json({"agents": [a.to_dict() for a in catalog.agents
                                 if a.category == category]})

    @app.get("/v1/agents/{name}", tags=["agents"], summary="One agent")
    async def agent(name: str) -> Response:
        spec = service.planner.catalog.get(name)
        if spec is None:
            raise NotFoundError(f"agent not found: {name}")
        return _json(spec.to_dict())


# ------------------------------------------------------------------------------ decisions


def _decision_routes(app: FastAPI, service: _Service) -> None:
    @app.get("/v1/decisions", tags=["decisions"], summary="Recent decisions, newest first")
    async def list_decisions(
        limit: int = Query(default=50, ge=1, le=1000),
        status: Literal["proposed", "accepted", "rejected", "deprecated", "superseded"] | None
        = None, tag: str | None = Query(default=None, max_length=64)) -> Response:
        decisions = await service.decisions_required().list(limit=limit, status=status, tag=tag)
        return _json({"decisions": decisions})

    @app.post("/v1/decisions", tags=["decisions"], status_code=201,
              summary="Record a decision (ADR)")
    async def add_decision(body: DecisionBody) -> Response:
        service.check_capacity()
        record = await service.decisions_required().add(body)
        service.count("decisions_recorded_total")
        return _json(record, 201)

    @app.get("/v1/decisions/search", tags=["decisions"], summary="Full-text search")
    async def search_decisions(q: str = Query(min_length=1, max_length=500),
                               limit: int = Query(default=20, ge=1, le=200)) -> Response:
        found = await service.decisions_required().search(q, limit=limit)
        return _json({"query": q, "decisions": found})

    @app.get("/v1/decisions/{decision_id}", tags=["decisions"], summary="One decision")
    async def get_decision(decision_id: str) -> Response:
        return _json(await service.decisions_required().get(decision_id))


# ----------------------------------------------------------------------------------- runs


def _run_routes(app: FastAPI, service: _Service) -> None:
    manager = service.runs

    @app.get("/v1/runners", tags=["runs"], summary="Runner profiles configured on the server")
    async def runners() -> Response:
        return _json({"profiles": [p.public() for p in manager.profiles.values()]})

    @app.post("/v1/runs", tags=["runs"], status_code=202,
              summary="Start a run of a plan or a request with a configured runner profile")
    async def start_run(body: RunBody) -> Response:
        manager.profile(body.profile)  # unknown profile: 404 before any planning
        service.check_capacity()
        if body.plan is not None:
            plan = Plan.from_dict(body.plan)
        else:
            plan = service.planner.plan(str(body.request))
        run = await manager.start(body.profile, plan)
        return _json({"id": run.run_id, "status": "running", "profile": run.profile,
                      "tasks": len(plan.tasks), "plan": plan.to_dict(),
                      "events": f"/v1/runs/{run.run_id}/events"}, 202)

    @app.get("/v1/runs", tags=["runs"], summary="Recent runs, newest first")
    async def list_runs(limit: int = Query(default=20, ge=1, le=1000)) -> Response:
        records = manager.store.list_runs(limit=limit)
        return _json({"runs": [{**r.to_dict(with_plan=False), "tasks": len(r.tasks)}
                               for r in records]})

    @app.get("/v1/runs/{run_id}", tags=["runs"],
             summary="One run with provenance (argv, pid, exit codes, files, output tails)")
    async def get_run(run_id: str) -> Response:
        record = manager.store.get_run(run_id)
        live = manager.live.get(record.id)
        return _json({**record.to_dict(), "live": live is not None and not live.done,
                      "profile": live.profile if live is not None else None})

    @app.post("/v1/runs/{run_id}/cancel", tags=["runs"], status_code=202,
              summary="Stop a run: processes are killed, the run stays resumable")
    async def cancel_run(run_id: str) -> Response:
        return _json(manager.cancel(run_id), 202)

    @app.websocket("/v1/runs/{run_id}/events")
    async def run_events(websocket: WebSocket, run_id: str) -> None:
        await websocket.accept()
        stream = asyncio.create_task(_stream_events(websocket, manager, run_id))
        gone = asyncio.create_task(_client_gone(websocket))
        # Whichever ends first: the stream (run over) or the client (tab closed) — then the
        # other is cancelled, so a departed watcher never holds a queue.
        await asyncio.wait((stream, gone), return_when=asyncio.FIRST_COMPLETED)
        for task in (stream, gone):
            task.cancel()
        await asyncio.gather(stream, gone, return_exceptions=True)
        if stream.done() and not stream.cancelled():
            exc = stream.exception()
            if isinstance(exc, Perfect21Error):
                status, code, message = status_for(exc)
                with contextlib.suppress(Exception):
                    await websocket.send_json({"event": "error", "error": code,
                                               "message": message})
                    await websocket.close(code=4000 + status)
            elif exc is not None and not isinstance(exc, WebSocketDisconnect | OSError):
                log.error("event stream of %s failed", run_id,
                          exc_info=(type(exc), exc, exc.__traceback__))


async def _client_gone(websocket: WebSocket) -> None:
    """Return when the client disconnects (it sends nothing else we need)."""
    while True:
        message = await websocket.receive()
        if message["type"] == "websocket.disconnect":
            return


async def _stream_events(websocket: WebSocket, manager: RunManager, run_id: str) -> None:
    """Replay the run's events so far, then follow it live until it ends."""
    live = manager.live.get(run_id)
    if live is None:
        record = manager.store.get_run(run_id)  # NotFoundError → close 4404
        await websocket.send_json({"event": "run_status", "run_id": record.id,
                                   "status": record.status.value, "counts": record.counts()})
        await websocket.close(code=1000)
        return
    history, queue = live.subscribe()
    try:
        for past in history:
            await websocket.send_json(past)
        while True:
            event = await queue.get()
            if event is None:
                break
            await websocket.send_json(event)
        await websocket.send_json({"event": "run_status", "run_id": live.run_id,
                                   "status": live.status})
        await websocket.close(code=1000)
    finally:
        live.unsubscribe(queue)


# ------------------------------------------------------------------------------ operations


_OK = b'{"status":"ok"}'


def _ops_routes(app: FastAPI, service: _Service) -> None:
    @app.get("/healthz", tags=["ops"], summary="Liveness: the process answers")
    async def healthz() -> Response:
        return Response(_OK, media_type=JSON)

    @app.get("/readyz", tags=["ops"], summary="Readiness: catalog loaded, memory accepting")
    async def readyz() -> Response:
        checks = {"catalog": len(service.planner.catalog.agents) > 0,
                  "memory": service.monitor is None or service.monitor.guard.accepting,
                  "decisions": not service.decisions_problem}
        ready = all(checks.values())
        return _json({"ready": ready, "checks": checks}, 200 if ready else 503)

    @app.get("/metrics", tags=["ops"], summary="Prometheus text exposition")
    async def metrics() -> Response:
        from perfect21.monitor.metrics import render_bytes

        registry = service.monitor.registry if service.monitor is not None else None
        body, content_type = render_bytes(registry)
        return Response(body, media_type=content_type)

    @app.get("/v1/status", tags=["ops"], summary="KPIs, memory and alerts for the dashboard")
    async def status() -> Response:
        data: dict[str, Any] = {"version": __version__, "uptime_s": time.time() -
                                service.started_at, "agents": len(service.planner.catalog.agents),
                                "plan_cache": service.planner.cache_size,
                                "active_runs": service.runs.active(),
                                "decisions": service.decisions is not None}
        if service.monitor is not None:
            data["monitor"] = service.monitor.status()
        return _json(data)


# ------------------------------------------------------------------------------ dashboard


def _dashboard_routes(app: FastAPI) -> None:
    from starlette.staticfiles import StaticFiles

    @app.get("/", include_in_schema=False)
    async def index() -> FileResponse:
        return FileResponse(STATIC_DIR / "index.html")

    @app.get("/docs", include_in_schema=False)
    async def docs() -> FileResponse:
        return FileResponse(STATIC_DIR / "docs.html")

    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
