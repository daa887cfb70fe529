from __future__ import annotations

import json
from pathlib import Path

import pytest

from asr.corpus.manifest import Utterance, read_manifest, write_manifest
from asr.errors import DataError

UTTERANCES = [
    Utterance(id="1-2-0000", audio_path="/data/1/2/1-2-0000.flac", duration=1.25, text="HELLO THERE", speaker="1"),
    Utterance(id="1-2-0001", audio_path="/data/1/2/1-2-0001.flac", duration=3.0, text="IT'S ME", speaker="1"),
]


def test_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "manifest.jsonl"
    write_manifest(path, UTTERANCES)
    assert read_manifest(path) == UTTERANCES
    assert [p.name for p in path.parent.iterdir()] == ["manifest.jsonl"]  # no temp file left behind


def test_write_replaces_atomically(tmp_path: Path) -> None:
    path = tmp_path / "manifest.jsonl"
    write_manifest(path, UTTERANCES)
    write_manifest(path, UTTERANCES[:1])
    assert read_manifest(path) == UTTERANCES[:1]


def test_blank_lines_are_skipped(tmp_path: Path) -> None:
    path = tmp_path / "manifest.jsonl"
    write_manifest(path, UTTERANCES)
    path.write_text(path.read_text() + "\n\n")
    assert read_manifest(path) == UTTERANCES


@pytest.mark.parametrize(
    "bad_line, message",
    [
        ("{not json", "not valid JSON"),
        ("[1, 2]", "expected a JSON object"),
        ('{"id": "x"}', "missing"),
        (json.dumps({**UTTERANCES[0].__dict__, "extra": 1}), "unknown"),
        (json.dumps({**UTTERANCES[0].__dict__, "duration": -1}), "duration must be a non-negative"),
        (json.dumps({**UTTERANCES[0].__dict__, "duration": "inf"}), "duration must be a non-negative"),
        (json.dumps({**UTTERANCES[0].__dict__, "text": 5}), "text must be a string"),
    ],
)
def test_bad_line_names_file_and_line(tmp_path: Path, bad_line: str, message: str) -> None:
    path = tmp_path / "manifest.jsonl"
    write_manifest(path, UTTERANCES)
    path.write_text(path.read_text() + bad_line + "\n")
    with pytest.raises(DataError, match=message) as error:
        read_manifest(path)
    assert f"{path}:3" in str(error.value)
    assert "fix or delete that line" in str(error.value)


def test_missing_manifest(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="manifest not found"):
        read_manifest(tmp_path / "nope.jsonl")
