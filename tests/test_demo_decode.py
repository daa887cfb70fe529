"""The demo's parallel decoding gives what one process gives, and its speed probe measures something real."""

from __future__ import annotations

import math
from pathlib import Path

import soundfile as sf

from asr.corpus.manifest import Utterance
from asr.parallel import WorkerPool
from asr.runtime.default_model import DEFAULT_LM_DIR, DEFAULT_MODEL_DIR
from asr.runtime.transcribe import transcribe_file
from asr.tools.demo_decode import Decoding, seconds_per_audio_second, transcribe_all

DATA = Path(__file__).resolve().parent / "data" / "default_model"  # fixed test utterances (test_default_model.py)


def _utterances(count: int) -> list[Utterance]:
    paths = sorted(DATA.glob("*.flac"))[:count]
    return [Utterance(path.stem, str(path), sf.info(path).duration, "", "0") for path in paths]


def test_workers_transcribe_as_one_process_does_in_the_same_order() -> None:
    utterances = _utterances(4)
    for decoding in (Decoding(DEFAULT_MODEL_DIR, int8=True), Decoding(DEFAULT_MODEL_DIR, int8=True, lm_dir=DEFAULT_LM_DIR)):
        alone = [transcribe_file(decoding.recognizer(), Path(u.audio_path)).text for u in utterances]
        with WorkerPool(2) as pool:
            assert list(transcribe_all(pool, decoding, utterances)) == alone
        assert any(alone)


def test_the_probe_gives_seconds_per_second_of_audio_for_each_decoding() -> None:
    utterances = _utterances(2)
    for decoding in (Decoding(DEFAULT_MODEL_DIR, int8=True), Decoding(DEFAULT_MODEL_DIR, int8=True, lm_dir=DEFAULT_LM_DIR)):
        rate = seconds_per_audio_second(decoding, utterances)
        assert math.isfinite(rate) and rate > 0.0  # its size is the machine's; the demo's plan takes it as it is
