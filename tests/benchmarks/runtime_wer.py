"""WER of an exported model dir through the torch-free streaming runtime, per corpus subset.

    python tests/benchmarks/runtime_wer.py --data DATA --subsets synth-test,synth-test-natural [--model DIR] [--int8]
        [--decoding greedy|beam] [--max-utterances N]

Each file is decoded as `asr transcribe` decodes it (100 ms pieces through
Recognizer / Stream), so the figures are what a user of the exported files gets;
`asr eval` measures the torch checkpoint instead. Without --model: the shipped
default model (int8). Prints one line per subset and a markdown row of WERs.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from asr.corpus.librispeech import load_subsets
from asr.metrics import ErrorCounts, format_report, word_errors
from asr.runtime import Recognizer
from asr.runtime.default_model import resolve_model_dir
from asr.runtime.search import SearchOptions
from asr.runtime.transcribe import transcribe_file


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, required=True, help="corpus root holding LibriSpeech/")
    parser.add_argument("--subsets", required=True, help="comma-separated subsets")
    parser.add_argument("--model", type=Path, default=None, help="model dir (default: the shipped model)")
    parser.add_argument("--int8", action="store_true", help="the *.int8.onnx files")
    parser.add_argument("--decoding", choices=("greedy", "beam"), default="greedy")
    parser.add_argument("--max-utterances", type=int, default=None,
                        help="at most N utterances per subset, the ones `asr eval --max-utterances` takes")
    args = parser.parse_args(argv)
    model_dir, int8 = resolve_model_dir(args.model, args.int8)
    recognizer = Recognizer.from_dir(model_dir, int8=int8, decoding=SearchOptions(method=args.decoding))
    wers = []
    for subset in args.subsets.split(","):
        utterances = load_subsets(args.data, [subset], max_utterances=args.max_utterances)
        counts = ErrorCounts()
        for utterance in utterances:
            counts += word_errors(utterance.text, transcribe_file(recognizer, Path(utterance.audio_path)).text)
        wers.append(100 * counts.wer)
        print(f"{subset} ({len(utterances)} utterances): {format_report(counts)}", flush=True)
    print("| " + " | ".join(f"{w:.1f}" for w in wers) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
