"""How much of everyday English the sentence grammar says: distinct words and out-of-vocabulary rates.

A recognizer cannot spell a word its training text never contains, so the
share of a text's word tokens that the grammar never produces (its OOV rate)
bounds what training on the synthetic corpus can reach on that text. Measured
on the sentences a corpus actually trains on: asr.synth.corpus draws utterance i
of synth-train from a Generator seeded with (seed, 0, i), keeping only
sentences of its text bucket, once each. Used by tests/benchmarks/text_coverage.py
and the tests.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from asr.synth.corpus import SUBSETS, text_subset
from asr.synth.sentences import default_generator
from asr.text import normalize_transcript

CORPUS_SENTENCES = 10_000  # about what a 10-hour corpus trains on
# Words everyday speech cannot do without; each must occur in a few thousand generated sentences.
FUNCTION_WORDS = tuple("""
A ABOUT ABOVE ACROSS AFTER AGAIN AGAINST AGO ALL ALMOST ALONG ALREADY ALSO ALTHOUGH ALWAYS AM AN AND ANOTHER ANY
ANYONE ANYTHING ARE AROUND AS AT AWAY BACK BE BECAUSE BEEN BEFORE BEHIND BEING BETWEEN BOTH BUT BY CAN CAN'T COULD
DID DIDN'T DO DOES DOESN'T DON'T DOWN DURING EACH EITHER ELSE ENOUGH EVEN EVER EVERY EVERYONE EVERYTHING FEW FIRST
FOR FROM HAD HAS HAVE HAVEN'T HE HE'S HER HERE HERS HIM HIS HOW I I'D I'LL I'M I'VE IF IN INTO IS ISN'T IT IT'S ITS
JUST LAST LESS LET'S LIKE MANY ME MIGHT MORE MOST MUCH MUST MY NEAR NEVER NEXT NO NOBODY NOT NOTHING NOW OF OFF
OFTEN ON ONCE ONE ONLY OR OTHER OUR OUT OVER OWN PLEASE QUITE RATHER SAME SHE SHE'S SHOULD SINCE SO SOME SOMEONE
SOMETHING SOMETIMES STILL SUCH THAN THAT THAT'S THE THEIR THEM THEN THERE THERE'S THESE THEY THEY'RE THIS THOSE
THROUGH TO TOO UNDER UNLESS UNTIL UP US USED VERY WAS WASN'T WE WE'RE WE'VE WERE WHAT WHAT'S WHEN WHERE WHETHER
WHICH WHILE WHO WHOSE WHY WILL WITH WITHOUT WON'T WOULD YET YOU YOU'RE YOUR
""".split())


def training_transcripts(count: int = CORPUS_SENTENCES, seed: int = 0) -> list[str]:
    """The first `count` synth-train transcripts of a corpus made with `seed`, as asr.synth.corpus draws them."""
    generator = default_generator()
    used: set[str] = set()
    transcripts = []
    for index in range(count):
        rng = np.random.default_rng([seed, SUBSETS.index("synth-train"), index])
        transcript = generator.generate(rng).transcript
        while transcript in used or text_subset(transcript) != "synth-train":
            transcript = generator.generate(rng).transcript
        used.add(transcript)
        transcripts.append(transcript)
    return transcripts


def vocabulary(transcripts: list[str]) -> set[str]:
    return {word for transcript in transcripts for word in transcript.split()}


def text_words(path: Path) -> list[str]:
    """The word tokens of a text file, one sentence a line, normalised as transcripts are."""
    lines = path.read_text(encoding="utf-8").splitlines()
    return [word for line in lines for word in normalize_transcript(line).split()]


def oov_rate(words: list[str], known: set[str]) -> float:
    """Share of the tokens `words` that are not in `known`."""
    return sum(word not in known for word in words) / max(len(words), 1)
