"""The text source covers everyday English: function words, contractions, phrasal verbs, coverage bounds."""

from __future__ import annotations

import numpy as np
import pytest

from asr.synth.coverage import FUNCTION_WORDS, oov_rate, text_words, training_transcripts, vocabulary
from asr.synth.english import comparative, contract, ordinal_words
from asr.synth.everyday import EVERYDAY_DEV_PATH
from asr.synth.lexicon import load_lexicon
from asr.synth.sentences import MAX_WORDS, MIN_WORDS, SentenceGenerator

# Measured 1.6% with 10,000 sentences (seed 0) when the conversation family came in; was 26% before it.
DEV_OOV_BOUND = 0.025


@pytest.fixture(scope="module")
def words() -> set[str]:
    generator = SentenceGenerator()
    # 3,000 sentences: the rarest function words (BOTH, ITS, HERS) come about twice per thousand
    return vocabulary([generator.generate(np.random.default_rng([11, i])).transcript for i in range(3000)])


def test_function_words_occur(words: set[str]) -> None:
    # The descriptive grammar alone never said OF, IT, HAD, BY, OUT, DOWN, ABOUT, BACK, AGAIN, FIRST or OVER.
    assert [word for word in FUNCTION_WORDS if word not in words] == []


def test_everyday_dev_is_covered() -> None:
    known = vocabulary(training_transcripts())
    assert oov_rate(text_words(EVERYDAY_DEV_PATH), known) <= DEV_OOV_BOUND
    assert len(known) >= 6000


def test_conversation_sentences_fit_and_are_deterministic() -> None:
    generator = SentenceGenerator()
    first = [generator.generate(np.random.default_rng([21, i])) for i in range(3000)]
    again = [generator.generate(np.random.default_rng([21, i])).text for i in range(3000)]
    assert [s.text for s in first] == again
    for sentence in first:
        words = sentence.transcript.split()
        assert MIN_WORDS <= len(words) <= MAX_WORDS, sentence.text
        assert "  " not in sentence.text and " ," not in sentence.text and " '" not in sentence.text, sentence.text


def test_phrasal_verbs_inflect_their_head() -> None:
    give_up = next(v for v in load_lexicon().verbs["activity"] if v.base == "give up")
    assert (give_up.third, give_up.past, give_up.participle, give_up.ing) == (
        "gives up", "gave up", "given up", "giving up"
    )


def test_contractions_ordinals_comparatives() -> None:
    assert contract("I", "am going") == "I'm going"
    assert contract("they", "have finished") == "they've finished"
    assert contract("there", "is a cat") == "there's a cat"
    assert contract("the water", "is cold") == "the water's cold"
    assert contract("I", "can go") is None and contract("the buses", "are late") is None
    assert [ordinal_words(n) for n in (1, 2, 3, 12, 21, 30)] == [
        "first", "second", "third", "twelfth", "twenty first", "thirtieth"
    ]
    assert [comparative(a)[0] for a in ("big", "happy", "useful", "nice", "good")] == [
        "bigger", "happier", "more useful", "nicer", "better"
    ]
