"""Helpers shared by the command modules: parsers, argument types, config, output, JSON."""

from __future__ import annotations

import argparse
import json
import math
import sys
from collections.abc import Callable, Sequence
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn, TypeVar, cast

from perfect21._config import Config, load_config

__all__ = [
    "Commands",
    "HelpFormatter",
    "add_command",
    "config_from",
    "dir_path",
    "doc_text",
    "echo",
    "echo_json",
    "existing_dir",
    "file_path",
    "float_range",
    "int_range",
    "is_tty",
    "memory_limit",
    "read_text_arg",
    "subcommands",
    "summary_of",
]


# --- output -------------------------------------------------------------------------------


def echo(message: str = "", *, err: bool = False, nl: bool = True) -> None:
    """Print a line to stdout (or stderr) and flush, so output appears as it is produced."""
    stream = sys.stderr if err else sys.stdout
    stream.write(message + "\n" if nl else message)
    stream.flush()


def echo_json(value: Any, *, indent: int | None = 2) -> None:
    echo(json.dumps(value, ensure_ascii=False, indent=indent))


def is_tty() -> bool:
    return sys.stdout.isatty()


# --- input and configuration --------------------------------------------------------------


def config_from(**flags: Any) -> Config:
    """Load the configuration with CLI ``flags`` applied last (``None`` = not given)."""
    return load_config(**flags)


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


# --- parsers ------------------------------------------------------------------------------


@cache
def _width() -> int:
    """Help width: the terminal's (or $COLUMNS), at most 100.

    argparse builds a formatter at every add_argument, and its default asks shutil, which
    would import shutil (and bz2, lzma) into every command for nothing.
    """
    import os

    columns = int(os.environ["COLUMNS"]) if os.environ.get("COLUMNS", "").isdigit() else 0
    if columns <= 0 and sys.__stdout__ is not None:
        try:
            columns = os.get_terminal_size(sys.__stdout__.fileno()).columns
        except (ValueError, OSError):  # not a terminal, or stdout closed
            columns = 0
    return max(40, min(100, (columns or 80) - 2))


class HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """Descriptions (with their example blocks) as written; option help wrapped at <= 100."""

    def __init__(self, prog: str, indent_increment: int = 2, max_help_position: int = 32,
                 width: int | None = None) -> None:
        super().__init__(prog, indent_increment, max_help_position, width or _width())

    def _format_action_invocation(self, action: argparse.Action) -> str:
        # "-f, --format FORMAT" rather than argparse's "-f FORMAT, --format FORMAT"
        if not action.option_strings or action.nargs == 0:
            return super()._format_action_invocation(action)
        metavar = self._format_args(action, self._get_default_metavar_for_optional(action))
        return f"{', '.join(action.option_strings)} {metavar}"


def _usage_help(parser: argparse.ArgumentParser) -> Callable[..., NoReturn]:
    """The handler of a group run without a command: its help on stderr, exit status 2."""

    def show(**_: Any) -> NoReturn:
        parser.print_help(sys.stderr)
        sys.exit(2)

    return show


if TYPE_CHECKING:
    _SubParsers = argparse._SubParsersAction[argparse.ArgumentParser]
else:  # not subscriptable at run time
    _SubParsers = argparse._SubParsersAction


class Commands(_SubParsers):
    """Subcommands whose unknown options are reported by their own parser (with its usage).

    A lazy subcommand (:meth:`add_lazy`) is only listed in help until it is chosen; then its
    parser is created and its module's configure function is imported and called, so a
    command never builds (or imports) the parsers of the others.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.targets: dict[str, str] = {}  # lazy name -> "module:configure function"

    def add_lazy(self, name: str, summary: str, target: str) -> None:
        self._choices_actions.append(self._ChoicesPseudoAction(name, (), summary))
        # argparse checks the name against the keys; the parser is built in __call__.
        self.choices[name] = cast(argparse.ArgumentParser, None)
        self.targets[name] = target

    def __call__(
        self,
        parser: argparse.ArgumentParser,
        namespace: argparse.Namespace,
        values: str | Sequence[Any] | None,
        option_string: str | None = None,
    ) -> None:
        assert isinstance(values, list)  # nargs=PARSER: [name, *arguments]
        name, *rest = values  # argparse has checked that name is one of the choices
        target = self.targets.pop(name, None)
        if target is not None:
            from importlib import import_module

            chosen = self._parser_class(prog=f"{self._prog_prefix} {name}",
                                        formatter_class=HelpFormatter, allow_abbrev=False)
            self.choices[name] = chosen
            module_name, attr = target.split(":")
            getattr(import_module(module_name), attr)(chosen)
        if self.dest is not argparse.SUPPRESS:
            setattr(namespace, self.dest, name)
        for key, value in vars(self.choices[name].parse_args(rest)).items():
            setattr(namespace, key, value)


def subcommands(parser: argparse.ArgumentParser) -> Commands:
    """Add the subcommands of a group; the group alone prints its help and exits 2."""
    parser.set_defaults(_handler=_usage_help(parser))
    subs = parser.add_subparsers(
        title="commands", metavar="COMMAND", dest="_command", action=Commands, prog=parser.prog
    )
    assert isinstance(subs, Commands)
    return subs


def doc_text(doc: str | None) -> str:
    """A docstring as help text: its first line, then the body without its indentation."""
    first, _, body = (doc or "").partition("\n")
    lines = body.split("\n")
    indent = min((len(line) - len(line.lstrip()) for line in lines if line.strip()), default=0)
    text = "\n".join([first.strip(), *(line[indent:].rstrip() for line in lines)])
    return text.strip("\n") + "\n"


def summary_of(description: str) -> str:
    """The first sentence of a description, for command listings."""
    first = description.split("\n\n", 1)[0].replace("\n", " ")
    end = first.find(". ")
    return first[: end + 1] if end >= 0 else first


def add_command(
    subs: Commands, name: str, handler: Callable[..., object],
    description: str | None = None,
) -> argparse.ArgumentParser:
    """A subcommand running ``handler`` (help: ``description``, else its docstring).

    ``handler`` is called with the parsed options as keyword arguments (``dest`` names).
    """
    text = description if description is not None else doc_text(handler.__doc__)
    parser = subs.add_parser(
        name, help=summary_of(text), description=text, formatter_class=HelpFormatter,
        allow_abbrev=False,
    )
    parser.set_defaults(_handler=handler)
    return parser


# --- argument types (errors become usage errors: exit status 2) ---------------------------


def _range_text(lo: float | None, hi: float | None) -> str:
    if hi is None:
        return f"x>={lo}"
    if lo is None:
        return f"x<={hi}"
    return f"{lo}<=x<={hi}"


_N = TypeVar("_N", int, float)


def int_range(lo: int | None = None, hi: int | None = None) -> Callable[[str], int]:
    """An integer within ``lo``..``hi`` (inclusive)."""
    return _in_range(int, "integer", lo, hi)


def float_range(lo: float | None = None, hi: float | None = None) -> Callable[[str], float]:
    """A finite float within ``lo``..``hi`` (inclusive)."""
    return _in_range(float, "float", lo, hi)


def _in_range(
    parse: Callable[[str], _N], kind: str, lo: float | None, hi: float | None
) -> Callable[[str], _N]:
    def convert(value: str) -> _N:
        try:
            number = parse(value)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{value!r} is not a valid {kind}") from None
        if not math.isfinite(number):
            raise argparse.ArgumentTypeError(f"{value!r} is not a finite number")
        if (lo is not None and number < lo) or (hi is not None and number > hi):
            raise argparse.ArgumentTypeError(
                f"{value} is not in the range {_range_text(lo, hi)}"
            )
        return number

    return convert


def file_path(value: str) -> Path:
    """A file path (it need not exist, but must not be a directory)."""
    path = Path(value)
    if path.is_dir():
        raise argparse.ArgumentTypeError(f"file {value!r} is a directory")
    return path


def dir_path(value: str) -> Path:
    """A directory path (it need not exist, but must not be a file)."""
    path = Path(value)
    if path.exists() and not path.is_dir():
        raise argparse.ArgumentTypeError(f"directory {value!r} is a file")
    return path


def existing_dir(value: str) -> Path:
    """A directory that exists."""
    path = Path(value)
    if not path.exists():
        raise argparse.ArgumentTypeError(f"directory {value!r} does not exist")
    if not path.is_dir():
        raise argparse.ArgumentTypeError(f"directory {value!r} is a file")
    return path


def memory_limit(value: str) -> float:
    """``300MB`` / ``1.5GB`` / ``512M`` (binary units; a bare number is MiB) → MiB."""
    from perfect21._errors import ValidationError
    from perfect21.monitor.memory import parse_memory_limit

    try:
        return parse_memory_limit(value)
    except ValidationError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None

