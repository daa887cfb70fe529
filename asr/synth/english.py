"""English morphosyntax shared by the sentence templates: agreement, tenses, numbers, contractions.

Pure functions of their arguments (random choices take the numpy Generator
passed in), used by both template families of asr.synth.sentences: the
descriptive grammar and the everyday conversation of asr.synth.conversation.
Person codes: "1sg", "2", "3sg", "1pl", "3pl".
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence, TypeVar

import numpy as np

from asr.synth.lexicon import Verb, make_verb

TENSES = (
    "present", "past", "future", "present_progressive", "past_progressive", "present_perfect", "past_perfect",
    "modal",
)
TIME_OF_TENSE = {  # which time adverbials and subordinate tenses fit a tense
    "present": "present", "present_progressive": "present", "present_perfect": "present",
    "modal": "present", "past": "past", "past_progressive": "past", "past_perfect": "past", "future": "future",
}
MODALS = ("can", "could", "should", "might", "must", "would")
QUESTION_MODALS = ("can", "could", "should", "would")  # "Might you ...?" sounds archaic

SUBJECT_PRONOUNS = {"I": "1sg", "you": "2", "he": "3sg", "she": "3sg", "we": "1pl", "they": "3pl"}
OBJECT_PRONOUNS = {"me": "1sg", "you": "2", "him": "3sg", "her": "3sg", "us": "1pl", "them": "3pl"}
ADJECTIVE_CLASS = {"person": "person", "animal": "person", "object": "thing", "food": "food",
                   "place": "place", "abstract": "abstract"}
INTENSIFIERS = ("very", "quite", "rather", "really", "extremely", "too", "so", "a little")
PREPOSITIONS = ("in", "at", "near", "behind", "outside", "inside", "next to", "opposite", "beside", "across from")
SEASONS = ("spring", "summer", "autumn", "winter")
ONES = ("zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen "
        "fifteen sixteen seventeen eighteen nineteen").split()
TENS = "_ _ twenty thirty forty fifty sixty seventy eighty ninety".split()

T = TypeVar("T")


@dataclass(frozen=True)
class Phrase:
    """One constituent of a sentence."""

    role: str  # subject, verb, object, complement, adverbial, conjunction, aux (fronted) or question (wh-word)
    text: str  # its words, lower case except names and "I"


@dataclass(frozen=True)
class NounPhrase:
    """A noun phrase and the verb agreement it asks for."""

    text: str  # "the old teachers"
    person: str  # "1sg", "2", "3sg", "1pl" or "3pl"


def pick(rng: np.random.Generator, items: Sequence[T]) -> T:
    """One item, uniformly."""
    return items[int(rng.integers(len(items)))]


def chance(rng: np.random.Generator, probability: float) -> bool:
    return bool(rng.random() < probability)


def number_words(n: int) -> str:
    """0 <= n < 1,000,000 in words, British style: 105 -> "one hundred and five"."""
    if n < 20:
        return ONES[n]
    if n < 100:
        return TENS[n // 10] + ("" if n % 10 == 0 else " " + ONES[n % 10])
    if n < 1000:
        rest = n % 100
        return ONES[n // 100] + " hundred" + ("" if rest == 0 else " and " + number_words(rest))
    rest = n % 1000
    joiner = " and " if 0 < rest < 100 else " "
    return number_words(n // 1000) + " thousand" + ("" if rest == 0 else joiner + number_words(rest))


def year_words(year: int) -> str:
    """A year as said aloud: 1984 -> "nineteen eighty four", 2005 -> "two thousand and five"."""
    if 2000 <= year < 2010:
        return number_words(year)
    century, rest = divmod(year, 100)
    if rest == 0:
        return number_words(century) + " hundred"
    return number_words(century) + " " + ("oh " + ONES[rest] if rest < 10 else number_words(rest))


def with_article(words: str) -> str:
    """Prefix "a" or "an" by the sound of the first word (an hour, a university)."""
    first = words.split()[0]
    vowel_sound = first[0] in "aeiou" and not first.startswith(("uni", "use", "eu", "one"))
    return ("an " if vowel_sound or first.startswith(("hour", "honest")) else "a ") + words


def be_form(tense: str, person: str) -> str:
    """am / is / are (present) or was / were (past)."""
    if TIME_OF_TENSE[tense] == "past":
        return "was" if person in ("1sg", "3sg") else "were"
    return {"1sg": "am", "3sg": "is"}.get(person, "are")


def auxiliary(tense: str, person: str, modal: str = "can") -> tuple[str, str]:
    """(auxiliary, form of the main verb after it): ("does", "base"), ("has", "participle"), ..."""
    if tense == "present":
        return ("does" if person == "3sg" else "do"), "base"
    if tense == "past":
        return "did", "base"
    if tense == "future":
        return "will", "base"
    if tense in ("present_progressive", "past_progressive"):
        return be_form(tense, person), "ing"
    if tense == "present_perfect":
        return ("has" if person == "3sg" else "have"), "participle"
    if tense == "past_perfect":
        return "had", "participle"
    return modal, "base"


def negate(aux: str, contract: bool) -> str:
    """do -> "do not" or "don't"; can -> "cannot" or "can't"; am -> "am not"."""
    special = {"can": ("cannot", "can't"), "will": ("will not", "won't"),
               "am": ("am not", "am not"), "might": ("might not", "might not")}
    full, short = special.get(aux, (aux + " not", aux + "n't"))
    return short if contract else full


def verb_group(
    verb: Verb, tense: str, person: str, negative: bool = False, modal: str = "can", contract: bool = False
) -> str:
    """The finite verb group of a statement: "walks", "did not walk", "has walked", "might be walking"."""
    if not negative and tense == "present":
        return verb.third if person == "3sg" else verb.base
    if not negative and tense == "past":
        return verb.past
    aux, form = auxiliary(tense, person, modal)
    return f"{negate(aux, contract) if negative else aux} {getattr(verb, form)}"


BE = make_verb("be", "was", "been", "is")  # only its base/participle are used; finite forms come from be_form
LINKING_VERBS = (make_verb("seem"), make_verb("look"), make_verb("feel", "felt"),
                  make_verb("become", "became", "become"), make_verb("stay"))


def be_group(tense: str, person: str, negative: bool = False, modal: str = "can", contract: bool = False) -> str:
    """The verb group of "be": "is", "wasn't", "will be", "has been", "might not be"."""
    if tense in ("present", "past", "present_progressive", "past_progressive"):
        form = be_form(tense, person)
        return negate(form, contract) if negative else form
    return verb_group(BE, tense, person, negative, modal, contract)


_ORDINAL_ONES = {"one": "first", "two": "second", "three": "third", "five": "fifth", "eight": "eighth",
                 "nine": "ninth", "twelve": "twelfth"}


def ordinal_words(n: int) -> str:
    """1 <= n < 1,000 as an ordinal: 1 -> "first", 21 -> "twenty first", 40 -> "fortieth"."""
    words = number_words(n).split()
    last = words[-1]
    if last in _ORDINAL_ONES:
        last = _ORDINAL_ONES[last]
    elif last.endswith("y"):
        last = last[:-1] + "ieth"
    else:
        last += "th"
    return " ".join([*words[:-1], last])


def clock_words(rng: np.random.Generator) -> str:
    """A time of day as said aloud: "half past six", "ten to nine", "seven o'clock"."""
    hour = ONES[int(rng.integers(1, 13))]
    minutes = pick(rng, ("five", "ten", "twenty", "twenty five"))
    return pick(rng, (f"{hour} o'clock", f"half past {hour}", f"a quarter to {hour}", f"a quarter past {hour}",
                      f"{minutes} past {hour}", f"{minutes} to {hour}", f"{hour} thirty", f"{hour} fifteen",
                      f"{hour} forty five", hour))


_CONTRACTIONS = {  # subject pronoun + auxiliary, as people say them
    "am": "'m", "is": "'s", "are": "'re", "have": "'ve", "has": "'s", "will": "'ll", "would": "'d", "had": "'d",
}
_CONTRACTING_SUBJECTS = frozenset(("I", "you", "he", "she", "it", "we", "they", "there", "that", "what", "who"))


def contract(subject: str, group: str) -> str | None:
    """ "I" + "am going" -> "I'm going"; None where English does not contract ("Anna have", "I can")."""
    aux, _, rest = group.partition(" ")
    if aux in ("is", "has") and subject not in _CONTRACTING_SUBJECTS and not subject.endswith("s"):
        return f"{subject}'s {rest}".strip()  # speech contracts after nouns too: "the water's cold", "Ann's gone"
    if subject not in _CONTRACTING_SUBJECTS or aux not in _CONTRACTIONS:
        return None
    if (aux, subject) in (("am", "you"), ("are", "I"), ("are", "he"), ("are", "she"), ("are", "it")):
        return None
    if aux == "are" and subject in ("there", "that", "what", "who"):
        return None  # "there're" is heard, but never written in a transcript
    if aux == "have" and subject in ("there", "that", "what", "who"):
        return None
    return f"{subject}{_CONTRACTIONS[aux]} {rest}".strip()


_IRREGULAR_COMPARISON = {"good": ("better", "best"), "bad": ("worse", "worst"), "far": ("further", "furthest"),
                         "little": ("less", "least"), "much": ("more", "most"), "many": ("more", "most")}


def comparative(adjective: str) -> tuple[str, str]:
    """("bigger", "biggest"), ("happier", "happiest"), ("more useful", "most useful"): by length and ending."""
    if adjective in _IRREGULAR_COMPARISON:
        return _IRREGULAR_COMPARISON[adjective]
    vowels = "aeiouy"
    syllables = sum(c in vowels and (i == 0 or adjective[i - 1] not in vowels) for i, c in enumerate(adjective))
    if adjective.endswith("e") and syllables > 1 and not adjective.endswith(("le", "ee")):
        syllables -= 1  # "large", "brave": the final e is silent
    if adjective.endswith("y") and syllables == 2 and adjective[-2] not in "aeiou":
        return adjective[:-1] + "ier", adjective[:-1] + "iest"
    if syllables > 1 or adjective.endswith(("ed", "ing")) or " " in adjective:
        return "more " + adjective, "most " + adjective
    if adjective.endswith("e"):
        return adjective + "r", adjective + "st"
    if len(adjective) > 2 and adjective[-1] not in "aeiouwxy" and adjective[-2] in "aeiou" \
            and adjective[-3] not in "aeiou":  # big -> bigger, but cheap -> cheaper
        return adjective + adjective[-1] + "er", adjective + adjective[-1] + "est"
    return adjective + "er", adjective + "est"
