"""The torch-free streaming recognizer: an immutable `Recognizer` and a mutable `Stream` per utterance.

    recognizer = Recognizer.from_dir("model-dir")
    stream = recognizer.create_stream()
    for chunk in chunks:                        # any size, any sample rate
        stream.accept_waveform(16000, chunk)
        while recognizer.is_ready(stream):
            recognizer.decode(stream)
        if recognizer.is_endpoint(stream):      # the speaker paused: a segment ends
            print(stream.result.text)
            stream.reset()
    stream.input_finished()
    while recognizer.is_ready(stream):
        recognizer.decode(stream)
    print(stream.result.text)

The split follows sherpa-onnx's OnlineRecognizer / OnlineStream: the recognizer
holds the model and the search algorithm and no per-utterance state; a stream
holds everything of one utterance (audio buffer, encoder state, search state,
result) and offers the recognizer a small public surface (`num_frames_ready`,
`take_window`, `encoder_state`, `search_state`, `config`) instead of its
private attributes, so another recognizer loop (a server's) can drive it too.

A stream feeds samples to a streaming fbank (asr.features, the model's feature
config from its metadata); a window of T = window_frames frames is ready once
their samples have arrived, and decoding it computes the frames it lacks (in
one call, however small the audio chunks were) and advances the buffer by
decode_chunk_len frames, so consecutive windows share the encoder's pad_frames
of lookahead. `Recognizer.decode_streams` runs one batched encoder call and one
batched search step for many streams (a server's loop).

Shapes: N streams, T window frames, D fbank bins, n encoder frames per window, J joiner dim.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import soxr

from asr.audio import check_sample_rate, validate_samples
from asr.errors import AsrError, AudioError, ConfigError
from asr.features import FbankStream, fbank
from asr.runtime.endpoint import EndpointConfig, is_endpoint
from asr.runtime.geometry import WindowGeometry
from asr.runtime.model_dir import ModelFiles, ModelMetadata
from asr.runtime.onnx_backend import EncoderState, LoadedModel, OnnxModel, attention_rescorer
from asr.runtime.result import Alternative, RecognitionResult, ResultBuilder
from asr.runtime.context_graph import ROOT, ContextGraph
from asr.runtime.hotwords import DEFAULT_SCORE, HotwordList, build_context_graph
from asr.runtime.lm import check_lm_fits, load_lm
from asr.runtime.rescore import check_weight, rescore_state
from asr.runtime.search import (
    LanguageModel, Searcher, SearchOptions, SearchState, create_searcher, take_state,
)
from asr.runtime.token_path import EMPTY_PATH
from asr.runtime.tokens import TokenTable
from asr.runtime.word_rescore import WordRescorer, word_rescorer


@dataclass(frozen=True, eq=False)
class StreamConfig:
    """What all streams of one model share, made once by its Recognizer; read-only."""

    metadata: ModelMetadata
    geometry: WindowGeometry  # the metadata's, computed once: the stream reads it on every window
    token_table: TokenTable
    silence: np.ndarray  # (D,) the feature frame of digital silence: tail padding
    keeps_segment_frames: bool = False  # whether streams keep their segment's encoder frames (for rescoring)

    @property
    def frame_ms(self) -> float:
        """Milliseconds per encoder frame: timestamps are frames * ms / 1000, so 7 frames give 0.28 s, not
        0.28000000000000003."""
        return self.geometry.encoder_frame_ms


def _silence_frame(metadata: ModelMetadata) -> np.ndarray:
    """(D,) the feature frame of digital silence under the model's feature config."""
    config = metadata.features
    return fbank(np.zeros(config.frame_length, dtype=np.float32), config.sample_rate, config)[0]


def _is_clean_chunk(samples: np.ndarray) -> bool:
    """Whether validate_samples would pass `samples` unchanged: 1-D float32, all finite.

    Checked before resampling (a NaN would poison the resampler's state) with one
    float64 sum, which cannot overflow, so the usual chunk skips the full checks.
    """
    return samples.ndim == 1 and samples.dtype == np.float32 and math.isfinite(samples.sum(dtype=np.float64))


def _new_segment(state: SearchState) -> SearchState:
    """A fresh search state that keeps the best hypothesis's predictor output (as sherpa-onnx's Reset).

    The next segment then starts from the context of what was just said rather
    than from silence, so splitting at an endpoint barely changes the transcript.
    """
    best = int(np.argmax(state.settled_scores()))
    rows = np.array([best])
    # Hotword matches restart at the graph's root with the new segment's empty path, so a
    # hypothesis's graph state stays a function of its tokens (what beam search merges by).
    contexts = None if state.context_graph is None else [ROOT]
    # The LM, like the predictor, goes on from the best hypothesis's context.
    lm_scores = None if state.lm_scores is None else state.lm_scores[rows]
    return SearchState([EMPTY_PATH], np.zeros(1), state.decoder_out[rows], take_state(state.predictor_state, rows),
                       0, state.context_graph, contexts, take_state(state.lm_state, rows), lm_scores)


class Recognizer(LoadedModel):
    """An exported model ready to decode any number of streams; immutable and shareable."""

    def __init__(
        self,
        model: OnnxModel,
        decoding: SearchOptions = SearchOptions(),
        endpoint: EndpointConfig = EndpointConfig(),
        rescore_weight: float = 0.0,
        lm: LanguageModel | None = None,
        word_rescorer: WordRescorer | None = None,
    ) -> None:
        """Prefer `Recognizer.from_dir`; this takes an already loaded model (and LM, checked against its tokens).

        ConfigError for an offline model. rescore_weight > 0 re-ranks each segment's n-best at
        its end with the model's attention decoder (asr.runtime.rescore); ConfigError if the
        model has none. word_rescorer: re-ranks it by a word trigram too (asr.runtime.word_rescore).
        """
        if not model.metadata.streaming:
            raise ConfigError(
                f"{model.files.encoder.parent} holds an offline model ({model.metadata.encoder_kind} encoder): it "
                "cannot stream, as each output frame depends on the end of the utterance; transcribe whole files "
                "with `asr transcribe --offline` (Python: asr.runtime.offline.OfflineRecognizer)"
            )
        self._model = model
        check_lm_fits(lm, model.files.token_table)
        self._searcher: Searcher = create_searcher(model.backend, decoding, lm)
        self._endpoint = endpoint
        self._rescorer = attention_rescorer(model, check_weight(rescore_weight), decoding.method)
        self._rescore_weight = rescore_weight
        self._word_rescorer = word_rescorer
        meta = model.metadata
        self._stream_config = StreamConfig(meta, meta.geometry, model.files.token_table, _silence_frame(meta),
                                           keeps_segment_frames=self._rescorer is not None)

    @classmethod
    def from_dir(
        cls,
        model_dir: str | Path,
        num_threads: int = 1,
        decoding: SearchOptions = SearchOptions(),
        endpoint: EndpointConfig = EndpointConfig(),
        int8: bool = False,
        rescore_weight: float = 0.0,
        lm: str | Path | None = None,
        non_word_penalty: float = 0.0,
        known_words: Sequence[str] = (),
        word_lm_weight: float = 0.0,
        word_bonus: float = 0.0,
    ) -> Recognizer:
        """Load the files `asr export` wrote (the int8 ones with int8=True); ModelFilesError if they are bad.

        lm: an LM dir (`asr train-lm`) to fuse in beam search with weight decoding.lm_scale;
        ModelFilesError if it is missing or was trained for other tokens, ConfigError with greedy search.
        non_word_penalty > 0: the LM pays it for each word outside its dir's words.txt and `known_words` (say,
        the words of the hotwords the streams will take; asr.runtime.lexicon).
        word_lm_weight > 0: each segment's n-best is re-ranked at its end by weight x the log-probability of the
        LM dir's word trigram plus word_bonus per word (asr.runtime.word_rescore).
        """
        model = OnnxModel(ModelFiles.from_dir(model_dir, int8=int8), num_threads)
        language_model = None if lm is None else load_lm(lm, model.files.token_table, num_threads,
                                                          non_word_penalty, known_words)
        rescorer = word_rescorer(lm, word_lm_weight, word_bonus, model.files.token_table)
        return cls(model, decoding, endpoint, rescore_weight, language_model, rescorer)

    @property
    def decoding(self) -> SearchOptions:
        return self._searcher.options

    @property
    def endpoint(self) -> EndpointConfig:
        return self._endpoint

    def create_stream(self, hotwords: HotwordList | ContextGraph = (), hotwords_score: float = DEFAULT_SCORE) -> Stream:
        """A new utterance (or live input) to feed with accept_waveform.

        hotwords: phrases to bias this stream towards (contextual biasing), each a
        string or a (phrase, per-token score) pair; `hotwords_score` is the score of
        plain strings; or a ContextGraph already built (asr.runtime.hotwords), which
        many streams can share. They need beam search (ConfigError otherwise); phrases
        the token table cannot spell raise HotwordError. An empty list changes nothing.
        """
        if isinstance(hotwords, ContextGraph):
            graph: ContextGraph | None = hotwords
        else:
            graph = build_context_graph(self.token_table, hotwords, hotwords_score)
        return Stream(self._stream_config, self._model.init_states(1), self._searcher.init_state(graph))

    def is_ready(self, stream: Stream) -> bool:
        """Whether `stream` has a full window buffered, so decode(stream) can run."""
        return stream.num_frames_ready >= self._stream_config.geometry.window_frames

    def decode(self, stream: Stream) -> None:
        """Decode one window of `stream`; AsrError if it is not ready (check is_ready first)."""
        self.decode_streams([stream])

    def decode_streams(self, streams: Sequence[Stream]) -> None:
        """Decode one window of each stream with one batched encoder call and one search pass.

        Every stream must be ready (is_ready) and belong to this recognizer. The
        result of each stream is what it would be if decoded alone.
        """
        if not streams:
            return
        self._check_decodable(streams)
        if len(streams) == 1:  # the common on-device case: no stacking copies
            window = streams[0].take_window()[None]  # (1, T, D)
            states = streams[0].encoder_state
        else:
            window = np.stack([s.take_window() for s in streams])  # (N, T, D)
            states = self._model.stack_states([s.encoder_state for s in streams])
        encoder_out, next_states = self._model.run_encoder(window, states)  # (N, n, J)
        per_stream = [next_states] if len(streams) == 1 else self._model.unstack_states(next_states, len(streams))
        for stream, state in zip(streams, per_stream):
            stream.encoder_state = state
        if self._rescorer is not None:
            for stream, frames in zip(streams, encoder_out):
                stream.keep_segment_frames(frames)
        self._searcher.advance(encoder_out, [s.search_state for s in streams])

    def _check_decodable(self, streams: Sequence[Stream]) -> None:
        if len({id(s) for s in streams}) != len(streams):
            raise AsrError("decode_streams got the same stream twice; pass each stream once per call")
        for stream in streams:
            if stream.config is not self._stream_config:
                raise AsrError(
                    "the stream was created by another Recognizer; decode it with the recognizer "
                    "whose create_stream() made it"
                )
            if not self.is_ready(stream):
                raise AsrError(
                    f"the stream is not ready: it holds {stream.num_frames_ready} of the "
                    f"{self.metadata.window_frames} feature frames a window needs; feed more audio "
                    "(or call input_finished) and check recognizer.is_ready(stream) before decoding"
                )

    def rescore(self, stream: Stream) -> None:
        """Re-rank the ending segment's hypotheses with the attention decoder (rescore_weight > 0) and the word
        trigram (a word rescorer); else nothing.

        Call it once the segment is over (at an endpoint, or after input_finished and
        the last decode), before reading its result: `stream.result`, `stream.nbest` and
        the next segment's start then follow the rescored ranking. Once per segment:
        a second call does nothing, and reset() starts the next segment.
        """
        if stream.rescored:
            return
        if self._rescorer is not None:
            rescore_state(stream.search_state, stream.segment_frames, self._rescorer, self._rescore_weight)
        if self._word_rescorer is not None:
            self._word_rescorer.rescore(stream.search_state)
        stream.rescored = True

    def is_endpoint(self, stream: Stream) -> bool:
        """Whether the stream's current segment has ended by the endpoint rules (then call stream.reset())."""
        search = stream.search_state
        return is_endpoint(
            self._endpoint, search.num_frames, search.trailing_blank_frames(), self._stream_config.frame_ms / 1000.0
        )


class Stream:
    """One utterance or live input: audio in, a growing result out. Create with Recognizer.create_stream().

    For callers: accept_waveform, input_finished, result, reset, num_frames_decoded,
    is_finished. For the recognizer that decodes it (and nobody else):
    num_frames_ready and take_window (the feature buffer), encoder_state (read
    before and replaced after each window), search_state (advanced in place by
    the search) and config (whose recognizer made it).
    """

    def __init__(self, config: StreamConfig, encoder_state: EncoderState, search_state: SearchState) -> None:
        """Prefer Recognizer.create_stream(), which passes its model's initial states (as sherpa-onnx does)."""
        self._config = config
        meta = config.metadata
        self._fbank = FbankStream(meta.features)
        self._model_rate = meta.features.sample_rate
        self._resampler: soxr.ResampleStream | None = None
        self._input_rate: int | None = None  # the caller's sample rate, fixed by the first chunk
        # Computed feature frames not yet past a window start: (k, D); _take_window advances it.
        # Frames still in _fbank (num_frames_ready) follow them.
        self._features = np.zeros((0, meta.features.num_mel_bins), dtype=np.float32)
        self._num_frames = 0  # real (not padding) feature frames computed so far
        self._finished = False
        self._encoder_state = encoder_state
        self._search = search_state
        self._segment = 0
        self._segment_start = 0  # encoder frames decoded before the current segment
        self._result = self._result_builder()
        self._segment_frames: list[np.ndarray] = []  # (n, J) encoder_out per window of this segment, for rescoring
        self.rescored = False  # whether Recognizer.rescore re-ranked this segment already

    @property
    def config(self) -> StreamConfig:
        """The model constants this stream was made with: identifies the recognizer that decodes it."""
        return self._config

    @property
    def encoder_state(self) -> EncoderState:
        """The encoder's state after the last decoded window (the initial state before the first)."""
        return self._encoder_state

    @encoder_state.setter
    def encoder_state(self, state: EncoderState) -> None:
        self._encoder_state = state

    @property
    def search_state(self) -> SearchState:
        """The current segment's search state; the recognizer's searcher advances it in place."""
        return self._search

    def keep_segment_frames(self, frames: np.ndarray) -> None:
        """Keep a window's encoder_out (n, J) for this segment's rescoring (the recognizer's call)."""
        if self._config.keeps_segment_frames:
            self._segment_frames.append(frames)

    @property
    def segment_frames(self) -> np.ndarray:
        """(T', J) the current segment's encoder frames (kept only when the recognizer rescores)."""
        if not self._segment_frames:
            return np.zeros((0, self._config.metadata.joiner_dim), dtype=np.float32)
        return np.concatenate(self._segment_frames)

    @property
    def num_frames_ready(self) -> int:
        """Feature frames buffered and not yet past a window start (as sherpa-onnx's NumFramesReady)."""
        return len(self._features) + self._fbank.num_frames_ready

    def take_window(self) -> np.ndarray:
        """The next window (T, D), advancing the buffer by decode_chunk_len frames (the pad frames stay).

        Only for the recognizer's decode, once num_frames_ready covers a window.
        """
        geometry = self._config.geometry
        missing = geometry.window_frames - len(self._features)
        if missing > 0:
            self._append_features(self._fbank.take(missing))
        window = self._features[: geometry.window_frames]
        self._features = self._features[geometry.shift_frames :]
        return window

    def _result_builder(self) -> ResultBuilder:
        config = self._config
        return ResultBuilder(config.token_table, config.frame_ms, self._segment, self._segment_start)

    @property
    def result(self) -> RecognitionResult:
        """The best hypothesis of the current segment so far (work per read: its new tokens only)."""
        return self._result.result(self._search.best_path(), self._search.num_frames)

    def nbest(self, n: int) -> tuple[Alternative, ...]:
        """The current segment's best `n` hypotheses (beam search keeps up to `beam`), best first."""
        table = self._config.token_table
        return tuple(Alternative(table.decode(ids), score, ids)
                     for ids, score in ((path.tokens(), score) for path, score in self._search.ranked()[:n]))

    @property
    def num_frames_decoded(self) -> int:
        """Encoder frames decoded since the stream started (each subsampling_factor feature frames)."""
        return self._segment_start + self._search.num_frames

    @property
    def is_finished(self) -> bool:
        """Whether input_finished() was called."""
        return self._finished

    def accept_waveform(self, sample_rate: int, samples: np.ndarray) -> None:
        """Append mono float samples in [-1, 1] (N,) at `sample_rate` Hz; resampled to the model's rate.

        Chunks may have any size (empty ones too); every chunk of a stream must
        have the same sample rate. AudioError for bad samples or after input_finished().
        """
        if self._finished:
            raise AudioError(
                "accept_waveform after input_finished(): the stream is closed; create a new stream "
                "with recognizer.create_stream()"
            )
        samples = np.asarray(samples)
        if samples.ndim == 1 and samples.size == 0:
            return
        if not _is_clean_chunk(samples):  # then validate_samples converts it or says what is wrong
            samples = validate_samples(samples, source="accept_waveform samples")
        self._fbank.feed(self._resample(sample_rate, samples))

    def input_finished(self) -> None:
        """Declare the end of input: the last frames and the tail padding become decodable.

        After it, decode while recognizer.is_ready(stream); then `result` holds
        everything, the last word included. Calling it again does nothing.
        """
        if self._finished:
            return
        self._finished = True
        if self._resampler is not None:  # the resampler holds back a few samples until told the input ended
            self._fbank.feed(self._resampler.resample_chunk(np.zeros(0, dtype=np.float32), last=True))
        self._append_features(self._fbank.input_finished())
        padding = self._config.geometry.tail_padding_frames(self._num_frames)
        self._features = np.concatenate([self._features, np.tile(self._config.silence, (padding, 1))])

    def reset(self) -> None:
        """Start a new segment (after an endpoint): the result empties, audio and encoder state go on.

        Timestamps stay counted from the stream's start; `segment` counts up when
        the finished segment had tokens (as in sherpa-onnx).
        """
        if self._search.best_path().length:
            self._segment += 1
        self._segment_start += self._search.num_frames
        self._search = _new_segment(self._search)
        self._result = self._result_builder()
        self._segment_frames = []
        self.rescored = False

    def _resample(self, sample_rate: int, samples: np.ndarray) -> np.ndarray:
        """`samples` at the model's rate; the first call fixes the stream's input rate."""
        if self._input_rate is None:
            self._input_rate = check_sample_rate(sample_rate, "accept_waveform")
            if self._input_rate != self._model_rate:
                self._resampler = soxr.ResampleStream(
                    self._input_rate, self._model_rate, num_channels=1, dtype="float32", quality="HQ"
                )
        elif sample_rate != self._input_rate:
            raise AudioError(
                f"this stream's audio is at {self._input_rate} Hz but a chunk came at {sample_rate} Hz; "
                "keep one sample rate per stream (create a new stream for the new source)"
            )
        if self._resampler is None:
            return samples
        return self._resampler.resample_chunk(samples)

    def _append_features(self, frames: np.ndarray) -> None:
        if len(frames):
            self._num_frames += len(frames)
            self._features = np.concatenate([self._features, frames]) if len(self._features) else frames
