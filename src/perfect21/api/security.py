"""The security layer in front of every route: origin, bearer token, rate limit, body size.

One plain ASGI middleware (no ``BaseHTTPMiddleware``: it would cost a task per request)
checks, in this order and before any route code runs:

0. that the request is not cross-site: on a loopback bind the ``Host`` must be a loopback
   name (a DNS-rebinding page would send its own name), and a browser's ``Origin``, when
   sent, must match the ``Host`` (CSRF and cross-site WebSocket hijacking) → 403;
1. ``Authorization: Bearer <token>`` when a token is configured (constant-time compare);
   the dashboard's static shell (``/``, ``/docs``, ``/static/…``) carries no data and is
   exempt (the page asks for the token and sends it with every API call), and a
   browser WebSocket may send the token as ``?token=`` because it cannot set headers.
2. a per-client token bucket (key: client address) → 429 with ``Retry-After``;
3. the body size: ``Content-Length`` over the limit → 413 at once; a body without a length
   (chunked) is read up to the limit here and replayed to the app, → 413 when it is longer.
"""

from __future__ import annotations

import hmac
import math
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

__all__ = ["MAX_BODY_BYTES", "SecurityMiddleware", "TokenBucket", "is_loopback", "replay_body"]

MAX_BODY_BYTES = 1024 * 1024
MAX_CLIENTS = 10_000  # bounded: the least recently seen client is forgotten first

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


class TokenBucket:
    """Per-key token buckets: ``rate`` tokens a second, at most ``burst``; O(1) a call."""

    __slots__ = ("_buckets", "_clock", "burst", "max_keys", "rate")

    def __init__(self, rate: float, burst: int, *, max_keys: int = MAX_CLIENTS,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.rate = float(rate)
        self.burst = float(max(1, burst))
        self.max_keys = max_keys
        self._clock = clock
        self._buckets: OrderedDict[str, list[float]] = OrderedDict()

    def take(self, key: str) -> float:
        """0.0 when a request may proceed, else the seconds until a token is available."""
        now = self._clock()
        bucket = self._buckets.get(key)
        if bucket is None:
            if len(self._buckets) >= self.max_keys:
                self._buckets.popitem(last=False)
            bucket = self._buckets[key] = [self.burst, now]
        else:
            self._buckets.move_to_end(key)
            bucket[0] = min(self.burst, bucket[0] + (now - bucket[1]) * self.rate)
            bucket[1] = now
        if bucket[0] >= 1.0:
            bucket[0] -= 1.0
            return 0.0
        return (1.0 - bucket[0]) / self.rate if self.rate > 0 else math.inf

    def __len__(self) -> int:
        return len(self._buckets)


def _json_error(status: int, code: str, message: str,
                headers: tuple[tuple[bytes, bytes], ...] = ()) -> tuple[Message, Message]:
    import json

    body = json.dumps({"error": code, "message": message}).encode()
    start: Message = {"type": "http.response.start", "status": status,
                      "headers": [(b"content-type", b"application/json"),
                                  (b"content-length", str(len(body)).encode()), *headers]}
    return start, {"type": "http.response.body", "body": body}


def _public_path(path: str) -> bool:
    return path in ("/", "/docs") or path.startswith("/static/")


LOOPBACK_NAMES = frozenset({"127.0.0.1", "localhost", "::1"})
_WANTED = frozenset({b"authorization", b"content-length", b"transfer-encoding", b"host",
                     b"origin"})


def is_loopback(host: str) -> bool:
    """True for 127.0.0.0/8, ::1 and ``localhost``; any other name or address is not."""
    import ipaddress

    if host.strip().lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def host_name(value: str) -> str:
    """``127.0.0.1:8021`` → ``127.0.0.1``; ``[::1]:8021`` → ``::1``; lower case."""
    value = value.strip().lower()
    if value.startswith("["):
        return value[1:].split("]", 1)[0]
    return value.rsplit(":", 1)[0] if value.count(":") == 1 else value


def _origin_host(origin: str) -> str:
    """``http://127.0.0.1:8021`` → ``127.0.0.1:8021`` (``null`` and junk → ``""``)."""
    _scheme, sep, rest = origin.partition("://")
    return rest.split("/", 1)[0].lower() if sep else ""


class SecurityMiddleware:
    """See the module docstring."""

    def __init__(self, app: ASGIApp, *, token: str = "", rate_per_s: float = 200.0,
                 burst: int = 400, max_body: int = MAX_BODY_BYTES,
                 allowed_hosts: frozenset[str] | None = None) -> None:
        self.app = app
        self._token = token.encode() if token else b""
        self._expected = b"Bearer " + self._token
        self.limiter = TokenBucket(rate_per_s, burst) if rate_per_s > 0 else None
        self.max_body = max_body
        self.allowed_hosts = allowed_hosts

    def _authorized(self, scope: Scope, given: bytes | None) -> bool:
        if given is not None:
            return hmac.compare_digest(given, self._expected)
        if scope["type"] == "websocket":
            from urllib.parse import parse_qs

            query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
            values = query.get("token", [])
            return len(values) == 1 and hmac.compare_digest(values[0].encode(), self._token)
        return False

    def _foreign(self, headers: dict[bytes, bytes]) -> str:
        """Why a request looks cross-site (DNS rebinding, CSRF, WebSocket hijacking), or ""."""
        host = headers.get(b"host", b"").decode("latin-1").strip().lower()
        if self.allowed_hosts is not None and host_name(host) not in self.allowed_hosts:
            return "unexpected Host header (this server answers to loopback names only)"
        origin = headers.get(b"origin")
        if origin is not None and _origin_host(origin.decode("latin-1")) != host:
            return "cross-origin request refused (the Origin does not match the Host)"
        return ""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        headers = {k: bytes(v) for k, v in scope.get("headers", ()) if k in _WANTED}
        foreign = self._foreign(headers)
        if foreign:
            await self._refuse(scope, send, 403, "forbidden", foreign, ())
            return
        if self._token and not _public_path(scope["path"]) and \
                not self._authorized(scope, headers.get(b"authorization")):
            await self._refuse(scope, send, 401, "unauthorized",
                               "missing or wrong bearer token (Authorization: Bearer …)",
                               ((b"www-authenticate", b"Bearer"),))
            return
        if self.limiter is not None:
            client = scope.get("client")
            wait = self.limiter.take(client[0] if client else "-")
            if wait > 0.0:
                retry = str(max(1, math.ceil(wait))).encode()
                await self._refuse(scope, send, 429, "rate_limited",
                                   "too many requests; retry after the Retry-After seconds",
                                   ((b"retry-after", retry),))
                return
        if kind == "http":
            length = headers.get(b"content-length")
            if length is not None:
                if not length.isdigit() or int(length) > self.max_body:
                    await self._too_large(send)
                    return
            elif b"transfer-encoding" in headers:
                body = await self._read_limited(receive)
                if body is None:
                    await self._too_large(send)
                    return
                receive = replay_body(body, receive)
        await self.app(scope, receive, send)

    async def _read_limited(self, receive: Receive) -> bytes | None:
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                break
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_body:
                return None
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        return b"".join(chunks)

    async def _too_large(self, send: Send) -> None:
        start, body = _json_error(413, "payload_too_large",
                                  f"request body is over {self.max_body} bytes")
        await send(start)
        await send(body)

    async def _refuse(self, scope: Scope, send: Send, status: int, code: str, message: str,
                      headers: tuple[tuple[bytes, bytes], ...]) -> None:
        if scope["type"] == "websocket":
            # Before the handshake is accepted a close is answered with HTTP 403 by the server.
            await send({"type": "websocket.close", "code": 4000 + status, "reason": code})
            return
        start, body = _json_error(status, code, message, headers)
        await send(start)
        await send(body)


def replay_body(body: bytes, original: Receive) -> Receive:
    """The body read by the middleware, then the client's own messages (disconnect)."""
    sent = False

    async def receive() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await original()

    return receive
