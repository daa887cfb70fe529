"""`asr eval`: decode subsets with a trained checkpoint, print WER per subset, write per-utterance reports.

    asr eval --exp-dir EXP --data DIR --subsets a,b [--decoding greedy|beam|ctc] [--streaming] ...

The checkpoint is chosen by asr.training.checkpoints and decoded and scored by
asr.training.decoding, the code that measures dev WER during training. `asr eval`
writes one file per subset and decoding method with every reference, hypothesis
and their word alignment.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import sys
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import torch

from asr.atomic_write import write_text_atomically
from asr.audio import load
from asr.corpus.librispeech import load_subsets, subset_dir
from asr.corpus.manifest import Utterance
from asr.corpus.bad_audio import BadAudio
from asr.errors import AsrError, AudioError, ConfigError, DataError
from asr.features import FbankConfig, fbank
from asr.metrics import alignment, format_report
from asr.runtime.hotwords import file_context_graph, read_hotwords
from asr.runtime.lexicon import lexicon_lm
from asr.runtime.search_flags import resolve_fusion, resolve_search
from asr.runtime.word_rescore import word_rescorer
from asr.training.checkpoints import LoadedModel, load_for_inference
from asr.training.decoding import EvalOptions, EvalResult, evaluate
from asr.training.lm_train import TorchLm

EVAL_DIR = "eval"  # per-utterance result files, inside the experiment dir


def features_of(config: FbankConfig) -> Callable[[Utterance], np.ndarray]:
    """Utterance -> fbank of its audio file, (T, F) float32, with the features a model was trained on."""

    def audio_features(utterance: Utterance) -> np.ndarray:
        return fbank(load(utterance.audio_path), config=config)

    return audio_features


def skipping_bad_audio(
    audio_features: Callable[[Utterance], np.ndarray], bad: BadAudio
) -> Callable[[Utterance], np.ndarray | None]:
    """`audio_features` that records an unreadable file in `bad` (DataError past its limit) and gives None."""
    def features(utterance: Utterance) -> np.ndarray | None:
        try:
            return audio_features(utterance)
        except AudioError as error:
            bad.add(utterance.audio_path, str(error))
            return None

    return features


# --- the per-utterance file ---


def marked_alignment(reference: str, hypothesis: str) -> str:
    """The word alignment with errors marked: (REF->HYP) substitution, (REF->*) deletion, (*->HYP) insertion."""
    words = []
    for ref, hyp in alignment(reference, hypothesis):
        words.append(ref if ref == hyp else f"({ref or '*'}->{hyp or '*'})")
    return " ".join(words)


def write_details(path: Path, result: EvalResult, header: Sequence[str]) -> Path:
    """Write every utterance's reference, hypothesis and marked alignment, by id, under `header` lines."""
    lines = [f"# {line}" for line in header]
    lines.append(f"# {format_report(result.counts)}")
    lines.append("# alignment marks: (REF->HYP) substitution, (REF->*) deletion, (*->HYP) insertion")
    for r in sorted(result.utterances, key=lambda r: r.id):
        lines += ["", f"{r.id}: {format_report(r.counts)}", f"ref: {r.reference}", f"hyp: {r.hypothesis}",
                  f"ali: {marked_alignment(r.reference, r.hypothesis)}"]
    path.parent.mkdir(parents=True, exist_ok=True)
    write_text_atomically(path, "\n".join(lines) + "\n")  # a symlink there is replaced, never followed
    return path


def resolve_device(name: str) -> str:
    """'auto' -> 'cuda' when available, else 'cpu'; AsrError for cuda without a GPU."""
    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cuda" and not torch.cuda.is_available():
        raise AsrError("--device cuda: no CUDA GPU is available to torch; use --device cpu")
    if name not in ("cpu", "cuda"):
        raise ConfigError(f"unknown device {name!r}; use auto, cpu or cuda")
    return name


# --- `asr eval` ---


def run_eval_command(args: argparse.Namespace) -> int:
    """`asr eval`: decode each subset, print WER per subset, write EXP/eval/<subset>-<tag>.txt."""
    subsets = [s.strip() for s in args.subsets.split(",") if s.strip()]
    if not subsets:
        raise DataError("--subsets is empty; name at least one, e.g. --subsets synth-test")
    for subset in subsets:  # fail before loading the model or decoding anything
        subset_dir(args.data, subset)
    if args.decoding == "ctc" and (args.hotwords is not None or args.blank_penalty or args.rescore_weight
                                   or args.lm is not None):
        raise ConfigError("--hotwords, --blank-penalty, --rescore-weight and --lm apply to the transducer search; "
                          "use --decoding greedy or beam")
    decoding = args.decoding if args.decoding == "ctc" else resolve_search(args, sys.stderr, "eval")
    fusion = resolve_fusion(args, args.lm)
    options = EvalOptions(decoding=decoding, beam=fusion.beam, streaming=args.streaming,
                          chunk_frames=args.chunk_frames, blank_penalty=fusion.blank_penalty,
                          rescore_weight=args.rescore_weight, lm_scale=fusion.lm_scale)
    hotwords = None if args.hotwords is None else read_hotwords(args.hotwords, args.hotwords_score)
    loaded = load_for_inference(args.exp_dir, args.checkpoint, resolve_device(args.device))
    table = loaded.tokenizer.token_table
    if args.lm is not None:  # the torch twin of the runtime's lm.onnx, checked against the model's tokens
        known_words = [phrase for phrase, _, _ in hotwords or ()]  # a non-word penalty must not work against them
        lm = lexicon_lm(TorchLm.from_dir(args.lm, table), args.lm, table, fusion.non_word_penalty, known_words)
        options = dataclasses.replace(options, lm=lm, word_rescorer=word_rescorer(args.lm, fusion.word_lm_weight,
                                                                                  fusion.word_bonus, table))
    if hotwords is not None:
        options = dataclasses.replace(options, hotwords=file_context_graph(table, hotwords))
    described = f"checkpoint {loaded.path} ({loaded.weights} weights, step {loaded.step})"
    bad = BadAudio(args.max_bad_files)  # over all subsets: a broken disk stops the run once
    reports = []
    for subset in subsets:
        utterances = load_subsets(args.data, [subset], max_utterances=args.max_utterances)
        if not utterances:
            raise DataError(f"subset {subset} has no utterances; check {subset_dir(args.data, subset)}")
        result = evaluate(loaded.model, loaded.tokenizer, utterances,
                          skipping_bad_audio(features_of(loaded.features), bad), options,
                          progress=sys.stderr.isatty())
        skipped = len(utterances) - len(result.utterances)
        header = [f"asr eval: {subset}, {options.tag}", described]
        if skipped:
            header.append(f"{skipped} utterances left out: their audio cannot be read")
        # Named by checkpoint too: evaluating best.pt and then averaged.pt must not overwrite one with the other.
        details = write_details(Path(args.exp_dir) / EVAL_DIR / f"{subset}-{options.tag}-{loaded.path.stem}.txt",
                                result, header)
        reports.append((subset, result, details, skipped))
    if args.format == "json":
        print(json.dumps(_json_report(loaded, options, reports), indent=1))
    else:
        print(described)
        for subset, result, details, skipped in reports:
            left_out = f" ({skipped} unreadable, left out)" if skipped else ""
            print(f"{subset} {options.tag}: {format_report(result.counts)}  {len(result.utterances)} utterances"
                  f"{left_out}, RTF {result.real_time_factor:.3f}, details in {details}")
    if bad.summary("eval"):
        print(bad.summary("eval"), file=sys.stderr)
    return 0


def _json_report(
    loaded: LoadedModel, options: EvalOptions, reports: list[tuple[str, EvalResult, Path, int]]
) -> dict:
    def number(value: float) -> float | None:
        return value if math.isfinite(value) else None  # JSON has no infinity (WER on empty references)

    return {
        "checkpoint": str(loaded.path),
        "weights": loaded.weights,
        "step": loaded.step,
        # Hotword graphs and LMs are objects, not settings: named by their type.
        "options": {k: v if isinstance(v, (int, float, str, bool, type(None))) else type(v).__name__
                    for k, v in vars(options).items()},
        "subsets": {
            subset: {
                "wer": number(result.wer_percent),
                **dataclasses.asdict(result.counts),
                "utterances": len(result.utterances),
                "unreadable": skipped,
                "audio_seconds": result.audio_seconds,
                "decode_seconds": result.decode_seconds,
                "real_time_factor": result.real_time_factor,
                "details": str(details),
            }
            for subset, result, details, skipped in reports
        },
    }
