from __future__ import annotations

import argparse
import os
from pathlib import Path

import numpy as np
import pytest
import soundfile

import asr.corpus.librispeech as librispeech
from asr.corpus.librispeech import load_subset, load_subsets, run_manifest_command, select_utterances
from asr.errors import DataError

RATE = 16000


def write_flac(path: Path, seconds: float, seed: int = 0) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    samples = np.random.default_rng(seed).uniform(-0.1, 0.1, int(seconds * RATE)).astype(np.float32)
    soundfile.write(str(path), samples, RATE, format="FLAC")


def make_subset(root: Path, subset: str, speakers: tuple[str, ...], chapters: int = 2, utts: int = 3) -> None:
    """A fake LibriSpeech subset: speakers x chapters x utts short flac files with transcripts."""
    for speaker in speakers:
        for c in range(chapters):
            chapter = f"{100 + c}"
            chapter_dir = root / "LibriSpeech" / subset / speaker / chapter
            lines = []
            for u in range(utts):
                uid = f"{speaker}-{chapter}-{u:04d}"
                write_flac(chapter_dir / f"{uid}.flac", 0.1 + 0.05 * u + 0.01 * c, seed=u)
                lines.append(f"{uid} hello, world number {u}!")
            (chapter_dir / f"{speaker}-{chapter}.trans.txt").write_text("\n".join(lines) + "\n")


@pytest.fixture
def corpus(tmp_path: Path) -> Path:
    make_subset(tmp_path, "train-a", ("11", "12"))
    make_subset(tmp_path, "dev-b", ("21",), chapters=1)
    return tmp_path


def test_reads_one_subset(corpus: Path) -> None:
    utterances = load_subset(corpus, "train-a")
    assert len(utterances) == 12
    assert [u.id for u in utterances] == sorted(u.id for u in utterances)
    first = utterances[0]
    assert first.id == "11-100-0000"
    assert first.text == "HELLO WORLD NUMBER"
    assert first.speaker == "11"
    assert first.duration == pytest.approx(0.1)
    assert Path(first.audio_path).is_absolute() and Path(first.audio_path).is_file()


def test_reads_several_subsets(corpus: Path) -> None:
    utterances = load_subsets(corpus, ["train-a", "dev-b"])
    assert len(utterances) == 15
    assert {u.speaker for u in utterances} == {"11", "12", "21"}


def test_selection_is_deterministic_and_nested(corpus: Path) -> None:
    everything = load_subsets(corpus, ["train-a", "dev-b"])
    small = load_subsets(corpus, ["train-a", "dev-b"], max_utterances=4)
    assert small == load_subsets(corpus, ["train-a", "dev-b"], max_utterances=4)
    assert small == everything[:4]
    larger = load_subsets(corpus, ["train-a", "dev-b"], max_utterances=9)
    assert larger[:4] == small
    hours = 0.6 / 3600
    by_hours = load_subsets(corpus, ["train-a", "dev-b"], max_hours=hours)
    assert sum(u.duration for u in by_hours) <= 0.6 < sum(u.duration for u in everything[: len(by_hours) + 1])
    assert by_hours == everything[: len(by_hours)]
    both = load_subsets(corpus, ["train-a", "dev-b"], max_hours=hours, max_utterances=2)
    assert both == everything[:2]


def test_adding_a_subset_keeps_relative_order(corpus: Path) -> None:
    alone = load_subsets(corpus, ["train-a"])
    together = load_subsets(corpus, ["train-a", "dev-b"])
    assert [u for u in together if u.speaker != "21"] == alone


@pytest.mark.parametrize("limits", [{"max_hours": 0.0}, {"max_utterances": 0}, {"max_hours": -1.0}])
def test_bad_limits(corpus: Path, limits: dict) -> None:
    with pytest.raises(DataError, match="must be positive"):
        load_subsets(corpus, ["train-a"], **limits)


@pytest.mark.parametrize("name", ["../../elsewhere/LibriSpeech/train-a", "/abs/LibriSpeech/train-a", "..", "a/b", ""])
def test_subset_names_are_names_not_paths(corpus: Path, tmp_path: Path, name: str) -> None:
    # A manifest is written inside the subset dir: a path would write it outside the data root.
    with pytest.raises(DataError, match="is not a subset name.*name subsets, not paths"):
        load_subsets(corpus, [name])


def test_cache_is_reused(corpus: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    first = load_subset(corpus, "train-a")
    assert (corpus / "LibriSpeech" / "train-a" / "manifest.jsonl").is_file()

    def fail(path: object) -> float:
        raise AssertionError(f"header of {path} read again although the cache is current")

    monkeypatch.setattr(librispeech, "duration_seconds", fail)
    assert load_subset(corpus, "train-a") == first


def test_cache_is_rebuilt_when_audio_changes(corpus: Path) -> None:
    first = load_subset(corpus, "train-a")
    changed = Path(first[0].audio_path)
    write_flac(changed, 0.7)
    os.utime(changed, ns=(1, 1))  # a distinct mtime even on coarse-grained file systems
    second = load_subset(corpus, "train-a")
    assert second[0].duration == pytest.approx(0.7)
    assert second[1:] == first[1:]


def test_cache_is_rebuilt_when_files_are_added(corpus: Path) -> None:
    assert len(load_subset(corpus, "train-a")) == 12
    make_subset(corpus, "train-a", ("13",), chapters=1, utts=2)
    assert len(load_subset(corpus, "train-a")) == 14


def test_cache_false_writes_nothing(corpus: Path) -> None:
    load_subset(corpus, "train-a", cache=False)
    assert not (corpus / "LibriSpeech" / "train-a" / "manifest.jsonl").exists()


def test_read_only_subset_caches_elsewhere(
    corpus: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(librispeech.os, "access", lambda path, mode: False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    load_subset(corpus, "train-a")
    assert not (corpus / "LibriSpeech" / "train-a" / "manifest.jsonl").exists()
    assert len(list((tmp_path / "cache" / "asr" / "manifests").glob("*/manifest.jsonl"))) == 1


def test_root_without_librispeech(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="no LibriSpeech/ directory") as error:
        load_subsets(tmp_path, ["train-a"])
    assert str(tmp_path) in str(error.value)


def test_missing_subset_lists_existing(corpus: Path) -> None:
    with pytest.raises(DataError, match="subset 'test-clean' not found.*dev-b, train-a"):
        load_subsets(corpus, ["test-clean"])


def test_chapter_without_transcript(corpus: Path) -> None:
    (corpus / "LibriSpeech" / "train-a" / "12" / "101" / "12-101.trans.txt").unlink()
    with pytest.raises(DataError, match=r"12[/\\]101: no transcript 12-101.trans.txt"):
        load_subset(corpus, "train-a")


def test_audio_without_transcript_line(corpus: Path) -> None:
    write_flac(corpus / "LibriSpeech" / "train-a" / "11" / "100" / "11-100-0007.flac", 0.2)
    with pytest.raises(DataError, match="11-100-0007.flac: audio file with no line in 11-100.trans.txt"):
        load_subset(corpus, "train-a")


def test_transcript_line_without_audio(corpus: Path) -> None:
    (corpus / "LibriSpeech" / "train-a" / "11" / "100" / "11-100-0001.flac").unlink()
    with pytest.raises(DataError, match=r"11-100.trans.txt:2: transcript line for 11-100-0001 but no"):
        load_subset(corpus, "train-a")


def test_malformed_transcript_line(corpus: Path) -> None:
    transcript = corpus / "LibriSpeech" / "dev-b" / "21" / "100" / "21-100.trans.txt"
    transcript.write_text(transcript.read_text() + "99-1-0000 wrong prefix\n")
    with pytest.raises(DataError, match=r"21-100.trans.txt:4: expected `21-100-NNNN TEXT`"):
        load_subset(corpus, "dev-b")


def test_duplicate_ids_across_subsets(corpus: Path) -> None:
    make_subset(corpus, "dev-c", ("21",), chapters=1)
    with pytest.raises(DataError, match="21-100-0000 occurs twice"):
        load_subsets(corpus, ["dev-b", "dev-c"])


def test_manifest_command_prints_summaries(corpus: Path, capsys: pytest.CaptureFixture[str]) -> None:
    args = argparse.Namespace(
        data=corpus, subsets="train-a, dev-b", max_hours=None, max_utterances=None, features=False
    )
    assert run_manifest_command(args) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("train-a: 12 utterances, 0.001 hours, 2 speakers (")  # 1.86 s
    assert lines[1].startswith("dev-b: 3 utterances, 0.000 hours, 1 speakers (")


def test_select_utterances_keeps_order_independent_of_input_order(corpus: Path) -> None:
    utterances = load_subset(corpus, "train-a")
    assert select_utterances(utterances) == select_utterances(list(reversed(utterances)))
