"""Decode utterances with a torch Transducer and score them: dev WER during training, and `asr eval`.

    evaluate(model, tokenizer, utterances, features_fn, options) -> EvalResult
    make_dev_wer_fn(tokenizer, utterances, features_fn) -> (model -> WER %)   for the training loop

Decoding goes through `asr.runtime.search` (the runtime's search code) over
`asr.training.torch_backend`; utterances are encoded in duration-sorted batches,
whole (fast: what training optimises) or window by window with the encoder's
`stream` (what a device runs). It is part of training because the training loop
measures dev WER with it; asr.evaluation builds `asr eval` on it.

Shapes: N utterances, T feature frames, F fbank bins, T' encoder frames, V vocab.
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass
from typing import Callable, Iterable, Sequence

import numpy as np
from tqdm import tqdm

from asr.corpus.manifest import Utterance
from asr.errors import ConfigError, ModelFilesError
from asr.metrics import ErrorCounts, word_errors
from asr.runtime.context_graph import ContextGraph
from asr.runtime.rescore import check_weight, rescore_state
from asr.runtime.ctc import ctc_greedy
from asr.runtime.lexicon import LexiconLm
from asr.runtime.search import DEFAULT_LM_SCALE, LanguageModel, SearchOptions, create_searcher
from asr.runtime.word_rescore import WordRescorer
from asr.training.tokenizers import Tokenizer
from asr.training.torch_backend import TorchAttentionScorer, TorchBackend, encode_batch, eval_mode, stream_batch
from models.transducer import Transducer

DECODINGS = ("greedy", "beam", "ctc")

# utterance -> (T, F) float32 fbank, or None when its audio cannot be read (the utterance is left out)
FeaturesFn = Callable[[Utterance], "np.ndarray | None"]


@dataclass(frozen=True)
class EvalOptions:
    """How to decode for evaluation."""

    decoding: str = "greedy"  # "greedy" or "beam" (modified beam) transducer search, or "ctc" greedy on the CTC head
    beam: int = 4  # beam search: hypotheses kept per utterance
    streaming: bool = False  # encode window by window with model.stream (a device's view) instead of whole utterances
    chunk_frames: int | None = None  # streaming: encoder frames per window; None: the model's chunk_frames
    max_batch_seconds: float = 200.0  # padded audio per encoder batch: bounds memory, not results
    blank_penalty: float = 0.0  # subtracted from the blank logit before the transducer search
    hotwords: ContextGraph | None = None  # beam search: bias every utterance towards these phrases
    rescore_weight: float = 0.0  # beam search: re-rank each utterance's n-best by + weight x attention log-prob
    lm: LanguageModel | None = None  # beam search: fuse this token LM (shallow fusion)...
    lm_scale: float = DEFAULT_LM_SCALE  # ...with this weight
    word_rescorer: WordRescorer | None = None  # beam search: re-rank each utterance's n-best by a word trigram

    def __post_init__(self) -> None:
        if self.decoding not in DECODINGS:
            raise ConfigError(f"unknown decoding {self.decoding!r}; use one of {', '.join(DECODINGS)}")
        if self.beam < 1:
            raise ConfigError(f"beam size {self.beam} is not positive; use 1 or more (4 is usual)")
        if self.chunk_frames is not None and self.chunk_frames < 1:
            raise ConfigError(f"chunk_frames must be >= 1, got {self.chunk_frames}; leave it out for the model's own")
        check_weight(self.rescore_weight)
        if (self.rescore_weight or self.word_rescorer is not None) and self.decoding != "beam":
            raise ConfigError(f"rescoring re-ranks beam search's n-best; {self.decoding} decoding has none, use beam")
        if not self.max_batch_seconds > 0:
            raise ConfigError(f"max_batch_seconds must be positive, got {self.max_batch_seconds}")

    @property
    def tag(self) -> str:
        """Short name for file names, e.g. 'greedy', 'beam4', 'ctc-streaming-chunk8'."""
        name = f"beam{self.beam}" if self.decoding == "beam" else self.decoding
        if self.rescore_weight:
            name += f"-rescore{self.rescore_weight:g}"
        if self.lm is not None:
            name += f"-lm{self.lm_scale:g}"
            if isinstance(self.lm, LexiconLm):
                name += f"-nw{self.lm.penalty:g}"
        if self.word_rescorer is not None:
            name += f"-word{self.word_rescorer.weight:g}+{self.word_rescorer.bonus:g}"
        if self.streaming:
            name += "-streaming" + (f"-chunk{self.chunk_frames}" if self.chunk_frames else "")
        return name

    def search_options(self) -> SearchOptions:
        """The transducer search these options ask for (not used for CTC)."""
        return SearchOptions(method="beam" if self.decoding == "beam" else "greedy", beam=self.beam,
                             blank_penalty=self.blank_penalty, lm_scale=self.lm_scale)


@dataclass(frozen=True)
class UtteranceResult:
    """One decoded utterance."""

    id: str  # utterance id
    reference: str  # transcript (normalised)
    hypothesis: str  # decoded text
    counts: ErrorCounts  # word errors of hypothesis against reference


@dataclass(frozen=True)
class EvalResult:
    """Scores of one decoded set."""

    options: EvalOptions  # how it was decoded
    utterances: tuple[UtteranceResult, ...]  # in the order they were given
    counts: ErrorCounts  # summed over utterances
    audio_seconds: float  # audio decoded, from the utterances' durations
    decode_seconds: float  # wall time of encoding and search (feature computation excluded)

    @property
    def wer_percent(self) -> float:
        return 100.0 * self.counts.wer

    @property
    def real_time_factor(self) -> float:
        """decode_seconds per second of audio: < 1 is faster than real time."""
        return self.decode_seconds / self.audio_seconds if self.audio_seconds > 0 else 0.0


def decode_features(model: Transducer, features: Sequence[np.ndarray], options: EvalOptions) -> list[tuple[int, ...]]:
    """Token ids of N utterances' features (T_i, F), decoded as `options` say; model in eval mode."""
    head = "ctc" if options.decoding == "ctc" else "joiner"
    if options.streaming:
        chunks = list(stream_batch(model, features, options.chunk_frames, head))  # per window (N, n, K), (N,)
    else:
        chunks = [encode_batch(model, features, head)]  # one (N, T', K), (N,)
    if not chunks:  # every utterance is shorter than one encoder frame
        return [() for _ in features]
    if options.decoding == "ctc":
        # A stream's valid frames lead each window and stop at its end, so concatenating keeps them contiguous.
        log_probs = np.concatenate([out for out, _ in chunks], axis=1)  # (N, T', V)
        lengths = np.sum([valid for _, valid in chunks], axis=0)
        return [h.tokens for h in ctc_greedy(log_probs, lengths, model.config.blank_id)]
    searcher = create_searcher(TorchBackend(model), options.search_options(), options.lm)
    states = [searcher.init_state(options.hotwords) for _ in features]
    for out, valid in chunks:
        searcher.advance(out, states, valid)
    if options.rescore_weight:  # each utterance is one segment: rescored once, at its end
        scorer = TorchAttentionScorer(model)
        for n, state in enumerate(states):
            frames = np.concatenate([out[n, : valid[n]] for out, valid in chunks])  # (T', J)
            rescore_state(state, frames, scorer, options.rescore_weight)
    if options.word_rescorer is not None:
        for state in states:
            options.word_rescorer.rescore(state)
    return [state.best().tokens for state in states]


def duration_batches(durations: Sequence[float], max_batch_seconds: float) -> list[list[int]]:
    """Indices grouped longest first so each batch's padded audio stays within max_batch_seconds (>= 1 each)."""
    order = sorted(range(len(durations)), key=lambda i: -durations[i])
    batches: list[list[int]] = []
    for index in order:
        # Sorted longest first, so the batch's first item sets its padded length.
        if batches and (len(batches[-1]) + 1) * durations[batches[-1][0]] <= max_batch_seconds:
            batches[-1].append(index)
        else:
            batches.append([index])
    return batches


def evaluate(
    model: Transducer,
    tokenizer: Tokenizer,
    utterances: Sequence[Utterance],
    features_fn: FeaturesFn,
    options: EvalOptions = EvalOptions(),
    progress: bool = False,
) -> EvalResult:
    """Decode `utterances` and score them against their transcripts.

    The model runs in eval mode (its train/eval mode is restored afterwards) on
    its own device; `features_fn` gives each utterance's (T, F) fbank, or None for
    one whose audio cannot be read: it is left out of the results and the counts.
    """
    check_compatible(model, tokenizer, options)
    hypotheses: dict[int, str] = {}
    decode_seconds = 0.0
    batches = duration_batches([u.duration for u in utterances], options.max_batch_seconds)
    with eval_mode(model):
        for batch in tqdm(batches, desc="decoding", unit="batch", disable=not progress, file=sys.stderr):
            loaded = [(i, features_fn(utterances[i])) for i in batch]
            readable = [(i, f) for i, f in loaded if f is not None]
            if not readable:
                continue
            start = time.perf_counter()
            token_ids = decode_features(model, [f for _, f in readable], options)
            decode_seconds += time.perf_counter() - start
            hypotheses.update((i, tokenizer.decode(ids)) for (i, _), ids in zip(readable, token_ids))
    results = tuple(
        UtteranceResult(u.id, u.text, hypotheses[i], word_errors(u.text, hypotheses[i]))
        for i, u in enumerate(utterances) if i in hypotheses
    )
    return EvalResult(
        options=options,
        utterances=results,
        counts=sum((r.counts for r in results), ErrorCounts()),
        audio_seconds=float(sum(u.duration for i, u in enumerate(utterances) if i in hypotheses)),
        decode_seconds=decode_seconds,
    )


def check_compatible(model: Transducer, tokenizer: Tokenizer, options: EvalOptions) -> None:
    """Raise before decoding anything when the model, tokenizer and options cannot work together."""
    if tokenizer.vocab_size != model.config.vocab_size:
        raise ModelFilesError(
            f"the tokenizer has {tokenizer.vocab_size} tokens but the model outputs {model.config.vocab_size}; "
            "use the tokenizer saved in the model's checkpoint"
        )
    if options.rescore_weight and model.attention_decoder is None:
        raise ConfigError(f"--rescore-weight {options.rescore_weight:g} needs an attention decoder and this model has "
                          "none; train one with `asr train --attention-decoder`, or leave --rescore-weight out")
    if options.decoding == "ctc" and model.config.ctc_weight == 0:
        raise ConfigError("this model was trained without the CTC loss (ctc_weight 0), so its CTC head is untrained; "
                       "use --decoding greedy or beam")


def make_dev_wer_fn(
    tokenizer: Tokenizer,
    utterances: Iterable[Utterance],
    features_fn: FeaturesFn,
    options: EvalOptions = EvalOptions(),
) -> Callable[[Transducer], float]:
    """For the training loop: a function model -> WER in percent on `utterances`.

    Pass it the bare Transducer (not a DDP wrapper), e.g. the EMA weights; its
    train/eval mode is restored after each call.
    """
    fixed = tuple(utterances)

    def dev_wer(model: Transducer) -> float:
        return evaluate(model, tokenizer, fixed, features_fn, options).wer_percent

    return dev_wer
