"""Replace a file in one step: write a uniquely named temp file beside it, then os.replace.

A reader never sees a half-written file, and two processes writing the same
file at once (two training runs sharing one data dir) each use their own temp
file, so neither can rename the other's away.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path


def write_bytes_atomically(path: str | Path, data: bytes) -> None:
    """Make `path` hold exactly `data`, or leave it as it was if anything fails."""
    path = Path(path)
    descriptor, temp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(descriptor, "wb") as out:
            out.write(data)
        os.replace(temp_name, path)
    except BaseException:
        Path(temp_name).unlink(missing_ok=True)
        raise


def write_text_atomically(path: str | Path, text: str) -> None:
    """write_bytes_atomically for UTF-8 text."""
    write_bytes_atomically(path, text.encode("utf-8"))
