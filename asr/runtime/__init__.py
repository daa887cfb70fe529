"""The torch-free on-device recognizer: numpy, onnxruntime, soundfile and sounddevice only.

    from asr.runtime import Recognizer

recognizer (Recognizer, Stream, RecognitionResult) over onnx_backend (the
onnxruntime sessions of an export) and search (greedy and beam transducer
search, which asr.training.decoding also runs over a torch model); endpoint
(sherpa-onnx's endpoint rules), tokens (tokens.txt), model_dir and
model_metadata (the files `asr export` writes and their metadata), default_model
(the shipped model), transcribe and live (`asr transcribe`, `asr live`), mic
(capture).

The three classes above are re-exported here, loaded on first use: importing
`asr.runtime.search` or `asr.runtime.tokens` (as training and export do) does
not load onnxruntime.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from asr.runtime.recognizer import RecognitionResult, Recognizer, Stream

__all__ = ["RecognitionResult", "Recognizer", "Stream"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        return getattr(importlib.import_module("asr.runtime.recognizer"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
