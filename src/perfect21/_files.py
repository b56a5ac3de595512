"""Small file helpers shared by the packages."""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["write_atomic"]


def write_atomic(path: Path, data: str | bytes) -> None:
    """Write ``data`` to ``path`` all at once: a temporary file beside it, renamed over it.

    Readers see the old file or the new one, never a part; a failed write leaves ``path`` as
    it was and removes the temporary file. Text is written as UTF-8 with ``\\n`` line ends.
    """
    import tempfile  # only writers pay for it (not on the start-up path of every command)

    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data.encode("utf-8") if isinstance(data, str) else data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
