"""Atomic file writes: readers see the old file or the complete new one, never a part."""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO


@contextmanager
def atomic_write(path: str | Path, binary: bool = False) -> Iterator[IO]:
    """Open a temporary file beside ``path`` for writing; when the block ends without an
    error it is flushed to disk and renamed onto ``path`` (``os.replace``), otherwise it
    is removed and ``path`` is left as it was.

    The temporary name starts with a dot and ends in ``.tmp``, so a leftover from a killed
    process is never read as a result or checkpoint. It is created with ``open(mode="x")``
    (not ``mkstemp``) so the file gets the usual permissions of the user's umask.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    try:
        with open(temporary, "xb" if binary else "x",
                  encoding=None if binary else "utf-8") as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
