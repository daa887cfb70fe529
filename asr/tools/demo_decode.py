"""The demo's decoding: test files through the streaming runtime in parallel worker processes, and a
short probe of how fast this machine decodes, from which the demo plans its time.

Each recognizer decodes on one thread (as `asr transcribe` does), so the evaluation ran on one
core of two: 314 of the demo's 1082 s on a 2-core machine without AVX-512 (session 15), where
the time budget had planned for the 92 s it took on the machine it was tuned on. Workers build
their recognizers once each (onnxruntime sessions do not pickle), from a `Decoding` that does.
"""

from __future__ import annotations

import functools
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Iterator, Sequence

from asr.corpus.manifest import Utterance
from asr.parallel import WorkerPool

if TYPE_CHECKING:  # loads onnxruntime: not while cli.py builds its parsers
    from asr.runtime.recognizer import Recognizer


@dataclass(frozen=True)
class Decoding:
    """How one column of the demo's WER table decodes a model dir."""

    model_dir: Path
    int8: bool  # the *.int8.onnx files
    lm_dir: Path | None = None  # beam search fused with this LM at its fusion.json settings; None: greedy

    def recognizer(self) -> Recognizer:
        """A recognizer decoding this way; ModelFilesError when the files do not fit together."""
        from asr.runtime.lm import FusionSettings
        from asr.runtime.recognizer import Recognizer

        if self.lm_dir is None:
            return Recognizer.from_dir(self.model_dir, int8=self.int8)
        fusion = FusionSettings.from_dir(self.lm_dir)
        return Recognizer.from_dir(self.model_dir, int8=self.int8, decoding=fusion.search_options(), lm=self.lm_dir,
                                   **fusion.lm_arguments())


@functools.lru_cache(maxsize=None)
def _recognizer(decoding: Decoding) -> Recognizer:
    """One recognizer per decoding in each worker process, built on its first file."""
    return decoding.recognizer()


def _transcribe(job: tuple[Decoding, str]) -> str:
    from asr.runtime.transcribe import transcribe_file

    decoding, audio_path = job
    return transcribe_file(_recognizer(decoding), Path(audio_path)).text


def transcribe_all(pool: WorkerPool, decoding: Decoding, utterances: Sequence[Utterance]) -> Iterator[str]:
    """The transcript of each utterance's audio, in order, decoded in the pool's workers."""
    return pool.map(_transcribe, ((decoding, utterance.audio_path) for utterance in utterances))


def seconds_per_audio_second(decoding: Decoding, utterances: Sequence[Utterance]) -> float:
    """Wall seconds this machine takes, now, to decode one second of audio `decoding`'s way (loading excluded)."""
    from asr.runtime.transcribe import transcribe_file

    recognizer = decoding.recognizer()
    start = time.perf_counter()
    for utterance in utterances:
        transcribe_file(recognizer, Path(utterance.audio_path))
    return (time.perf_counter() - start) / max(1e-3, sum(utterance.duration for utterance in utterances))
