"""Real ``perfect21 serve`` processes on loopback for the API tests.

``server`` (session): the default server, a runner profile ``local`` (command line option)
and ``toml-agent`` (``[runners.toml-agent]`` in perfect21.toml), both running ``agent.py``.
``secured_server`` (session): the same with a bearer token. ``limited_server`` (module): a
rate limit of one request every 2 s with a burst of 3.
"""

from __future__ import annotations

import json
import os
import shlex
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

AGENT = Path(__file__).with_name("agent.py")
TOKEN = "test-token-7f3a9c"


@dataclass(frozen=True)
class Server:
    base: str
    port: int
    home: Path
    workdir: Path
    log: Path
    token: str = ""

    def client(self, **kwargs: object) -> httpx.Client:
        headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        return httpx.Client(base_url=self.base, headers=headers, timeout=10.0,
                            **kwargs)  # type: ignore[arg-type]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_server(root: Path, *, env_extra: dict[str, str] | None = None,
                 token: str = "") -> tuple[Server, subprocess.Popen[bytes]]:
    root.mkdir(parents=True, exist_ok=True)
    workdir = root / "work"
    workdir.mkdir(exist_ok=True)
    template = f"{shlex.quote(sys.executable)} {shlex.quote(str(AGENT))} {{agent}} {{prompt_file}}"
    (workdir / "perfect21.toml").write_text(
        f"[runners.toml-agent]\ncommand = {json.dumps(template)}\ndescription = \"from toml\"\n",
        encoding="utf-8")
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("PERFECT21_")}
    env.update({"PERFECT21_HOME": str(root / "home"), "HOME": str(root / "userhome"),
                "PERFECT21_API_RATE_LIMIT_PER_S": "100000",
                "PERFECT21_API_RATE_BURST": "100000", "PYTHONUNBUFFERED": "1"})
    if token:
        env["PERFECT21_API_TOKEN"] = token
    env.update(env_extra or {})
    log = root / "server.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "perfect21", "serve", "--port", str(port),
             "--runner-profile", f"local={template}"],
            cwd=workdir, env=env, stdin=subprocess.DEVNULL, stdout=out, stderr=out)
    server = Server(f"http://127.0.0.1:{port}", port, root / "home", workdir, log, token)
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited {proc.returncode}: {log.read_text()[-3000:]}")
        try:
            if httpx.get(server.base + "/healthz", headers=headers, timeout=1).status_code == 200:
                return server, proc
        except httpx.HTTPError:
            pass
        time.sleep(0.05)
    proc.kill()
    raise RuntimeError(f"server did not start: {log.read_text()[-3000:]}")


def stop_server(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    srv, proc = start_server(tmp_path_factory.mktemp("api-server"))
    yield srv
    stop_server(proc)


@pytest.fixture(scope="session")
def secured_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    srv, proc = start_server(tmp_path_factory.mktemp("api-secured"), token=TOKEN)
    yield srv
    stop_server(proc)


@pytest.fixture(scope="module")
def limited_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    srv, proc = start_server(tmp_path_factory.mktemp("api-limited"), env_extra={
        "PERFECT21_API_RATE_LIMIT_PER_S": "0.5", "PERFECT21_API_RATE_BURST": "3"})
    yield srv
    stop_server(proc)


@pytest.fixture
def client(server: Server) -> Iterator[httpx.Client]:
    with server.client() as c:
        yield c
