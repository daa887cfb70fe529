"""Replace a file in one step: write a uniquely named temp file beside it, then os.replace.

A reader never sees a half-written file, and two processes writing the same
file at once (two training runs sharing one data dir) each use their own temp
file, so neither can rename the other's away.

The file gets the permissions a plain open() would give it: those of the file it
replaces, else 0o666 less the umask. (tempfile.mkstemp creates 0o600, which left every
manifest, checkpoint index and requantized model file unreadable to other users.)
"""

from __future__ import annotations

import os
import secrets
import stat
from pathlib import Path

_ATTEMPTS = 100  # temp names tried before giving up (each is 64 random bits: a clash is a freak)


def write_bytes_atomically(path: str | Path, data: bytes) -> None:
    """Make `path` hold exactly `data`, or leave it as it was if anything fails."""
    path = Path(path)
    descriptor, temp_path = _create_temp_beside(path)
    try:
        with os.fdopen(descriptor, "wb") as out:
            replaced = _regular_file_mode(path)
            if replaced is not None:
                os.fchmod(out.fileno(), replaced)
            out.write(data)
        os.replace(temp_path, path)
    except BaseException:
        temp_path.unlink(missing_ok=True)
        raise


def write_text_atomically(path: str | Path, text: str) -> None:
    """write_bytes_atomically for UTF-8 text."""
    write_bytes_atomically(path, text.encode("utf-8"))


def _create_temp_beside(path: Path) -> tuple[int, Path]:
    """A new file next to `path`, open for writing, created 0o666 less the umask (the kernel applies it)."""
    for _ in range(_ATTEMPTS):
        temp_path = path.parent / f".{path.name}.{secrets.token_hex(8)}.tmp"
        try:
            return os.open(temp_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666), temp_path
        except FileExistsError:
            continue
    raise FileExistsError(f"no free temporary name beside {path} after {_ATTEMPTS} tries")


def _regular_file_mode(path: Path) -> int | None:
    """The permission bits of the regular file at `path`; None when there is none (a symlink is not followed)."""
    try:
        status = os.lstat(path)
    except FileNotFoundError:
        return None
    return stat.S_IMODE(status.st_mode) if stat.S_ISREG(status.st_mode) else None
