"""Unreadable audio files of a corpus: skipped and counted, up to a limit, then a stop.

One corrupt flac among 100,000 must not end an hour of feature extraction or an
evaluation; thousands of them mean the corpus (or the disk) is broken, and
training on what is left would be a different experiment than the one asked for.
`BadAudio` is shared by whatever reads the files (the feature caches, `asr eval`),
so one file that fails in every speed's cache counts once.
"""

from __future__ import annotations

from asr.errors import DataError

DEFAULT_MAX_BAD_FILES = 10  # --max-bad-files: a handful of bad downloads, not a broken corpus
SHOWN = 3  # files named in a report; the rest are counted


class BadAudio:
    """Audio files that could not be read: path -> why; DataError once more than `limit` are known."""

    def __init__(self, limit: int = 0, flag: str | None = "--max-bad-files") -> None:
        if limit < 0:
            raise DataError(f"{flag} must be >= 0, got {limit}")
        self.limit = limit  # files that may be skipped; 0 stops at the first
        self.flag = flag  # the option that raises the limit, named in the error; None: there is none
        self.files: dict[str, str] = {}  # path -> the reader's message

    def add(self, path: str, reason: str) -> None:
        """Record an unreadable file; DataError when that makes more than `limit`."""
        self.files.setdefault(str(path), reason)
        if len(self.files) > self.limit and self.flag is None:
            raise DataError(reason)  # no limit to raise: the reader's message says it all
        if len(self.files) > self.limit:
            raise DataError(
                f"{len(self.files)} audio files cannot be read, more than {self.flag} {self.limit} allows "
                f"({self._named()}); repair or remove them and rebuild the manifest (`asr manifest`), "
                f"or raise {self.flag}"
            )

    def __len__(self) -> int:
        return len(self.files)

    def __contains__(self, path: object) -> bool:
        return str(path) in self.files

    def summary(self, what: str) -> str:
        """One line for the end of a run: how many were skipped, the first few and why; "" when none."""
        if not self.files:
            return ""
        return f"warning: {what} skipped {len(self.files)} unreadable audio files ({self._named()})"

    def _named(self) -> str:
        shown = [reason for _, reason in list(self.files.items())[:SHOWN]]
        more = len(self.files) - len(shown)
        return "; ".join(shown) + (f"; and {more} more" if more else "")
