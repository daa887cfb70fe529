"""Contextual biasing on the shipped default model: rare-word recall, WER and RTF cost of hotword lists.

    python tests/benchmarks/hotwords.py --data CORPUS_ROOT [--subsets synth-test-everyday,synth-test-natural]
        [--max-utterances 100] [--beam 4] [--score 1.5] [--rtf-utterances 40]

CORPUS_ROOT holds LibriSpeech/<subset>/ (asr synth's layout); nothing is written there.
1. Decode each subset with modified beam search, no hotwords.
2. Hotwords: the rare reference words (at most --max-count occurrences over the
   subsets, at least --min-length letters) that step 1 got wrong somewhere.
3. Decode again with that list: their recall (occurrences recognised / spoken) and
   the WER of the whole subset, without and with it.
4. RTF (decode seconds / audio seconds, one thread) of the first --rtf-utterances
   utterances with no list and with lists of 10, 100 and 1,000 phrases drawn from the
   synth lexicon's words (one and two words per phrase), plus the rare-word list.
"""

from __future__ import annotations

import argparse
import collections
import json
import random
import re
import sys
import time
from pathlib import Path

import numpy as np

from asr.audio import load
from asr.corpus.librispeech import load_subset
from asr.metrics import ErrorCounts, word_errors
from asr.runtime.context_graph import ContextGraph
from asr.runtime.default_model import DEFAULT_MODEL_DIR
from asr.runtime.hotwords import build_context_graph
from asr.runtime.recognizer import Recognizer
from asr.runtime.search import SearchOptions

LEXICON = Path(__file__).resolve().parents[2] / "asr" / "resources" / "lexicon.txt"


def read_subset(root: Path, subset: str, limit: int) -> list[tuple[Path, str]]:
    """(audio path, reference) of the first `limit` utterances of a subset, in id order."""
    return [(Path(u.audio_path), u.text) for u in load_subset(root, subset)[:limit]]


def decode(recognizer: Recognizer, audio: np.ndarray, graph: ContextGraph | None) -> str:
    stream = recognizer.create_stream(graph if graph is not None else ())
    stream.accept_waveform(16000, audio)
    stream.input_finished()
    while recognizer.is_ready(stream):
        recognizer.decode(stream)
    return stream.result.text


def lexicon_words() -> list[str]:
    words = set()
    for line in LEXICON.read_text(encoding="utf-8").splitlines():
        line = line.split("#", 1)[0].strip()
        if not line or line.startswith("["):
            continue
        for entry in line.split():
            for form in entry.split("/"):
                form = form.replace("_", " ").strip("-").upper()
                if form and re.fullmatch(r"[A-Z' ]+", form):
                    words.add(form)
    return sorted(words)


def recall(pairs: list[tuple[str, str]], hotwords: set[str]) -> tuple[int, int]:
    """(recognised, spoken) occurrences of `hotwords` over (reference, hypothesis) pairs."""
    hit = total = 0
    for ref, hyp in pairs:
        spoken, said = collections.Counter(ref.split()), collections.Counter(hyp.split())
        for word in hotwords:
            total += spoken[word]
            hit += min(spoken[word], said[word])
    return hit, total


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, required=True, help="corpus root holding LibriSpeech/<subset>/")
    parser.add_argument("--subsets", default="synth-test-everyday,synth-test-natural")
    parser.add_argument("--max-utterances", type=int, default=100, help="per subset")
    parser.add_argument("--beam", type=int, default=4)
    parser.add_argument("--score", type=float, default=1.5, help="per-token hotword bonus")
    parser.add_argument("--max-count", type=int, default=2, help="a rare word occurs at most this often")
    parser.add_argument("--min-length", type=int, default=5, help="a rare word has at least this many letters")
    parser.add_argument("--rtf-utterances", type=int, default=40)
    args = parser.parse_args()

    recognizer = Recognizer.from_dir(DEFAULT_MODEL_DIR, int8=True, decoding=SearchOptions(method="beam", beam=args.beam))
    subsets = {s: [(load(p, 16000), ref) for p, ref in read_subset(args.data, s, args.max_utterances)]
               for s in args.subsets.split(",")}
    plain = {s: [decode(recognizer, a, None) for a, _ in items] for s, items in subsets.items()}
    counts = collections.Counter(w for items in subsets.values() for _, ref in items for w in ref.split())
    missed = set()
    for s, items in subsets.items():
        for (_, ref), hyp in zip(items, plain[s]):
            said = set(hyp.split())
            missed |= {w for w in ref.split()
                       if counts[w] <= args.max_count and len(w) >= args.min_length and w not in said}
    hotwords = sorted(missed)
    graph = build_context_graph(recognizer.token_table, hotwords, args.score)
    rows = []
    for s, items in subsets.items():
        biased = [decode(recognizer, a, graph) for a, _ in items]
        refs = [ref for _, ref in items]
        wer = [sum((word_errors(r, h) for r, h in zip(refs, hyps)), ErrorCounts()).wer for hyps in (plain[s], biased)]
        rec = [recall(list(zip(refs, hyps)), set(hotwords)) for hyps in (plain[s], biased)]
        rows.append({"subset": s, "utterances": len(items), "wer_without": wer[0], "wer_with": wer[1],
                     "recall_without": rec[0], "recall_with": rec[1]})

    rng = random.Random(0)
    words = lexicon_words()
    lists: dict[str, ContextGraph | None] = {"none": None, "rare words": graph}
    for n in (10, 100, 1000):
        phrases = [" ".join(rng.sample(words, rng.choice((1, 2)))) for _ in range(n)]
        lists[f"{n} lexicon phrases"] = build_context_graph(recognizer.token_table, phrases, args.score)
    sample = [a for items in subsets.values() for a, _ in items][: args.rtf_utterances]
    seconds = sum(len(a) for a in sample) / 16000
    rtf = {}
    for name, g in lists.items():
        started = time.process_time()  # CPU time of this process: less sensitive to other jobs than the wall clock
        for a in sample:
            decode(recognizer, a, g)
        rtf[name] = (time.process_time() - started) / seconds
    print(json.dumps({"hotwords": hotwords, "subsets": rows, "rtf": rtf, "rtf_audio_seconds": seconds,
                      "nodes": {k: (len(g) if g is not None else 0) for k, g in lists.items()}}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
