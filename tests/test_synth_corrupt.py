"""The noisy and reverberant copies of test subsets that `asr synth` writes (asr.synth.corrupt)."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile

from asr.audio import SAMPLE_RATE, load
from asr.corpus.acoustics import active_snr_db
from asr.corpus.librispeech import load_subset
from asr.errors import DataError
import asr.synth.corrupt as corrupt
from asr.synth.corrupt import NOISY_SNR_DB, write_corrupted_subsets


def write_subset(root: Path, subset: str, speaker: str, count: int, seed: int) -> None:
    """`count` utterances of tone bursts in silence, LibriSpeech layout."""
    rng = np.random.default_rng(seed)
    chapter = root / "LibriSpeech" / subset / speaker / "1000"
    chapter.mkdir(parents=True)
    lines = []
    for i in range(count):
        samples = np.zeros(int(rng.uniform(1.0, 1.5) * SAMPLE_RATE), np.float32)
        t = np.arange(SAMPLE_RATE // 2) / SAMPLE_RATE
        samples[4000 : 4000 + len(t)] = 0.3 * np.sin(2 * np.pi * rng.uniform(100, 400) * t) * np.hanning(len(t))
        utterance_id = f"{speaker}-1000-{i:04d}"
        soundfile.write(str(chapter / f"{utterance_id}.flac"), samples, SAMPLE_RATE, format="FLAC", subtype="PCM_16")
        lines.append(f"{utterance_id} WORDS OF NUMBER {i}")
    (chapter / f"{speaker}-1000.trans.txt").write_text("\n".join(lines) + "\n")


@pytest.fixture
def corpus(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    pytest.importorskip("pyroomacoustics")
    monkeypatch.setattr(corrupt, "REVERB_ROOMS", 4)  # a small bank keeps the test fast
    root = tmp_path / "corpus"
    write_subset(root, "synth-train", "11", 6, seed=0)
    write_subset(root, "synth-test", "12", 5, seed=1)
    return root


def _files(directory: Path) -> dict[str, bytes]:
    return {str(p.relative_to(directory)): p.read_bytes() for p in sorted(directory.rglob("*")) if p.is_file()}


def test_copies_keep_ids_transcripts_and_lengths(corpus: Path) -> None:
    result = write_corrupted_subsets(corpus, ["synth-test", "synth-test-voice"], seed=1, workers=1)
    assert sorted(result) == ["synth-test-noisy", "synth-test-reverb"]  # absent subsets are skipped
    source = load_subset(corpus, "synth-test")
    source_dir = corpus / "LibriSpeech" / "synth-test"
    for name, utterances in result.items():
        directory = corpus / "LibriSpeech" / name
        assert [(u.id, u.text, u.speaker, u.duration) for u in utterances] == [
            (u.id, u.text, u.speaker, u.duration) for u in source]
        assert load_subset(corpus, name) == utterances  # the cached manifest is current
        for transcript in source_dir.glob("*/*/*.trans.txt"):
            assert (directory / transcript.relative_to(source_dir)).read_bytes() == transcript.read_bytes()
        for clean, copy in zip(source, utterances):
            assert Path(copy.audio_path).is_relative_to(directory.resolve())
            info = soundfile.info(copy.audio_path)
            assert (info.samplerate, info.channels, info.subtype) == (SAMPLE_RATE, 1, "PCM_16")
            assert info.frames == soundfile.info(clean.audio_path).frames
            assert not np.array_equal(load(copy.audio_path), load(clean.audio_path))
    for clean, noisy in zip(source, result["synth-test-noisy"]):
        speech = load(clean.audio_path)
        assert active_snr_db(speech, load(noisy.audio_path) - speech) == pytest.approx(NOISY_SNR_DB, abs=0.3)


def test_same_seed_same_bytes_and_reruns_skip(corpus: Path) -> None:
    write_corrupted_subsets(corpus, ["synth-test"], seed=1, workers=1)
    copies = {name: _files(corpus / "LibriSpeech" / name) for name in ("synth-test-noisy", "synth-test-reverb")}
    stamp = (corpus / "LibriSpeech" / "synth-test-noisy" / "manifest.jsonl").stat().st_mtime_ns
    write_corrupted_subsets(corpus, ["synth-test"], seed=1, workers=1)
    assert (corpus / "LibriSpeech" / "synth-test-noisy" / "manifest.jsonl").stat().st_mtime_ns == stamp
    for name in copies:
        shutil.rmtree(corpus / "LibriSpeech" / name)
    write_corrupted_subsets(corpus, ["synth-test"], seed=1, workers=2)  # any worker count: the same files
    for name, files in copies.items():
        again = _files(corpus / "LibriSpeech" / name)
        flacs = [k for k in files if k.endswith(".flac")]
        assert flacs and all(again[k] == files[k] for k in flacs) and again.keys() == files.keys()
    write_corrupted_subsets(corpus, ["synth-test"], seed=2, workers=1)  # another seed: rewritten, other noise
    first = next(k for k in copies["synth-test-noisy"] if k.endswith(".flac"))
    assert _files(corpus / "LibriSpeech" / "synth-test-noisy")[first] != copies["synth-test-noisy"][first]
    assert not (corpus / ".corrupt-partial").exists()


def test_babble_needs_the_training_subset(corpus: Path) -> None:
    shutil.rmtree(corpus / "LibriSpeech" / "synth-train")
    with pytest.raises(DataError, match="--no-corrupted"):
        write_corrupted_subsets(corpus, ["synth-test"], seed=1, workers=1)
