"""Hand-written everyday English sentences for synth-test-everyday.

asr/resources/everyday_test.txt holds ordinary sentences written by people, one
a line, that the grammar of asr.synth.sentences did not produce. Read by the
held-out voices, they measure how far a model trained on grammar text carries
over to the English people actually say. They must never be trained on, so
the corpus planner skips any grammar sentence whose transcript equals one of
them.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from asr.errors import DataError
from asr.text import normalize_transcript

EVERYDAY_TEST_PATH = Path(__file__).resolve().parent.parent / "resources" / "everyday_test.txt"
# More hand-written sentences, never spoken by any subset nor trained on: text coverage and LM perplexity are measured on them.
EVERYDAY_DEV_PATH = EVERYDAY_TEST_PATH.parent / "everyday_dev.txt"


@dataclass(frozen=True)
class EverydaySentence:
    """One line of the file."""

    text: str  # as written, punctuation kept for the synthesizer's prosody
    transcript: str  # normalised as trans.txt transcripts are (asr.text.normalize_transcript)


def hand_written_transcripts() -> frozenset[str]:
    """The transcripts of both files, test and dev: text that nothing may train on."""
    return frozenset(s.transcript for path in (EVERYDAY_TEST_PATH, EVERYDAY_DEV_PATH) for s in load_everyday(path))


def load_everyday(path: Path = EVERYDAY_TEST_PATH) -> list[EverydaySentence]:
    """The file's sentences in file order; blank lines are skipped. DataError names a bad line."""
    try:
        lines = Path(path).read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        raise DataError(f"{path} is missing; restore it from the repository (git checkout -- {path})") from None
    sentences: list[EverydaySentence] = []
    first_line: dict[str, int] = {}
    for number, line in enumerate(lines, start=1):
        text = line.strip()
        if not text:
            continue
        transcript = normalize_transcript(text)
        if not transcript:
            raise DataError(f"{path}:{number}: {text!r} has no words; write a sentence or delete the line")
        if transcript in first_line:
            raise DataError(
                f"{path}:{number}: repeats the sentence of line {first_line[transcript]}; delete one of them"
            )
        first_line[transcript] = number
        sentences.append(EverydaySentence(text, transcript))
    if not sentences:
        raise DataError(f"{path} holds no sentences; restore it from the repository")
    return sentences

