"""Manifests: one JSON object per line describing one utterance of a corpus.

A manifest is the hand-over point between corpus readers (asr.corpus.librispeech,
asr.synth) and everything that consumes audio with transcripts (feature cache,
training batches, evaluation). Files are written atomically, so a crash never
leaves a half-written manifest that a later run would trust.
"""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

from asr.atomic_write import write_text_atomically
from asr.errors import DataError

@dataclass(frozen=True)
class Utterance:
    """One utterance of a corpus: where its audio is and what is said in it."""

    id: str  # unique within a corpus, e.g. "1089-134686-0000" (speaker-chapter-index)
    audio_path: str  # absolute path of the audio file (flac or wav)
    duration: float  # seconds, from the audio file's header; 0.0 when the header could not be read
    text: str  # transcript in asr.text.normalize_transcript form (upper case, no punctuation)
    speaker: str  # speaker id, e.g. "1089"; utterances of one voice share it


UTTERANCE_FIELDS = tuple(field.name for field in dataclasses.fields(Utterance))


def write_manifest(path: str | Path, utterances: Iterable[Utterance]) -> None:
    """Write `utterances` to `path` as JSON lines, atomically (temp file, then os.replace)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = (json.dumps(dataclasses.asdict(utterance), ensure_ascii=False) + "\n" for utterance in utterances)
    write_text_atomically(path, "".join(lines))


def read_manifest(path: str | Path) -> list[Utterance]:
    """Read a manifest written by `write_manifest`; DataError names the file and line of any bad entry."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: manifest not found; build it with `asr manifest` (or `asr synth`)")
    utterances = []
    with path.open(encoding="utf-8") as lines:
        for number, line in enumerate(lines, start=1):
            if line.strip():
                utterances.append(_parse_line(line, path, number))
    return utterances


def _parse_line(line: str, path: Path, number: int) -> Utterance:
    where = f"{path}:{number}"
    fix = "fix or delete that line, or delete the manifest so `asr manifest` rebuilds it"
    try:
        entry = json.loads(line)
    except json.JSONDecodeError as error:
        raise DataError(f"{where}: not valid JSON ({error.msg}); {fix}") from None
    if not isinstance(entry, dict):
        raise DataError(f"{where}: expected a JSON object, got {type(entry).__name__}; {fix}")
    missing = [name for name in UTTERANCE_FIELDS if name not in entry]
    unknown = sorted(set(entry) - set(UTTERANCE_FIELDS))
    if missing or unknown:
        detail = "; ".join(filter(None, (missing and f"missing {missing}", unknown and f"unknown {unknown}")))
        raise DataError(f"{where}: fields do not match {list(UTTERANCE_FIELDS)} ({detail}); {fix}")
    duration = entry["duration"]
    # 0 is what the manifest builder records for an unreadable file (skipped and reported when read).
    if isinstance(duration, bool) or not isinstance(duration, (int, float)) or not 0 <= duration < math.inf:
        raise DataError(f"{where}: duration must be a non-negative number of seconds, got {duration!r}; {fix}")
    for name in ("id", "audio_path", "text", "speaker"):
        if not isinstance(entry[name], str):
            raise DataError(f"{where}: {name} must be a string, got {entry[name]!r}; {fix}")
    return Utterance(
        id=entry["id"],
        audio_path=entry["audio_path"],
        duration=float(duration),
        text=entry["text"],
        speaker=entry["speaker"],
    )
