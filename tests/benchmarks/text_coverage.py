"""Benchmark: how much everyday English the synthetic corpus's text says.

Run: .venv/bin/python tests/benchmarks/text_coverage.py [--sentences 10000] [--seed 0] [--test]

Draws the synth-train sentences of a corpus (as asr.synth.corpus does, see
asr.synth.coverage) and prints: sentences per second, distinct words, the
out-of-vocabulary rate (share of word tokens never generated) of the
hand-written everyday dev sentences, the function words of
asr.synth.coverage.FUNCTION_WORDS that never occur, and, where the dev-time
`wordfreq` package is installed, how many of the 5,000 most frequent English
words occur. --test also prints the rate on everyday_test.txt: that file is
held out, so read it to report, never to tune the grammar.
"""

from __future__ import annotations

import argparse
import time
from collections import Counter

from asr.synth.coverage import FUNCTION_WORDS, oov_rate, text_words, training_transcripts, vocabulary
from asr.synth.everyday import EVERYDAY_DEV_PATH, EVERYDAY_TEST_PATH



def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sentences", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--test", action="store_true", help="also the held-out everyday_test.txt (report only)")
    args = parser.parse_args()

    start = time.perf_counter()
    transcripts = training_transcripts(args.sentences, args.seed)
    seconds = time.perf_counter() - start
    known = vocabulary(transcripts)
    print(f"{len(transcripts)} synth-train sentences (seed {args.seed}) in {seconds:.2f} s: "
          f"{len(transcripts) / seconds:.0f} sentences/s, {len(known)} distinct words")
    dev = text_words(EVERYDAY_DEV_PATH)
    print(f"everyday_dev.txt: {len(dev)} tokens, OOV {oov_rate(dev, known):.1%}")
    missing = Counter(word for word in dev if word not in known)
    print("  never generated:", " ".join(f"{word}({n})" if n > 1 else word for word, n in missing.most_common()))
    if args.test:
        test = text_words(EVERYDAY_TEST_PATH)
        print(f"everyday_test.txt: {len(test)} tokens, OOV {oov_rate(test, known):.1%}")
    absent = [word for word in FUNCTION_WORDS if word not in known]
    print(f"function words missing: {len(absent)} of {len(FUNCTION_WORDS)}", " ".join(absent))
    try:
        import wordfreq  # dev-time only: pip install wordfreq
    except ImportError:
        print("top-5000 English words: pip install wordfreq to measure")
        return
    top = [word.upper() for word in wordfreq.top_n_list("en", 5000) if word.isalpha()]
    print(f"top-5000 English words (alphabetic: {len(top)}): {sum(w in known for w in top) / len(top):.1%} generated")


if __name__ == "__main__":
    main()
