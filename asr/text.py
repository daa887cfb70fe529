"""Transcript normalisation shared by the corpora, the tokenizers and WER scoring.

Normal form is LibriSpeech's: upper case letters A-Z, apostrophes, single spaces.
"""

from __future__ import annotations

import re
import unicodedata

_ALLOWED = re.compile(r"[^A-Z' ]+")
_SPACES = re.compile(r"\s+")


def normalize_transcript(text: str) -> str:
    """Upper-case, strip accents, turn punctuation (but apostrophes) into spaces."""
    text = unicodedata.normalize("NFKD", text)
    text = "".join(c for c in text if not unicodedata.combining(c))
    text = text.upper().replace("\u2019", "'")
    text = _ALLOWED.sub(" ", text)
    return _SPACES.sub(" ", text).strip()
