"""The ``perfect21`` command line.

Each command group lives in its own small module and is imported only when it is invoked,
so ``perfect21 --help`` and ``perfect21 --version`` import almost nothing.
"""

from __future__ import annotations

import sys

__all__ = ["main"]


def main(argv: list[str] | None = None) -> None:
    """Console-script entry point."""
    args = sys.argv[1:] if argv is None else argv
    if args == ["--version"] or args == ["-V"]:
        # Fast path: answering --version needs neither the parser nor the config.
        from perfect21 import __version__

        sys.stdout.write(f"perfect21 {__version__}\n")
        return
    from perfect21.cli._app import run

    run(args)
