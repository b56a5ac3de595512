"""``perfect21 bench api``: the HTTP API under load, from a separate client process.

The server is started as its own process (``python -m perfect21 serve``) on a free loopback
port with a temporary PERFECT21_HOME and a rate limit high enough not to interfere (the
limiter itself still runs on every request). Then, in the same run:

1. ``POST /v1/plan`` — 10 concurrent keep-alive clients for ``--duration`` seconds, cycling
   through realistic requests (the labelled routing sample when ``../shared/data`` is there,
   else a built-in list), after one warm-up pass over them;
2. ``GET /healthz`` — the same load on the cheapest route: the framework's ceiling here.

The two are interleaved in 5 slices each (plan, health, plan, …) so that other work on the
machine weighs on both alike.

The load generator is ``wrk`` when it is installed, else a built-in asyncio client speaking
raw HTTP/1.1 over asyncio streams (uvloop when available); the output says which.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, cast

from perfect21.bench import BenchError
from perfect21.cli._common import doc_text, echo, float_range, int_range

__all__ = ["LoadResult", "command", "free_port", "run_load", "start_server"]

TARGETS = {"p95_ms": 5.0, "rps": 3000.0}
FALLBACK_REQUESTS = (
    "实现用户登录功能，使用JWT认证",
    "Checkout is slow for users in Japan",
    "add rate limiting to the public API",
    "修复支付模块的并发bug并补充单元测试",
    "build a React dashboard for sales KPIs with a Python backend",
    "migrate the MySQL database to PostgreSQL with zero downtime",
    "set up Kubernetes autoscaling and Prometheus alerts",
    "train a churn prediction model and serve it behind an API",
)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _requests() -> tuple[list[str], str]:
    sample = Path(__file__).resolve().parents[3].parent / "shared" / "data" / \
        "routing_sample.jsonl"
    if sample.is_file():
        items = [json.loads(line)["request"] for line in
                 sample.read_text(encoding="utf-8").splitlines() if line.strip()]
        return items, f"{len(items)} requests of routing_sample.jsonl"
    return list(FALLBACK_REQUESTS), f"{len(FALLBACK_REQUESTS)} built-in requests"


@contextlib.contextmanager
def start_server(env_extra: dict[str, str] | None = None, args: Sequence[str] = (),
                 timeout_s: float = 30.0) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """``perfect21 serve`` in a child process on a free port; yields (base URL, process)."""
    port = free_port()
    with tempfile.TemporaryDirectory(prefix="p21-bench-api-") as tmp:
        env = {**os.environ, "PERFECT21_HOME": str(Path(tmp) / "home"),
               "PYTHONUNBUFFERED": "1", **(env_extra or {})}
        env.pop("PERFECT21_API_TOKEN", None)
        proc = subprocess.Popen(
            [sys.executable, "-m", "perfect21", "serve", "--port", str(port), *args],
            cwd=tmp, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE)
        base = f"http://127.0.0.1:{port}"
        try:
            _wait_ready(port, proc, timeout_s)
            yield base, proc
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            if proc.stderr is not None:
                proc.stderr.close()


def _wait_ready(port: int, proc: subprocess.Popen[bytes], timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            err = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
            raise BenchError(f"the server exited with {proc.returncode}: {err[-2000:]}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5) as sock:
                sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                             b"Connection: close\r\n\r\n")
                if sock.recv(64).startswith(b"HTTP/1.1 200"):
                    return
        except OSError:
            pass
        time.sleep(0.05)
    raise BenchError(f"the server did not answer /healthz within {timeout_s:g} s")


class LoadResult:
    """Latencies (ms) of successful requests, the error count and the wall time."""

    def __init__(self, latencies_ms: list[float], errors: int, elapsed_s: float,
                 clients: int) -> None:
        self.latencies_ms = latencies_ms
        self.errors = errors
        self.elapsed_s = elapsed_s
        self.clients = clients

    @classmethod
    def merge(cls, parts: list[LoadResult]) -> LoadResult:
        """Several slices of the same load as one result (latencies pooled, times summed)."""
        return cls([x for part in parts for x in part.latencies_ms],
                   sum(part.errors for part in parts), sum(part.elapsed_s for part in parts),
                   parts[0].clients)

    def quantile(self, q: float) -> float:
        data = sorted(self.latencies_ms)
        if not data:
            return float("nan")
        return data[min(len(data) - 1, int(q * len(data)))]

    def to_dict(self) -> dict[str, Any]:
        n = len(self.latencies_ms)
        return {"requests": n, "errors": self.errors, "clients": self.clients,
                "seconds": round(self.elapsed_s, 3),
                "rps": round(n / self.elapsed_s, 1) if self.elapsed_s else 0.0,
                "p50_ms": round(self.quantile(0.50), 3), "p95_ms": round(self.quantile(0.95), 3),
                "p99_ms": round(self.quantile(0.99), 3),
                "mean_ms": round(statistics.fmean(self.latencies_ms), 3) if n else None}


def _request_bytes(method: str, path: str, body: bytes | None) -> bytes:
    head = f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
    if body is not None:
        head += f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
    return head.encode() + b"\r\n" + (body or b"")


class _ClientProtocol(asyncio.Protocol):
    """One keep-alive connection with one request in flight: send, read the whole response
    (headers + Content-Length body), record the latency, send the next. A protocol rather
    than streams: the load generator shares the machine's two cores with the server, so the
    less CPU it spends per request the less it disturbs what it measures."""

    def __init__(self, payloads: list[bytes], offset: int, stop_at: float, count: int | None,
                 latencies: list[float], errors: list[int], done: asyncio.Future[None]) -> None:
        self.payloads = payloads
        self.index = offset
        self.offset = offset
        self.stop_at = stop_at
        self.count = count
        self.latencies = latencies
        self.errors = errors
        self.done = done
        self.buffer = b""
        self.need = -1  # bytes of the current response, -1 until its headers are in
        self.ok = False
        self.started = 0.0
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass
        self._send()

    def _send(self) -> None:
        assert self.transport is not None
        more = (time.perf_counter() < self.stop_at if self.count is None
                else self.index - self.offset < self.count)
        if not more:
            self.transport.close()
            return
        payload = self.payloads[self.index % len(self.payloads)]
        self.index += 1
        self.started = time.perf_counter()
        self.transport.write(payload)

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        if self.need < 0:
            end = self.buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            head = self.buffer[:end]
            self.ok = head.startswith(b"HTTP/1.1 200")
            length = 0
            at = head.lower().find(b"content-length:")
            if at >= 0:
                length = int(head[at + 15:].split(b"\r\n", 1)[0])
            self.need = end + 4 + length
        if len(self.buffer) < self.need:
            return
        if self.ok:
            self.latencies.append((time.perf_counter() - self.started) * 1000.0)
        else:
            self.errors[0] += 1
        self.buffer = self.buffer[self.need:]
        self.need = -1
        self._send()

    def connection_lost(self, exc: Exception | None) -> None:
        if self.need >= 0 or self.buffer:
            self.errors[0] += 1  # the server closed the connection mid-response
        if not self.done.done():
            self.done.set_result(None)


async def _client(port: int, payloads: list[bytes], offset: int, stop_at: float,
                  latencies: list[float], errors: list[int], count: int | None = None) -> None:
    loop = asyncio.get_running_loop()
    done: asyncio.Future[None] = loop.create_future()
    try:
        await loop.create_connection(
            lambda: _ClientProtocol(payloads, offset, stop_at, count, latencies, errors, done),
            "127.0.0.1", port)
    except OSError:
        errors[0] += 1
        return
    await done


async def _load(port: int, payloads: list[bytes], clients: int, duration_s: float,
                count: int | None = None) -> LoadResult:
    latencies: list[float] = []
    errors = [0]
    started = time.perf_counter()
    stop_at = started + duration_s
    step = max(1, len(payloads) // clients)
    await asyncio.gather(*(_client(port, payloads, i * step, stop_at, latencies, errors, count)
                           for i in range(clients)))
    return LoadResult(latencies, errors[0], time.perf_counter() - started, clients)


def run_load(port: int, payloads: list[bytes], clients: int, duration_s: float,
             count: int | None = None) -> LoadResult:
    """The built-in client: ``clients`` keep-alive connections, one request in flight each,
    for ``duration_s`` seconds (or ``count`` requests per client)."""
    try:
        import uvloop

        return uvloop.run(_load(port, payloads, clients, duration_s, count))
    except ImportError:  # pragma: no cover - uvloop comes with uvicorn[standard]
        return asyncio.run(_load(port, payloads, clients, duration_s, count))


_WRK_SCRIPT = """
local bodies = {}
for line in io.lines(os.getenv("P21_BODIES")) do bodies[#bodies + 1] = line end
local i = 0
request = function()
  if #bodies == 0 then return wrk.format("GET", wrk.path) end
  i = i + 1
  return wrk.format("POST", wrk.path, {["Content-Type"] = "application/json"},
                    bodies[(i % #bodies) + 1])
end
done = function(summary, latency, requests)
  local errors = summary.errors.connect + summary.errors.read + summary.errors.write
                 + summary.errors.status + summary.errors.timeout
  io.write(string.format(
    "P21JSON {\\"requests\\": %d, \\"errors\\": %d, \\"seconds\\": %f, \\"p50_ms\\": %f, "
    .. "\\"p95_ms\\": %f, \\"p99_ms\\": %f}\\n",
    summary.requests, errors, summary.duration / 1e6, latency:percentile(50) / 1000,
    latency:percentile(95) / 1000, latency:percentile(99) / 1000))
end
"""


def run_wrk(wrk: str, url: str, bodies: list[bytes], clients: int, duration_s: float
            ) -> dict[str, Any]:
    """Load with wrk (2 threads); the Lua script reports the same numbers as JSON."""
    with tempfile.TemporaryDirectory(prefix="p21-wrk-") as tmp:
        script = Path(tmp) / "p21.lua"
        script.write_text(_WRK_SCRIPT, encoding="utf-8")
        body_file = Path(tmp) / "bodies.txt"
        body_file.write_bytes(b"\n".join(bodies))
        out = subprocess.run(
            [wrk, "-t", "2", "-c", str(clients), "-d", f"{duration_s:g}s", "-s", str(script),
             url], capture_output=True, text=True, check=False,
            env={**os.environ, "P21_BODIES": str(body_file)})
    for line in out.stdout.splitlines():
        if line.startswith("P21JSON "):
            data: dict[str, Any] = json.loads(line[len("P21JSON "):])
            data["clients"] = clients
            data["rps"] = round(data["requests"] / data["seconds"], 1) if data["seconds"] else 0
            return data
    raise BenchError(f"wrk failed: {out.stderr.strip() or out.stdout.strip()}")


ROUNDS = 5


def _measure(port: int, base: str, bodies: list[bytes], clients: int, duration_s: float,
             wrk: str | None) -> tuple[dict[str, Any], dict[str, Any]]:
    """``POST /v1/plan`` and ``GET /healthz``, ``duration_s`` each.

    The built-in client interleaves them in ``ROUNDS`` slices (plan, health, plan, …) so that
    whatever else the machine does at the time weighs on both alike; wrk runs them one after
    the other (its percentiles cannot be pooled).
    """
    if wrk is not None:
        return (run_wrk(wrk, base + "/v1/plan", bodies, clients, duration_s),
                run_wrk(wrk, base + "/healthz", [], clients, duration_s))
    plan_payloads = [_request_bytes("POST", "/v1/plan", b) for b in bodies]
    health_payloads = [_request_bytes("GET", "/healthz", None)]
    plans: list[LoadResult] = []
    health: list[LoadResult] = []
    for _ in range(ROUNDS):
        plans.append(run_load(port, plan_payloads, clients, duration_s / ROUNDS))
        health.append(run_load(port, health_payloads, clients, duration_s / ROUNDS))
    return LoadResult.merge(plans).to_dict(), LoadResult.merge(health).to_dict()



def configure(parser: argparse.ArgumentParser) -> None:
    parser.description = doc_text(command.__doc__)
    add = parser.add_argument
    add("--duration", type=float_range(1, 600), default=10.0, metavar="SECONDS",
        help="Seconds of load per route. [default: 10.0; 1<=x<=600]")
    add("--clients", type=int_range(1, 256), default=10, metavar="N",
        help="Concurrent keep-alive connections. [default: 10; 1<=x<=256]")
    add("--client", dest="client_kind", choices=("auto", "builtin", "wrk"), default="auto",
        help="Load generator (auto: wrk if installed). [default: auto]")
    add("--full", action="store_true", help="30 s per route instead of --duration.")
    add("--json", dest="as_json", action="store_true", help="One JSON object on stdout.")
    parser.set_defaults(_handler=command)


def command(duration: float, clients: int, client_kind: str, full: bool, as_json: bool) -> None:
    """HTTP API latency and throughput: POST /v1/plan, and GET /healthz as the ceiling.

    Examples:
      perfect21 bench api
      perfect21 bench api --json > api.json
      perfect21 bench api --clients 32 --duration 20

    Targets on a 2-core machine: p95 <= 5 ms and >= 3,000 req/s with 0 errors.
    """
    if full:
        duration = 30.0
    wrk = shutil.which("wrk") if client_kind in ("auto", "wrk") else None
    if client_kind == "wrk" and wrk is None:
        raise BenchError("--client wrk: wrk is not installed")
    generator = "wrk" if wrk else "built-in asyncio client (raw HTTP/1.1 keep-alive, uvloop)"
    requests, source = _requests()
    bodies = [json.dumps({"request": r}, ensure_ascii=False).encode() for r in requests]
    env = {"PERFECT21_API_RATE_LIMIT_PER_S": "1000000000", "PERFECT21_API_RATE_BURST": "1000000000"}
    echo(f"bench api: server process, {clients} clients, {duration:g} s per route, "
               f"{generator}; {source}", err=True)
    with start_server(env) as (base, _proc):
        port = int(base.rsplit(":", 1)[1])
        # Warm-up: every request once (fills the planner's LRU and the JSON cache).
        warm = run_load(port, [_request_bytes("POST", "/v1/plan", b) for b in bodies], 1, 0.0,
                        count=len(bodies))
        if warm.errors or len(warm.latencies_ms) < len(bodies):
            raise BenchError(f"warm-up failed: {warm.errors} error(s), "
                                       f"{len(warm.latencies_ms)} of {len(bodies)} planned")
        echo(f"  POST /v1/plan and GET /healthz, {duration:g} s each …", err=True)
        plan, health = _measure(port, base, bodies, clients, duration, wrk)
    result = {**{k: plan[k] for k in ("rps", "p50_ms", "p95_ms", "p99_ms", "errors",
                                      "clients", "requests", "seconds")},
              "ceiling_rps": health["rps"], "ceiling_p50_ms": health["p50_ms"],
              "ceiling_p95_ms": health["p95_ms"], "ceiling_p99_ms": health["p99_ms"],
              "ceiling_errors": health["errors"],
              "ratio_of_ceiling": round(plan["rps"] / health["rps"], 3) if health["rps"] else None,
              "client": "wrk" if wrk else "builtin", "generator": generator,
              "requests_source": source, "targets": TARGETS,
              "meets_targets": plan["p95_ms"] <= TARGETS["p95_ms"]
              and plan["rps"] >= TARGETS["rps"] and plan["errors"] == 0,
              "cpus": os.cpu_count()}
    if as_json:
        echo(json.dumps(result))
        return
    echo(f"POST /v1/plan  {plan['rps']:>9,.0f} req/s  p50 {plan['p50_ms']:.2f} ms  "
               f"p95 {plan['p95_ms']:.2f} ms  p99 {plan['p99_ms']:.2f} ms  "
               f"errors {plan['errors']}  ({clients} clients)")
    echo(f"GET /healthz   {health['rps']:>9,.0f} req/s  p50 {health['p50_ms']:.2f} ms  "
               f"p95 {health['p95_ms']:.2f} ms  p99 {health['p99_ms']:.2f} ms  "
               f"errors {health['errors']}  (framework ceiling)")
    echo(f"plan / ceiling: {result['ratio_of_ceiling']}   targets: p95 <= 5 ms, "
               f">= 3,000 req/s, 0 errors → {'met' if result['meets_targets'] else 'NOT met'}")
    echo(f"load generator: {generator}")
