"""Runner profiles: the only way a run started over HTTP can execute anything.

A profile names a runner and its settings *on the server*. A request only names a profile;
a command line, an executable or a gate command is never taken from a request.

Profiles come from ``[runners.<name>]`` tables of ``perfect21.toml``::

    [runners.local]
    runner = "command"                       # or "claude"
    command = "python3 agent.py --role {agent} --brief {prompt_file}"
    workdir = "/srv/checkout"                # default: the server's working directory
    gates = ["pytest -q"]                    # run after the last stage
    workers = 4
    timeout_s = 600
    description = "local agent script"

and from ``perfect21 serve --runner-profile NAME=TEMPLATE`` (a ``command`` profile).
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from perfect21._errors import ConfigError

__all__ = ["RunnerProfile", "load_profiles", "parse_profile_option"]

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
_RUNNERS = ("command", "claude")
_COMMON_KEYS = frozenset({"runner", "workdir", "gates", "workers", "timeout_s", "description"})
_RUNNER_KEYS = {
    "command": frozenset({"command", "shell"}),
    "claude": frozenset({"executable", "model", "max_turns", "permission_mode",
                         "allowed_tools", "extra_args"}),
}


@dataclass(frozen=True, slots=True, kw_only=True)
class RunnerProfile:
    """One server-side way to run agents, chosen by name in ``POST /v1/runs``."""

    name: str
    runner: str
    settings: Mapping[str, Any] = field(default_factory=dict)
    workdir: Path = Path(".")
    gates: tuple[str, ...] = ()
    workers: int | None = None
    timeout_s: float | None = None
    description: str = ""

    def public(self) -> dict[str, Any]:
        """What clients may see: the name and kind, never the command template."""
        return {"name": self.name, "runner": self.runner, "description": self.description,
                "gates": len(self.gates)}

    def preflight(self) -> None:
        """Raise :class:`ConfigError` when this profile cannot run at all."""
        from perfect21._errors import RunnerError
        from perfect21.executor.gates import parse_gate, preflight_gate
        from perfect21.executor.runners import make_runner

        try:
            make_runner(self.runner, self.settings).preflight()
            for gate in self.gates:
                preflight_gate(parse_gate(gate), shell=False)
        except (RunnerError, ConfigError) as exc:
            raise ConfigError(f"runner profile {self.name!r}: {exc}") from None
        except Exception as exc:  # InputError from parse_gate and the like
            raise ConfigError(f"runner profile {self.name!r}: {exc}") from None
        if not self.workdir.is_dir():
            raise ConfigError(f"runner profile {self.name!r}: workdir {self.workdir} is not a "
                              "directory")


def _check_name(name: str, where: str) -> str:
    if not _NAME.match(name):
        raise ConfigError(f"{where}: invalid profile name {name!r} (letters, digits, . _ -; "
                          "at most 64)")
    return name


def parse_profile_option(text: str, *, cwd: Path) -> RunnerProfile:
    """``NAME=TEMPLATE`` (``serve --runner-profile``) → a ``command`` profile."""
    name, sep, template = text.partition("=")
    if not sep or not template.strip():
        raise ConfigError(f"--runner-profile {text!r}: expected NAME=TEMPLATE, e.g. "
                          "local='python3 agent.py {agent} {prompt_file}'")
    name = _check_name(name.strip(), "--runner-profile")
    return RunnerProfile(name=name, runner="command",
                         settings={"command": template.strip(), "shell": False},
                         workdir=cwd.resolve(), description="from --runner-profile")


def _profile_from_table(name: str, table: Any, *, source: str, cwd: Path) -> RunnerProfile:
    where = f"{source}: [runners.{name}]"
    _check_name(name, where)
    if not isinstance(table, dict):
        raise ConfigError(f"{where}: expected a table")
    runner = table.get("runner", "command")
    if runner not in _RUNNERS:
        raise ConfigError(f"{where}: runner must be one of {', '.join(_RUNNERS)}")
    unknown = set(table) - _COMMON_KEYS - _RUNNER_KEYS[runner]
    if unknown:
        raise ConfigError(f"{where}: unknown key(s): {', '.join(sorted(unknown))}")
    if runner == "command" and not isinstance(table.get("command"), str):
        raise ConfigError(f"{where}: 'command' (a template string) is required")
    gates = table.get("gates", [])
    if not isinstance(gates, list) or not all(isinstance(g, str) for g in gates):
        raise ConfigError(f"{where}: 'gates' must be a list of command strings")
    workers = table.get("workers")
    if workers is not None and (not isinstance(workers, int) or not 1 <= workers <= 512):
        raise ConfigError(f"{where}: 'workers' must be an integer 1..512")
    timeout = table.get("timeout_s")
    if timeout is not None and (not isinstance(timeout, int | float) or timeout <= 0):
        raise ConfigError(f"{where}: 'timeout_s' must be a positive number")
    workdir = Path(str(table.get("workdir", "."))).expanduser()
    settings = {k: v for k, v in table.items() if k in _RUNNER_KEYS[runner]}
    return RunnerProfile(name=name, runner=runner, settings=settings,
                         workdir=(cwd / workdir).resolve(), gates=tuple(gates),
                         workers=workers, timeout_s=None if timeout is None else float(timeout),
                         description=str(table.get("description", "")))


def _config_file(cwd: Path, env: Mapping[str, str]) -> Path | None:
    from perfect21._config import CONFIG_FILE, ENV_PREFIX

    explicit = env.get(ENV_PREFIX + "CONFIG")
    path = Path(explicit) if explicit else cwd / CONFIG_FILE
    return path if path.is_file() else None


def load_profiles(options: Iterable[str] = (), *, cwd: Path | None = None,
                  env: Mapping[str, str] | None = None) -> dict[str, RunnerProfile]:
    """Profiles from ``perfect21.toml`` then ``--runner-profile`` options (later ones win)."""
    import tomllib

    from perfect21._config import RUNNERS_TABLE

    cwd = Path.cwd() if cwd is None else cwd
    env = os.environ if env is None else env
    profiles: dict[str, RunnerProfile] = {}
    path = _config_file(cwd, env)
    if path is not None:
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except (tomllib.TOMLDecodeError, OSError, UnicodeDecodeError) as exc:
            raise ConfigError(f"{path}: cannot read runner profiles: {exc}") from None
        tables = data.get(RUNNERS_TABLE, {})
        if not isinstance(tables, dict):
            raise ConfigError(f"{path}: [runners] must be a table of [runners.<name>] tables")
        for name, table in tables.items():
            profiles[name] = _profile_from_table(name, table, source=str(path),
                                                 cwd=path.parent)
    for option in options:
        profile = parse_profile_option(option, cwd=cwd)
        profiles[profile.name] = profile
    return profiles
