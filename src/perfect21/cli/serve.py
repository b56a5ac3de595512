"""``perfect21 serve``: the HTTP API and dashboard in one uvicorn process."""

from __future__ import annotations

import socket
from typing import TYPE_CHECKING

from perfect21._errors import ConfigError
from perfect21.api.security import is_loopback
from perfect21.cli._common import config_from, doc_text, echo, int_range

if TYPE_CHECKING:
    import argparse

__all__ = ["configure", "is_loopback", "serve"]


def configure(parser: argparse.ArgumentParser) -> None:
    parser.description = doc_text(serve.__doc__)
    parser.add_argument("--host", default=None,
                        help="Address to bind (default 127.0.0.1). Any non-loopback address "
                             "needs PERFECT21_API_TOKEN.")
    parser.add_argument("--port", type=int_range(1, 65535), default=None, metavar="PORT",
                        help="Port (default 8021). [1<=x<=65535]")
    parser.add_argument("--runner-profile", dest="runner_profiles", action="append", default=[],
                        metavar="NAME=TEMPLATE",
                        help="A command runner profile that POST /v1/runs may use by NAME "
                             "(repeatable; [runners.NAME] tables of perfect21.toml also count).")
    parser.add_argument("--log-level", choices=("critical", "error", "warning", "info"),
                        default="warning", help="Server log level. [default: warning]")
    parser.set_defaults(_handler=serve)


def serve(host: str | None, port: int | None, runner_profiles: list[str],
          log_level: str) -> None:
    """Serve the HTTP API (/v1), the live dashboard (/) and /metrics in one process.

    Examples:
      perfect21 serve
      perfect21 serve --port 9000 --runner-profile local='python3 agent.py {agent} {prompt_file}'
      PERFECT21_API_TOKEN=s3cret perfect21 serve --host 0.0.0.0

    Loopback only by default. Binding any other address requires a token in
    PERFECT21_API_TOKEN; every API request must then send `Authorization: Bearer TOKEN`.
    Runs started over HTTP can only use runner profiles configured here.
    """
    config = config_from(api_host=host, api_port=port)
    if not is_loopback(config.api_host) and not config.api_token:
        raise ConfigError(
            f"refusing to serve on {config.api_host}: a non-loopback address needs a token; "
            "set PERFECT21_API_TOKEN (clients then send 'Authorization: Bearer <token>')")
    from perfect21.api.profiles import load_profiles

    profiles = load_profiles(runner_profiles)
    for profile in profiles.values():
        profile.preflight()
    import uvicorn

    from perfect21.api.app import create_app
    from perfect21.api.server import CoalescingHttpToolsProtocol

    sock = _listen(config.api_host, config.api_port)
    app = create_app(config, runner_profiles=profiles)
    shown = f"[{config.api_host}]" if ":" in config.api_host else config.api_host
    names = ", ".join(sorted(profiles)) or "none"
    echo(f"perfect21 serving http://{shown}:{config.api_port}/  (dashboard /, API /v1, "
               f"docs /docs; runner profiles: {names}; "
               f"auth: {'bearer token' if config.api_token else 'off'})")
    server = uvicorn.Server(uvicorn.Config(
        app, host=config.api_host, port=config.api_port, log_level=log_level,
        access_log=False, server_header=False, loop="uvloop", http=CoalescingHttpToolsProtocol,
        limit_concurrency=1000, backlog=2048, timeout_graceful_shutdown=10,
        ws_max_size=64 * 1024))
    server.run(sockets=[sock])


def _listen(host: str, port: int) -> socket.socket:
    """Bind before starting, so a busy port is a clear error (exit 2), not a log line."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host.strip("[]"), port))
    except OSError as exc:
        sock.close()
        raise ConfigError(f"cannot listen on {host}:{port}: {exc.strerror or exc}; "
                          "choose another --port or stop the other server") from None
    sock.set_inheritable(True)
    return sock
