"""Whole-file recognition with an offline model (model_type asr-offline: the bilstm encoder), torch-free.

    recognizer = OfflineRecognizer.from_dir("model-dir")
    result = recognizer.recognize(16000, samples)      # the whole utterance at once

A bidirectional encoder's every output frame depends on the end of the
utterance, so nothing can be recognised before the audio ends: the latency is
the whole file plus one encoder pass over it, and memory grows with the file
(its samples, features and encoder output are held at once). The streaming
`Recognizer` refuses these models and names this class; `asr transcribe
--offline` uses it. The search (greedy or beam, hotwords, blank penalty), the
attention rescoring of the n-best (rescore_weight > 0) and the result schema
are the streaming runtime's; a file is one segment (endpoints need a stream).

Shapes: T feature frames, D fbank bins, T' encoder frames, J joiner dim.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np

from asr.audio import check_sample_rate, resample, validate_samples
from asr.errors import ConfigError
from asr.features import fbank
from asr.runtime.context_graph import ContextGraph
from asr.runtime.model_dir import ModelFiles
from asr.runtime.lm import check_lm_fits, load_lm
from asr.runtime.onnx_backend import LoadedModel, OnnxModel, attention_rescorer
from asr.runtime.rescore import check_weight, rescore_state
from asr.runtime.result import Alternative, RecognitionResult, ResultBuilder
from asr.runtime.search import LanguageModel, SearchOptions, create_searcher
from asr.runtime.word_rescore import WordRescorer, word_rescorer


class OfflineRecognizer(LoadedModel):
    """An offline model ready to recognise whole utterances; immutable and shareable."""

    def __init__(self, model: OnnxModel, decoding: SearchOptions = SearchOptions(), rescore_weight: float = 0.0,
                 lm: LanguageModel | None = None, word_rescorer: WordRescorer | None = None) -> None:
        """Prefer `OfflineRecognizer.from_dir`; this takes an already loaded model (and LM, checked against its tokens).

        rescore_weight > 0 re-ranks each file's n-best with the model's attention decoder
        (asr.runtime.rescore), and word_rescorer with a word trigram (asr.runtime.word_rescore), as the
        streaming Recognizer does at each endpoint.
        """
        if model.metadata.streaming:
            raise ConfigError(
                f"{model.files.encoder.parent} holds a streaming model ({model.metadata.encoder_kind} encoder); "
                "--offline is for offline models (encoder kind bilstm): leave --offline out"
            )
        self._model = model
        check_lm_fits(lm, model.files.token_table)
        self._searcher = create_searcher(model.backend, decoding, lm)
        self._rescore_weight = check_weight(rescore_weight)
        self._rescorer = attention_rescorer(model, self._rescore_weight, decoding.method)
        self._word_rescorer = word_rescorer

    @classmethod
    def from_dir(
        cls, model_dir: str | Path, num_threads: int = 1, decoding: SearchOptions = SearchOptions(), int8: bool = False,
        rescore_weight: float = 0.0, lm: str | Path | None = None, non_word_penalty: float = 0.0,
        known_words: Sequence[str] = (), word_lm_weight: float = 0.0, word_bonus: float = 0.0,
    ) -> OfflineRecognizer:
        """Load the files `asr export` wrote (the int8 ones with int8=True); ModelFilesError if they are bad.

        lm, non_word_penalty, known_words, word_lm_weight, word_bonus: an LM dir (`asr train-lm`) to fuse in
        beam search and rescore with, as for the streaming Recognizer.
        """
        model = OnnxModel(ModelFiles.from_dir(model_dir, int8=int8), num_threads)
        language_model = None if lm is None else load_lm(lm, model.files.token_table, num_threads,
                                                          non_word_penalty, known_words)
        rescorer = word_rescorer(lm, word_lm_weight, word_bonus, model.files.token_table)
        return cls(model, decoding, rescore_weight, language_model, rescorer)


    def encode(self, features: np.ndarray) -> np.ndarray:
        """One utterance's features (T, D) -> joiner-projected encoder frames (T', J); (0, J) below one frame."""
        meta = self.metadata
        if len(features) < meta.subsampling_factor + meta.pad_frames:
            return np.zeros((0, meta.joiner_dim), dtype=np.float32)
        return self._model.encode_whole(features[None].astype(np.float32, copy=False))[0]

    def recognize(
        self, sample_rate: int, samples: np.ndarray, hotwords: ContextGraph | None = None, nbest: int = 0
    ) -> RecognitionResult:
        """The result of one whole utterance: mono float samples (N,) in [-1, 1] at `sample_rate` Hz.

        hotwords: a graph to bias beam search with (asr.runtime.hotwords); nbest: alternatives to attach.
        AudioError for bad samples (none at all included); audio shorter than one encoder frame gives an empty result.
        """
        check_sample_rate(sample_rate, "sample_rate")
        samples = validate_samples(np.asarray(samples), source="recognize samples")
        if sample_rate != self.sample_rate:
            samples = resample(samples, sample_rate, self.sample_rate)
        encoder_out = self.encode(fbank(samples, self.sample_rate, self.metadata.features))  # (T', J)
        state = self._searcher.init_state(hotwords)
        if len(encoder_out):
            self._searcher.advance(encoder_out[None], [state])
        if self._rescorer is not None:
            rescore_state(state, encoder_out, self._rescorer, self._rescore_weight)
        if self._word_rescorer is not None:
            self._word_rescorer.rescore(state)
        frame_ms = self.metadata.geometry.encoder_frame_ms
        result = ResultBuilder(self.token_table, frame_ms, 0, 0).result(state.best_path(), state.num_frames)
        if nbest <= 0:
            return result
        table = self.token_table
        alternatives = tuple(Alternative(table.decode(path.tokens()), score, path.tokens())
                             for path, score in state.ranked()[:nbest])
        return result.with_nbest(alternatives)
