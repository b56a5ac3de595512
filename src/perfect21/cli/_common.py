"""Helpers shared by the command modules: config from flags, output, JSON."""

from __future__ import annotations

import json
import sys
from typing import Any

import click

from perfect21._config import Config, load_config

__all__ = ["config_from", "echo_json", "is_tty", "read_text_arg"]


def config_from(**flags: Any) -> Config:
    """Load the configuration with CLI ``flags`` applied last (``None`` = not given)."""
    return load_config(**flags)


def is_tty() -> bool:
    return sys.stdout.isatty()


def echo_json(value: Any, *, indent: int | None = 2) -> None:
    click.echo(json.dumps(value, ensure_ascii=False, indent=indent))


def read_text_arg(value: str, *, what: str = "request") -> str:
    """``-`` reads stdin (bytes, decoded as UTF-8 with a clear error); else the value."""
    from perfect21._errors import InputError

    if value != "-":
        return value
    data = sys.stdin.buffer.read()
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InputError(f"{what} on stdin is not valid UTF-8 (byte {exc.start})") from None
