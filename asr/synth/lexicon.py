"""The part-of-speech lexicon behind the synthetic corpus, with English inflection rules.

The lexicon (asr/resources/lexicon.txt, written for this project) lists lemmas by
part of speech and semantic class ("noun food", "verb person", ...); the
grammar in asr.synth.sentences uses the classes to keep sentences sensible
("eat" takes food, "meet" takes people). Regular forms (plurals, third person,
past, -ing) are derived here by rule; the file spells out only irregular ones.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from pathlib import Path

from asr.errors import DataError

LEXICON_PATH = Path(__file__).resolve().parent.parent / "resources" / "lexicon.txt"

_PARTS = ("noun", "verb", "adjective", "adverb", "name")
_VOWELS = "aeiou"


@dataclass(frozen=True)
class Noun:
    """A countable or mass noun."""

    singular: str  # "child"
    plural: str | None  # "children"; None for a mass noun ("rice"): no plural and no "a"


@dataclass(frozen=True)
class Verb:
    """Every form of a verb the grammar needs."""

    base: str  # "go": infinitive, imperative, after do/will/can
    third: str  # "goes": present tense after he / she / a singular noun
    past: str  # "went"
    participle: str  # "gone": after have / has
    ing: str  # "going": after am / is / are / was / were


@dataclass(frozen=True)
class Lexicon:
    """Words by part of speech and class; each tuple is in file order, without repeats."""

    nouns: dict[str, tuple[Noun, ...]]  # class ("person", "food", ...) -> nouns
    verbs: dict[str, tuple[Verb, ...]]  # class ("object", "motion", ...) -> verbs
    adjectives: dict[str, tuple[str, ...]]  # class of the nouns they describe -> adjectives
    adverbs: dict[str, tuple[str, ...]]  # "manner" / "frequency" -> adverbs
    names: dict[str, tuple[str, ...]]  # "male", "female", "city", "country", "weekday", "month" -> names


@functools.lru_cache(maxsize=4)
def load_lexicon(path: Path = LEXICON_PATH) -> Lexicon:
    """Parse the lexicon file; DataError names the file and line of anything malformed."""
    sections: dict[str, dict[str, list]] = {part: {} for part in _PARTS}
    part, cls = "", ""
    for number, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        line = raw.split("#", 1)[0].strip()
        header = re.fullmatch(r"\[(\w+) (\w+)\]", line)
        if header:
            part, cls = header.groups()
            if part not in _PARTS or cls in sections[part]:
                raise DataError(f"{path}:{number}: unknown or repeated section [{part} {cls}]; fix the header")
            sections[part][cls] = []
            continue
        for entry in line.split():
            if not part:
                raise DataError(f"{path}:{number}: entry {entry!r} before any [part class] header")
            word = _parse_entry(part, entry.replace("_", " "), f"{path}:{number}")
            if word in sections[part][cls]:
                raise DataError(f"{path}:{number}: {entry!r} is listed twice in [{part} {cls}]; keep one")
            sections[part][cls].append(word)
    return Lexicon(**{f"{part}s": {c: tuple(w) for c, w in sections[part].items()} for part in _PARTS})


def _parse_entry(part: str, entry: str, where: str) -> Noun | Verb | str:
    forms = entry.split("/")
    limits = {"noun": 2, "verb": 5}.get(part, 1)
    if len(forms) > limits or not all(forms):
        raise DataError(f"{where}: {entry!r} has a bad form list for a {part}; see the format at the file's top")
    if part == "noun":
        plural = forms[1] if len(forms) > 1 else plural_of(forms[0])
        return Noun(forms[0], None if plural == "-" else plural)
    if part == "verb":
        # A phrasal verb ("pick up", "look forward to") inflects its first word only:
        # the listed forms are the head's, and the particles follow each form.
        head, _, particles = forms[0].partition(" ")
        verb = make_verb(head, *forms[1:])
        return with_particles(verb, particles) if particles else verb
    return forms[0]


def with_particles(verb: Verb, particles: str) -> Verb:
    """The phrasal verb `verb` + `particles`: ("give", "up") -> give up, gave up, given up, gives up, giving up."""
    return Verb(*(f"{form} {particles}" for form in (verb.base, verb.third, verb.past, verb.participle, verb.ing)))


def make_verb(
    base: str,
    past: str | None = None,
    participle: str | None = None,
    third: str | None = None,
    ing: str | None = None,
) -> Verb:
    """A verb with the forms not given filled in by rule."""
    past = past or past_of(base)
    doubled = past == base + base[-1] + "ed" or _short_closed_syllable(base)
    return Verb(
        base=base,
        third=third or third_person_of(base),
        past=past,
        participle=participle or past,
        ing=ing or (base + base[-1] + "ing" if doubled else ing_of(base)),
    )


def plural_of(noun: str) -> str:
    """Regular plural: box -> boxes, city -> cities, piano -> pianos, cat -> cats."""
    if noun.endswith(("s", "x", "z", "ch", "sh")):
        return noun + "es"
    if _consonant_then(noun, "y"):
        return noun[:-1] + "ies"
    return noun + "s"


def third_person_of(verb: str) -> str:
    """Present tense after he/she: like the plural, but go -> goes, echo -> echoes."""
    if _consonant_then(verb, "o"):
        return verb + "es"
    return plural_of(verb)


def past_of(verb: str) -> str:
    """Regular past: like -> liked, carry -> carried, play -> played, walk -> walked."""
    if verb.endswith("e"):
        return verb + "d"
    if _consonant_then(verb, "y"):
        return verb[:-1] + "ied"
    return verb + "ed"


def ing_of(verb: str) -> str:
    """Regular -ing form: lie -> lying, make -> making, see -> seeing, walk -> walking."""
    if verb.endswith("ie"):
        return verb[:-2] + "ying"
    if verb.endswith("e") and not verb.endswith(("ee", "ye", "oe")) and len(verb) > 2:
        return verb[:-1] + "ing"
    return verb + "ing"


def _short_closed_syllable(word: str) -> bool:
    """One vowel, then one final consonant that English doubles: sit, run, swim (not fix, play, show)."""
    return (
        len(re.findall(f"[{_VOWELS}]+", word)) == 1
        and re.search(f"[^{_VOWELS}][{_VOWELS}][^{_VOWELS}wxy]$", word) is not None
    )


def _consonant_then(word: str, last: str) -> bool:
    return len(word) > 1 and word.endswith(last) and word[-2] not in _VOWELS
