"""The security layer in front of every route: bearer token, rate limit, body size.

One plain ASGI middleware (no ``BaseHTTPMiddleware``: it would cost a task per request)
checks, in this order and before any route code runs:

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

__all__ = ["MAX_BODY_BYTES", "SecurityMiddleware", "TokenBucket", "replay_body"]

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


def _header(scope: Scope, name: bytes) -> bytes | None:
    for key, value in scope.get("headers", ()):
        if key == name:
            return bytes(value)
    return None


def _public_path(path: str) -> bool:
    return path in ("/", "/docs") or path.startswith("/static/")


class SecurityMiddleware:
    """See the module docstring."""

    def __init__(self, app: ASGIApp, *, token: str = "", rate_per_s: float = 200.0,
                 burst: int = 400, max_body: int = MAX_BODY_BYTES) -> None:
        self.app = app
        self._token = token.encode() if token else b""
        self._expected = b"Bearer " + self._token
        self.limiter = TokenBucket(rate_per_s, burst) if rate_per_s > 0 else None
        self.max_body = max_body

    def _authorized(self, scope: Scope) -> bool:
        given = _header(scope, b"authorization")
        if given is not None:
            return hmac.compare_digest(given, self._expected)
        if scope["type"] == "websocket":
            from urllib.parse import parse_qs

            query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
            values = query.get("token", [])
            return len(values) == 1 and hmac.compare_digest(values[0].encode(), self._token)
        return False

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        if self._token and not _public_path(scope["path"]) and not self._authorized(scope):
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
            length = _header(scope, b"content-length")
            if length is not None:
                if not length.isdigit() or int(length) > self.max_body:
                    await self._too_large(send)
                    return
            elif _header(scope, b"transfer-encoding") is not None:
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
