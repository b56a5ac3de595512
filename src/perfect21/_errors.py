"""The one exception tree of Perfect21.

::

    Perfect21Error                 every error the project raises on purpose
    ├── InputError                 bad user input (exit 2, HTTP 422)
    │   ├── ValidationError        a value object failed validation
    │   └── ConfigError            perfect21.toml / PERFECT21_* / flag is invalid
    ├── NotFoundError              unknown id, agent, run, file (exit 3, HTTP 404)
    ├── CatalogError               the agent catalog cannot be built at all
    ├── StoreError                 SQLite store failure (exit 1, HTTP 503)
    │   ├── DatabaseLockedError    another process held the lock past the timeout
    │   └── NotADatabaseError      the file exists but is not a SQLite database
    ├── ExecutionError             a run cannot start or continue
    │   ├── RunnerError            runner misconfigured (missing binary, bad template)
    │   └── GateFailedError        a quality gate failed and stopped the run
    ├── CacheError                 cache misuse (e.g. a value that cannot be serialised)
    ├── CapacityError              memory guard refuses new work (HTTP 503)
    └── AlertRulesError            invalid alert rules file (line and reason)

The CLI maps these to exit codes in one place (``perfect21.cli._app``), the API to HTTP
status codes in one place (``perfect21.api.app``). Third-party exceptions are translated at
the boundary where they occur and never leak to users.
"""

from __future__ import annotations

__all__ = [
    "AlertRulesError",
    "CacheError",
    "CapacityError",
    "CatalogError",
    "ConfigError",
    "DatabaseLockedError",
    "ExecutionError",
    "GateFailedError",
    "InputError",
    "NotADatabaseError",
    "NotFoundError",
    "Perfect21Error",
    "RunnerError",
    "StoreError",
    "ValidationError",
]


class Perfect21Error(Exception):
    """Root of every error Perfect21 raises on purpose."""

    exit_code: int = 1


class InputError(Perfect21Error):
    """The user's input cannot be used as given."""

    exit_code = 2


class ValidationError(InputError):
    """A value failed validation; the message names the field and the limit."""


class ConfigError(InputError):
    """Configuration (file, environment or flag) is invalid."""


class NotFoundError(Perfect21Error):
    """An id, agent, run or file that does not exist."""

    exit_code = 3


class CatalogError(Perfect21Error):
    """The agent catalog cannot be built (e.g. no agents at all)."""


class StoreError(Perfect21Error):
    """A SQLite-backed store failed."""


class DatabaseLockedError(StoreError):
    """Another process held the database lock for longer than the timeout."""


class NotADatabaseError(StoreError):
    """The path exists but is not a SQLite database; it was not modified."""


class ExecutionError(Perfect21Error):
    """A run cannot start or continue."""


class RunnerError(ExecutionError):
    """A runner is misconfigured: missing executable, invalid template."""


class GateFailedError(ExecutionError):
    """A quality gate failed and the run was stopped."""


class CacheError(Perfect21Error):
    """Cache misuse, such as a value that cannot be serialised."""


class CapacityError(Perfect21Error):
    """The memory guard refuses new work until memory is back under the soft limit."""


class AlertRulesError(InputError):
    """An alert rules file is invalid; the message gives the line and the reason."""
