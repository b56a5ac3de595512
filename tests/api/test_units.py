"""Pure parts of the API package, without a server: limiter, profiles, error map, loopback."""

from __future__ import annotations

from pathlib import Path

import pytest

from perfect21._errors import (
    CapacityError,
    ConfigError,
    DatabaseLockedError,
    ExecutionError,
    NotFoundError,
    ValidationError,
)
from perfect21.api.profiles import load_profiles, parse_profile_option
from perfect21.api.security import TokenBucket, is_loopback


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_token_bucket_burst_then_rate() -> None:
    clock = Clock()
    bucket = TokenBucket(2.0, 3, clock=clock)
    assert [bucket.take("a") for _ in range(3)] == [0.0, 0.0, 0.0]
    assert bucket.take("a") == pytest.approx(0.5)
    assert bucket.take("b") == 0.0  # per client
    clock.now += 0.5
    assert bucket.take("a") == 0.0
    clock.now += 100
    assert [bucket.take("a") for _ in range(3)] == [0.0, 0.0, 0.0]  # capped at the burst


def test_token_bucket_is_bounded() -> None:
    bucket = TokenBucket(1.0, 1, max_keys=100, clock=Clock())
    for i in range(1000):
        bucket.take(f"10.0.{i // 250}.{i % 250}")
    assert len(bucket) == 100


def test_status_map() -> None:
    pytest.importorskip("fastapi")
    from perfect21.api.app import status_for

    assert status_for(ValidationError("x"))[0] == 422
    assert status_for(ConfigError("x"))[0] == 422
    assert status_for(NotFoundError("x"))[:2] == (404, "not_found")
    assert status_for(CapacityError("x"))[0] == 503
    locked = status_for(DatabaseLockedError("/secret/path/runs.db: locked"))
    assert locked[0] == 503 and "/secret" not in locked[2]
    assert status_for(ExecutionError("boom /internal"))[1:] == ("internal_error",
                                                                  "internal server error")


@pytest.mark.parametrize(("host", "loopback"), [
    ("127.0.0.1", True), ("127.1.2.3", True), ("::1", True), ("[::1]", True),
    ("localhost", True), ("0.0.0.0", False), ("::", False), ("192.168.1.4", False),
    ("example.com", False),
])
def test_is_loopback(host: str, loopback: bool) -> None:
    assert is_loopback(host) is loopback


def test_profile_option(tmp_path: Path) -> None:
    profile = parse_profile_option("local=python3 agent.py {agent}", cwd=tmp_path)
    assert profile.runner == "command" and profile.settings["command"] == "python3 agent.py {agent}"
    assert profile.public() == {"name": "local", "runner": "command",
                                "description": "from --runner-profile", "gates": 0}
    for bad in ("local", "=cmd", "bad name=cmd", "x="):
        with pytest.raises(ConfigError):
            parse_profile_option(bad, cwd=tmp_path)


def test_profiles_from_toml(tmp_path: Path) -> None:
    (tmp_path / "perfect21.toml").write_text(
        'api_port = 9000\n[runners.a]\ncommand = "echo {agent}"\ngates = ["true"]\n'
        'workers = 2\n[runners.c]\nrunner = "claude"\nmodel = "sonnet"\n', encoding="utf-8")
    profiles = load_profiles(["b=echo hi"], cwd=tmp_path, env={})
    assert set(profiles) == {"a", "b", "c"}
    assert profiles["a"].gates == ("true",) and profiles["a"].workers == 2
    assert profiles["c"].settings == {"model": "sonnet"}
    profiles["a"].preflight()
    from perfect21._config import load_config

    assert load_config(cwd=tmp_path, env={}).api_port == 9000  # [runners] does not break it


@pytest.mark.parametrize("table", [
    '[runners.a]\nrunner = "sh"\ncommand = "x"\n',
    '[runners.a]\ncommand = "x"\nbogus = 1\n',
    '[runners.a]\nshell = true\n',
    '[runners.a]\ncommand = "x"\nworkers = 0\n',
    '[runners.a]\ncommand = "x"\ngates = "pytest"\n',
    'runners = 3\n',
])
def test_bad_profile_tables(tmp_path: Path, table: str) -> None:
    (tmp_path / "perfect21.toml").write_text(table, encoding="utf-8")
    with pytest.raises(ConfigError):
        load_profiles(cwd=tmp_path, env={})


def test_preflight_reports_missing_executable(tmp_path: Path) -> None:
    profile = parse_profile_option("x=no-such-binary-p21 {agent}", cwd=tmp_path)
    with pytest.raises(ConfigError, match="runner profile 'x'"):
        profile.preflight()


class FakeTransport:
    def __init__(self) -> None:
        self.writes: list[bytes] = []
        self.closed = False

    def write(self, data: bytes) -> None:
        self.writes.append(data)

    def is_closing(self) -> bool:
        return self.closed

    def close(self) -> None:
        self.closed = True

    def get_extra_info(self, name: str) -> str:
        return f"info:{name}"


async def test_coalescing_transport_joins_one_loop_step() -> None:
    """Head and body written in one step leave in one write; a lone write is flushed one
    step later; close() flushes first; other attributes reach the real transport."""
    import asyncio

    from perfect21.api.server import CoalescingTransport

    real = FakeTransport()
    transport = CoalescingTransport(real, asyncio.get_running_loop())
    transport.write(b"HTTP/1.1 200 OK\r\n\r\n")
    transport.write(b"")
    transport.write(b"body")
    assert real.writes == []
    await asyncio.sleep(0)
    assert real.writes == [b"HTTP/1.1 200 OK\r\n\r\nbody"]
    transport.write(b"HTTP/1.1 100 Continue\r\n\r\n")
    await asyncio.sleep(0)
    assert real.writes[-1] == b"HTTP/1.1 100 Continue\r\n\r\n"
    transport.write(b"last")
    transport.close()
    assert real.writes[-1] == b"last" and real.closed
    assert transport.get_extra_info("peername") == "info:peername"


@pytest.mark.parametrize(("value", "name"), [
    ("127.0.0.1:8021", "127.0.0.1"), ("LOCALHOST:1", "localhost"), ("[::1]:8021", "::1"),
    ("::1", "::1"), ("example.com", "example.com"), ("", ""),
])
def test_host_name(value: str, name: str) -> None:
    from perfect21.api.security import host_name

    assert host_name(value) == name
