"""The uvicorn HTTP protocol we serve with: httptools, with a response's head and body coalesced.

uvicorn writes the status line and headers with one ``transport.write`` and the body with
another: two ``send()`` system calls per response, and two segments (two wake-ups, two
``recv()``) for the client. On this VM a system call costs tens of microseconds, so that
second write was a large part of a cached ``POST /v1/plan``.

:class:`CoalescingTransport` holds a write back until the end of the current event-loop step:
a body written in the same step (the usual case — the head and the body of a plain response are
sent without a pause) leaves together with the head in one ``send()``. Anything else — a
streaming body, a ``HEAD`` response, ``100 Continue`` — is flushed by the ``call_soon``
callback one loop step later, in order, and before ``close()``/``write_eof()``.
"""

from __future__ import annotations

import asyncio
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

__all__ = ["CoalescingHttpToolsProtocol", "CoalescingTransport"]


class CoalescingTransport:
    """Wraps a transport: writes made within one loop step become one write."""

    __slots__ = ("_loop", "_pending", "_scheduled", "_transport")

    def __init__(self, transport: Any, loop: asyncio.AbstractEventLoop) -> None:
        self._transport = transport
        self._loop = loop
        self._pending: list[bytes] = []
        self._scheduled = False

    def write(self, data: bytes) -> None:
        if not data:
            return
        self._pending.append(data)
        if not self._scheduled:
            self._scheduled = True
            self._loop.call_soon(self.flush)

    def flush(self) -> None:
        self._scheduled = False
        pending = self._pending
        if not pending:
            return
        self._pending = []
        if self._transport.is_closing():
            return
        self._transport.write(pending[0] if len(pending) == 1 else b"".join(pending))

    def close(self) -> None:
        self.flush()
        self._transport.close()

    def write_eof(self) -> None:
        self.flush()
        self._transport.write_eof()

    def __getattr__(self, name: str) -> Any:  # get_extra_info, pause_reading, is_closing …
        return getattr(self._transport, name)


class CoalescingHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol on a :class:`CoalescingTransport`."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        wrapped = CoalescingTransport(transport, asyncio.get_running_loop())
        super().connection_made(wrapped)  # type: ignore[arg-type]
