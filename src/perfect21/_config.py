"""One typed configuration: defaults < ``perfect21.toml`` < ``PERFECT21_*`` env < flags.

Every setting is a field of :class:`Config`. In ``perfect21.toml`` a field may be written at
the top level (``decisions_batch_size = 256``) or inside the table named by its prefix
(``[decisions]`` ``batch_size = 256``). In the environment it is ``PERFECT21_`` plus the field
name in upper case (``PERFECT21_DECISIONS_BATCH_SIZE=256``). CLI flags are applied last with
:meth:`Config.replace`.

The data directory is ``./.perfect21`` unless ``PERFECT21_HOME`` (or ``home`` in the file)
says otherwise. Loading is cheap (no TOML import when there is no file) because every
command, including ``--version``, may load it.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, NamedTuple

from perfect21._errors import ConfigError

__all__ = ["Config", "load_config"]

CONFIG_FILE = "perfect21.toml"
ENV_PREFIX = "PERFECT21_"
RUNNERS_TABLE = "runners"  # [runners.<name>] tables: see perfect21.api.profiles


class Config(NamedTuple):
    """All settings of Perfect21, with their defaults. Immutable: a named tuple, not a
    dataclass, because every command loads it and a named tuple is cheaper to define (see
    docs/adr/0005-startup.md). Build it with keywords; :meth:`replace` checks and converts."""

    home: Path = Path(".perfect21")

    # planner
    team_size_simple: tuple[int, int] = (1, 3)
    team_size_medium: tuple[int, int] = (3, 6)
    team_size_complex: tuple[int, int] = (5, 8)
    plan_cache_entries: int = 1024
    agents_dirs: tuple[Path, ...] = ()
    builtin_agents: bool = True
    user_agents: bool = True  # read .claude/agents and ~/.claude/agents

    # decisions
    decisions_batch_size: int = 1024
    decisions_linger_ms: float = 1.0
    decisions_busy_timeout_s: float = 5.0

    # executor
    executor_workers: int = 4
    executor_max_concurrency: int = 64
    executor_task_timeout_s: float = 1800.0
    executor_retries: int = 2
    executor_backoff_s: float = 1.0

    # cache
    cache_enabled: bool = True
    cache_l1_entries: int = 4096
    cache_l1_bytes: int = 32 * 1024 * 1024
    cache_l3_bytes: int = 1024 * 1024 * 1024
    cache_ttl_s: float = 7 * 24 * 3600.0
    cache_prefetch: bool = True
    redis_url: str = ""

    # monitor
    memory_soft_limit_mb: float = 450.0
    memory_hard_limit_mb: float = 500.0
    memory_sample_interval_s: float = 1.0

    # api
    api_host: str = "127.0.0.1"
    api_port: int = 8021
    api_token: str = ""  # never shown by repr()
    api_rate_limit_per_s: float = 200.0
    api_rate_burst: int = 400

    def replace(self, **changes: Any) -> Config:
        """A copy with ``changes`` applied (used for CLI flags); ``None`` values are ignored."""
        changes = {k: v for k, v in changes.items() if v is not None}
        unknown = set(changes) - _FIELD_NAMES
        if unknown:
            raise ConfigError(f"unknown setting(s): {', '.join(sorted(unknown))}")
        return self._replace(**{k: _coerce(k, v) for k, v in changes.items()})

    def __repr__(self) -> str:
        pairs = zip(self._fields, self, strict=True)
        shown = (f"{k}={v!r}" for k, v in pairs if k != "api_token")
        return f"Config({', '.join(shown)})"

    def path(self, name: str) -> Path:
        """A path inside the data directory."""
        return self.home / name


_FIELD_NAMES = frozenset(Config._fields)
_DEFAULTS = Config()


def _coerce(name: str, value: Any) -> Any:
    """Convert ``value`` (from TOML, env or a flag) to the type of field ``name``."""
    default = getattr(_DEFAULTS, name)
    try:
        if isinstance(default, bool):
            if isinstance(value, bool):
                return value
            text = str(value).strip().lower()
            if text in {"1", "true", "yes", "on"}:
                return True
            if text in {"0", "false", "no", "off"}:
                return False
            raise ValueError("expected true/false")
        if isinstance(default, int):
            if isinstance(value, bool):
                raise ValueError("expected an integer")
            return int(value)
        if isinstance(default, float):
            if isinstance(value, bool):
                raise ValueError("expected a number")
            return float(value)
        if isinstance(default, Path):
            return Path(str(value)).expanduser()
        if isinstance(default, str):
            if not isinstance(value, str):
                raise ValueError("expected a string")
            return value
        if name.startswith("team_size_"):
            return _int_pair(value)
        if isinstance(default, tuple):
            items = value.split(os.pathsep) if isinstance(value, str) else list(value)
            return tuple(Path(str(v)).expanduser() for v in items if str(v))
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"setting {name!r}: invalid value {value!r} ({exc})") from None
    raise ConfigError(f"setting {name!r}: unsupported value {value!r}")


def _int_pair(value: Any) -> tuple[int, int]:
    if isinstance(value, str):
        parts = [p for p in value.replace(",", "-").split("-") if p.strip()]
    else:
        parts = list(value)
    if len(parts) == 1:
        parts = [parts[0], parts[0]]
    if len(parts) != 2:
        raise ValueError("expected MIN-MAX")
    low, high = int(parts[0]), int(parts[1])
    if not 1 <= low <= high <= 64:
        raise ValueError("expected 1 <= MIN <= MAX <= 64")
    return (low, high)


def _from_toml(path: Path) -> dict[str, Any]:
    import tomllib

    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: invalid TOML: {exc}") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: not UTF-8 text") from None
    flat: dict[str, Any] = {}
    for key, value in data.items():
        if key == RUNNERS_TABLE:  # runner profiles: read by the API server, not settings
            continue
        if isinstance(value, dict):
            for sub, subvalue in value.items():
                flat[f"{key}_{sub}"] = subvalue
        else:
            flat[key] = value
    unknown = set(flat) - _FIELD_NAMES
    if unknown:
        raise ConfigError(f"{path}: unknown setting(s): {', '.join(sorted(unknown))}")
    return flat


def load_config(
    *, cwd: Path | None = None, env: dict[str, str] | None = None, **flags: Any
) -> Config:
    """Build the configuration from defaults, ``perfect21.toml``, environment and flags."""
    env = dict(os.environ) if env is None else env
    cwd = Path.cwd() if cwd is None else cwd
    values: dict[str, Any] = {}
    file = Path(env[ENV_PREFIX + "CONFIG"]) if ENV_PREFIX + "CONFIG" in env else cwd / CONFIG_FILE
    if file.is_file():
        values.update(_from_toml(file))
    elif ENV_PREFIX + "CONFIG" in env:
        raise ConfigError(f"{file}: config file not found (from PERFECT21_CONFIG)")
    for key, value in env.items():
        if key.startswith(ENV_PREFIX) and key != ENV_PREFIX + "CONFIG":
            name = key[len(ENV_PREFIX) :].lower()
            if name in _FIELD_NAMES:
                values[name] = value
    values = {k: _coerce(k, v) for k, v in values.items()}
    config = _DEFAULTS._replace(**values)
    if not config.home.is_absolute():
        config = config._replace(home=cwd / config.home)
    return config.replace(**flags)
