"""Attention rescoring in the runtime: WER without and with it, and the latency it adds at each endpoint.

    python tests/benchmarks/attention_rescoring.py --model MODEL_DIR --data CORPUS_ROOT
        [--subsets synth-test,synth-test-noisy] [--max-utterances 200] [--beam 4]
        [--weights 0,0.1,0.3,0.5,1] [--int8] [--lm LM_DIR]

MODEL_DIR is an export of a model trained with `asr train --attention-decoder` (it
holds attention_decoder.onnx); CORPUS_ROOT holds LibriSpeech/<subset>/ (asr synth's
layout); nothing is written anywhere. Each utterance is one segment: its audio is
streamed through the torch-free runtime with modified beam search, then at its end
`Recognizer.rescore` runs (the call `asr transcribe` makes at every endpoint), with
weight 1 as the probe. The attention log-prob of each hypothesis is what that call
added to its score, so the same n-best is then re-ranked under every --weights value
exactly as a recognizer with that weight would rank it (0 is no rescoring). Also
printed: the n-best oracle WER (the best a re-ranking of these lists could do).

Latency: the wall time of the rescore call per endpoint (milliseconds, p50 / p99 /
max, one onnxruntime thread, after one warm-up utterance), with the n-best size and
segment length it had.

--lm fuses an LM (`asr train-lm`'s dir) in the beam search at its fusion.json settings, as the
shipped model decodes by default: rescoring is then measured on top of LM fusion.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time
from pathlib import Path

import numpy as np

from asr.audio import load
from asr.corpus.librispeech import load_subset
from asr.metrics import ErrorCounts, format_report, word_errors
from asr.runtime.lm import FusionSettings
from asr.runtime.recognizer import Recognizer

PROBE_WEIGHT = 1.0  # the weight the timed rescore call runs with; others are re-ranked from its scores


def read_subset(root: Path, subset: str, limit: int) -> list[tuple[Path, str]]:
    """(audio path, reference) of the first `limit` utterances of a subset, in id order."""
    return [(Path(u.audio_path), u.text) for u in load_subset(root, subset)[:limit]]


def nbest_with_scores(
    recognizer: Recognizer, audio: np.ndarray
) -> tuple[list[str], np.ndarray, np.ndarray, float, int]:
    """One segment: (n-best texts, transducer scores, attention log-probs, rescore ms, encoder frames)."""
    stream = recognizer.create_stream()
    stream.accept_waveform(16000, audio)
    stream.input_finished()
    while recognizer.is_ready(stream):
        recognizer.decode(stream)
    state = stream.search_state
    transducer = state.scores.copy()
    start = time.perf_counter()
    recognizer.rescore(stream)
    elapsed_ms = 1000 * (time.perf_counter() - start)
    attention = (state.scores - transducer) / PROBE_WEIGHT
    texts = [recognizer.token_table.decode(path.tokens()) for path in state.paths]
    return texts, transducer, attention, elapsed_ms, len(stream.segment_frames)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", type=Path, required=True)
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--subsets", default="synth-test")
    parser.add_argument("--max-utterances", type=int, default=200)
    parser.add_argument("--beam", type=int, default=4)
    parser.add_argument("--weights", default="0,0.1,0.3,0.5,1")
    parser.add_argument("--int8", action="store_true", help="the int8 transducer files (the head is fp32 either way)")
    parser.add_argument("--lm", type=Path, default=None, help="fuse this LM dir at its fusion.json settings")
    args = parser.parse_args()
    weights = [float(w) for w in args.weights.split(",")]
    tuned = FusionSettings() if args.lm is None else FusionSettings.from_dir(args.lm)
    fusion = dataclasses.replace(tuned, beam=args.beam)  # --beam decides: rescoring is measured at several
    recognizer = Recognizer.from_dir(args.model, num_threads=1, int8=args.int8, decoding=fusion.search_options(),
                                     rescore_weight=PROBE_WEIGHT, lm=args.lm)
    print(f"model {args.model} ({'int8' if args.int8 else 'fp32'} transducer), beam {args.beam}, "
          f"LM {args.lm or 'none'} ({fusion}), weights {weights}")
    print("| subset | utterances | " + " | ".join(f"WER w={w:g}" for w in weights) + " | n-best oracle |")
    print("|---|---|" + "---|" * (len(weights) + 1))
    latencies, hypotheses, frames = [], [], []
    first = read_subset(args.data, args.subsets.split(",")[0].strip(), 1)
    if first:  # onnxruntime's first run of a session allocates and plans (tens of ms): not an endpoint's cost
        nbest_with_scores(recognizer, load(first[0][0]))
    for subset in [s.strip() for s in args.subsets.split(",") if s.strip()]:
        items = read_subset(args.data, subset, args.max_utterances)
        counts = {w: ErrorCounts() for w in weights}
        oracle = ErrorCounts()
        for path, reference in items:
            texts, transducer, attention, ms, num_frames = nbest_with_scores(recognizer, load(path))
            latencies.append(ms)
            hypotheses.append(len(texts))
            frames.append(num_frames)
            for w in weights:
                best = int(np.argmax(transducer + w * attention)) if w else int(np.argmax(transducer))
                counts[w] += word_errors(reference, texts[best])
            oracle += min((word_errors(reference, text) for text in texts), key=lambda c: c.errors)
        row = " | ".join(f"{100 * counts[w].wer:.2f}%" for w in weights)
        print(f"| {subset} | {len(items)} | {row} | {100 * oracle.wer:.2f}% |", flush=True)
        for w in weights:
            print(f"    w={w:g}: {format_report(counts[w])}", file=sys.stderr)
    ms = np.array(latencies)
    print(f"rescoring at the endpoint, ms per endpoint over {len(ms)} endpoints "
          f"({np.mean(hypotheses):.1f} hypotheses, {np.mean(frames):.0f} encoder frames = "
          f"{np.mean(frames) * recognizer.metadata.geometry.encoder_frame_ms / 1000:.1f} s of audio on average): "
          f"p50 {np.percentile(ms, 50):.2f}, p99 {np.percentile(ms, 99):.2f}, max {ms.max():.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
