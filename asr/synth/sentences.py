"""Natural English sentences from a seeded grammar: the text source of the synthetic corpus.

Source: a generative grammar written for this project over the part-of-speech
lexicon in asr/resources/lexicon.txt (about 4,000 lemmas in semantic classes, ~7,900
word forms, plus spelled-out numbers, clock times, dates and prices); about 6,600
distinct words occur in the ~10,000 sentences of a 10-hour corpus. Nothing is
downloaded and no third-party text is used, so the corpus can be rebuilt
anywhere from the seed alone.

Two template families, mixed by CONVERSATION_SHARE. The descriptive one, here,
makes statements (transitive, intransitive, motion, copular, "there is", "want
to ..." clauses, reported speech, compound and subordinate sentences), yes/no
and wh-questions, and commands. It handles subject-verb agreement, eight tenses
(present, past, future, present and past progressive, present and past perfect,
modal; no progressive for stative verbs), negation with and without
contractions, a/an, plural and mass nouns, and keeps time adverbials consistent
with the tense ("yesterday" only in the past). Verbs pick their objects by
semantic class, so people eat food and read books rather than the other way
round, and only people do people's things (vote, read, laugh). The everyday
conversation family is asr.synth.conversation; the English both share
(agreement, tenses, numbers, contractions) is asr.synth.english.

Every random choice comes from the numpy Generator passed in, so one seed
gives one sentence, whatever else runs alongside.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np

from asr.synth.conversation import ConversationTemplates
from asr.synth.english import (  # noqa: F401 (be_group ... year_words: re-exported, callers import them from here)
    ADJECTIVE_CLASS, BE, INTENSIFIERS, LINKING_VERBS, MODALS, OBJECT_PRONOUNS, PREPOSITIONS, QUESTION_MODALS, SEASONS,
    SUBJECT_PRONOUNS, TENSES, TIME_OF_TENSE, NounPhrase, Phrase, auxiliary, be_form, be_group, chance, clock_words,
    number_words, pick, verb_group, with_article, year_words,
)
from asr.synth.lexicon import Lexicon, Noun, Verb, load_lexicon
from asr.text import normalize_transcript

MIN_WORDS = 4  # shorter sentences make clips under a second
MAX_WORDS = 20  # longer ones risk clips over 15 s at the slowest speaking rate
# Share of sentences from the everyday conversation family (asr.synth.conversation); the rest come
# from the descriptive grammar below. Half and half: the descriptive family alone never says
# "of", "it" or "had" (26% of the words of hand-written everyday sentences were never generated).
CONVERSATION_SHARE = 0.5

Template = Callable[[np.random.Generator], tuple[list[Phrase], str]]

@dataclass(frozen=True)
class Sentence:
    """A generated sentence as the synthesizer reads it, with its constituents for checking."""

    text: str  # capitalised, with commas and a final "." or "?"
    phrases: tuple[Phrase, ...]  # constituents in order
    kind: str  # "statement", "question" or "command"

    @property
    def transcript(self) -> str:
        """The LibriSpeech-style transcript: upper case, no punctuation."""
        return normalize_transcript(self.text)


class SentenceGenerator:
    """Seeded sentences over a lexicon: `generate(rng)` gives one `Sentence`."""

    def __init__(self, lexicon: Lexicon | None = None) -> None:
        self.lexicon = lexicon or load_lexicon()
        lx = self.lexicon
        descriptive: tuple[tuple[float, Template], ...] = (
            (0.42, lambda rng: (self.clause(rng, pick(rng, TENSES)), "statement")),
            (0.10, self._compound),
            (0.12, self._subordinate),
            (0.05, self._conditional),
            (0.06, self._reported),
            (0.09, self._yes_no_question),
            (0.10, self._wh_question),
            (0.06, self._command),
        )
        self.people = lx.names["male"] + lx.names["female"]
        self._transitive = tuple(
            c for c in ("object", "food", "person", "abstract", "animal", "place") if c in lx.verbs
        )
        self._stative = frozenset(verb.base for verb in lx.verbs.get("stative", ()))
        conversation = ConversationTemplates(lx, self).templates
        self._templates = tuple(
            [(w * (1 - CONVERSATION_SHARE) / sum(w for w, _ in descriptive), t) for w, t in descriptive]
            + [(w * CONVERSATION_SHARE / sum(w for w, _ in conversation), t) for w, t in conversation]
        )
        self._weights = np.array([w for w, _ in self._templates])
        self._weights /= self._weights.sum()

    def generate(self, rng: np.random.Generator) -> Sentence:
        """One sentence of MIN_WORDS to MAX_WORDS words (redrawn from `rng` until it fits)."""
        while True:
            build = self._templates[int(rng.choice(len(self._templates), p=self._weights))][1]
            phrases, kind = build(rng)
            # "'m", "'s": a contraction is part of the word before it ("I'm"), not a word of its own
            words = sum(not w.startswith("'") for p in phrases for w in p.text.replace(",", " ").split())
            if MIN_WORDS <= words <= MAX_WORDS:
                return _assemble(phrases, kind)

    # ----- sentence templates -------------------------------------------------

    def _compound(self, rng: np.random.Generator) -> tuple[list[Phrase], str]:
        tense = pick(rng, TENSES)
        second = pick(rng, _same_time(tense))
        joiner = Phrase("conjunction", pick(rng, (", and", ", but", ", so")))
        return [*self.clause(rng, tense, adverbials=1), joiner, *self.clause(rng, second, adverbials=1)], "statement"

    def _subordinate(self, rng: np.random.Generator) -> tuple[list[Phrase], str]:
        tense = pick(rng, TENSES)
        word = pick(rng, ("because", "when", "after", "before", "while", "although", "until"))
        time = TIME_OF_TENSE[tense]
        if word == "while":
            second = "past_progressive" if time == "past" else "present_progressive"
        elif word in ("when", "after", "before", "until") and time == "future":
            second = "present"  # "I will call you when she arrives"
        else:
            second = pick(rng, _same_time(tense))
        return [
            *self.clause(rng, tense, adverbials=1),
            Phrase("conjunction", word),
            *self.clause(rng, second, adverbials=1),
        ], "statement"

    def _conditional(self, rng: np.random.Generator) -> tuple[list[Phrase], str]:
        if chance(rng, 0.6):
            condition, result, modal = "present", "future", "can"
        else:
            condition, result, modal = "past", "modal", pick(rng, ("would", "could", "might"))
        return [
            Phrase("conjunction", "if"),
            *self.clause(rng, condition, adverbials=1),
            Phrase("conjunction", ","),
            *self.clause(rng, result, adverbials=1, modal=modal),
        ], "statement"

    def _reported(self, rng: np.random.Generator) -> tuple[list[Phrase], str]:
        tense = pick(rng, ("present", "past", "present_perfect"))
        subject = self.subject(rng)
        verb = pick(rng, self.lexicon.verbs["speech"])
        inner = pick(rng, ("past", "past_progressive") if tense == "past" else TENSES)
        return [
            Phrase("subject", subject.text),
            Phrase("verb", verb_group(verb, tense, subject.person)),
            Phrase("conjunction", "that"),
            *self.clause(rng, inner, adverbials=1, modal=pick(rng, ("would", "could", "might"))),
        ], "statement"

    def _yes_no_question(self, rng: np.random.Generator) -> tuple[list[Phrase], str]:
        tense = pick(rng, TENSES)
        modal = pick(rng, QUESTION_MODALS)
        subject = self.subject(rng)
        if chance(rng, 0.2):
            cls = pick(rng, ("person", "object", "food", "place"))
            subject = self.noun_phrase(rng, cls)
            aux, rest = _split_be(tense, subject.person, modal)  # rest is "" for "Is the soup hot?"
            return [Phrase("aux", aux), Phrase("subject", subject.text), Phrase("verb", rest),
                    Phrase("complement", self.adjective_phrase(rng, cls))], "question"
        cls = pick(rng, self._transitive)
        verb = pick(rng, self.lexicon.verbs[cls])
        aux, form = auxiliary(self.tense_for(verb, tense), subject.person, modal)
        return [
            Phrase("aux", aux),
            Phrase("subject", subject.text),
            Phrase("verb", getattr(verb, form)),
            Phrase("object", self.object(rng, cls, subject.person).text),
            *self._adverbials(rng, tense, limit=1),
        ], "question"

    def _wh_question(self, rng: np.random.Generator) -> tuple[list[Phrase], str]:
        tense = pick(rng, TENSES)
        modal = pick(rng, QUESTION_MODALS)
        cls = pick(rng, self._transitive)
        verb = pick(rng, self.lexicon.verbs[cls])
        if chance(rng, 0.2):  # the wh-word is the subject: no auxiliary, no inversion
            return [
                Phrase("question", "who"),
                Phrase("verb", verb_group(verb, self.tense_for(verb, tense), "3sg", modal=modal)),
                Phrase("object", self.object(rng, cls, "3sg").text),
                *self._adverbials(rng, tense, limit=1),
            ], "question"
        subject = self.subject(rng)
        aux, form = auxiliary(self.tense_for(verb, tense), subject.person, modal)
        gap = self._object_question(rng, cls)
        tail = [] if gap else [Phrase("object", self.object(rng, cls, subject.person).text)]
        wh = gap or pick(rng, ("where", "when", "why", "how often"))
        return [
            Phrase("question", wh),
            Phrase("aux", aux),
            Phrase("subject", subject.text),
            Phrase("verb", getattr(verb, form)),
            *tail,
        ], "question"

    def _command(self, rng: np.random.Generator) -> tuple[list[Phrase], str]:
        cls = pick(rng, self._transitive)
        verb = pick(rng, self.lexicon.verbs[cls])
        opener = pick(rng, ("", "please", "don't", "let's", "never"))
        return [
            Phrase("verb", f"{opener} {verb.base}".strip()),
            Phrase("object", self.object(rng, cls, "2").text),
            *self._adverbials(rng, "future", limit=1),
        ], "command"

    # ----- clauses ----------------------------------------------------------

    def clause(
        self, rng: np.random.Generator, tense: str, adverbials: int = 2, modal: str | None = None
    ) -> list[Phrase]:
        """One finite clause (subject first) in `tense`."""
        modal = modal or pick(rng, MODALS)
        negative = chance(rng, 0.15)
        contract = chance(rng, 0.5)
        shape = int(rng.choice(6, p=(0.38, 0.14, 0.12, 0.16, 0.12, 0.08)))
        if shape == 3:
            return self._copular(rng, tense, negative, modal, contract) + self._adverbials(rng, tense, 1, manner=False)
        if shape == 5:
            return self._existential(rng, tense, negative, modal, contract)
        animal = shape == 1 and chance(rng, 0.3)
        subject = self.noun_phrase(rng, "animal") if animal else self.subject(rng)
        if shape == 0:
            cls = pick(rng, self._transitive)
            verb = pick(rng, self.lexicon.verbs[cls])
            rest = [Phrase("object", self.object(rng, cls, subject.person).text)]
        elif shape == 1:
            verbs = self.lexicon.verbs["intransitive"] + (() if animal else self.lexicon.verbs["activity"])
            verb, rest = pick(rng, verbs), []
        elif shape == 2:
            verb, rest = pick(rng, self.lexicon.verbs["motion"]), [Phrase("adverbial", self.destination(rng))]
        else:
            verb = pick(rng, self.lexicon.verbs["catenative"])
            cls = pick(rng, self._transitive)
            action = pick(rng, self.lexicon.verbs[cls])
            rest = [Phrase("verb", f"to {action.base}"), Phrase("object", self.object(rng, cls, subject.person).text)]
        group = verb_group(verb, self.tense_for(verb, tense), subject.person, negative, modal, contract)
        if not negative and tense in ("present", "past") and chance(rng, 0.15):
            group = f"{pick(rng, self.lexicon.adverbs['frequency'])} {group}"
        adverbial_phrases = self._adverbials(rng, tense, adverbials)
        return [Phrase("subject", subject.text), Phrase("verb", group), *rest, *adverbial_phrases]

    def _copular(
        self, rng: np.random.Generator, tense: str, negative: bool, modal: str, contract: bool
    ) -> list[Phrase]:
        cls = pick(rng, ("person", "person", "animal", "object", "food", "place", "abstract"))
        subject = self.subject(rng) if cls == "person" and chance(rng, 0.5) else self.noun_phrase(rng, cls)
        if cls == "person" and chance(rng, 0.3):
            noun = pick(rng, self.lexicon.nouns["person"])
            plural = subject.person in ("1pl", "3pl")
            complement = noun.plural if plural and noun.plural else with_article(noun.singular)
        else:
            complement = self.adjective_phrase(rng, cls)
        if chance(rng, 0.25):
            linking = pick(rng, LINKING_VERBS)
            group = verb_group(linking, self.tense_for(linking, tense), subject.person, negative, modal, contract)
        else:
            group = be_group(tense, subject.person, negative, modal, contract)
        return [Phrase("subject", subject.text), Phrase("verb", group), Phrase("complement", complement)]

    def _existential(
        self, rng: np.random.Generator, tense: str, negative: bool, modal: str, contract: bool
    ) -> list[Phrase]:
        cls = pick(rng, ("person", "animal", "object", "food"))
        thing = self.noun_phrase(rng, cls, indefinite=True)
        group = be_group(tense, thing.person, negative, modal, contract)
        return [Phrase("subject", "there"), Phrase("verb", group), Phrase("complement", thing.text),
                Phrase("adverbial", self.place(rng))]

    def tense_for(self, verb: Verb, tense: str) -> str:
        """`tense`, made simple for stative verbs ("wants", not "is wanting")."""
        if verb.base in self._stative:
            return {"present_progressive": "present", "past_progressive": "past"}.get(tense, tense)
        return tense

    # ----- phrases ----------------------------------------------------------

    def subject(self, rng: np.random.Generator) -> NounPhrase:
        draw = rng.random()
        if draw < 0.2:
            text = pick(rng, tuple(SUBJECT_PRONOUNS))
            return NounPhrase(text, SUBJECT_PRONOUNS[text])
        if draw < 0.42:
            if chance(rng, 0.1):
                return NounPhrase(f"{pick(rng, self.people)} and {pick(rng, self.people)}", "3pl")
            return NounPhrase(pick(rng, self.people), "3sg")
        return self.noun_phrase(rng, "person", modifier=True)

    def object(self, rng: np.random.Generator, cls: str, subject_person: str) -> NounPhrase:
        if cls == "person":
            draw = rng.random()
            if draw < 0.2:
                text = pick(rng, [p for p, person in OBJECT_PRONOUNS.items() if person != subject_person])
                return NounPhrase(text, OBJECT_PRONOUNS[text])
            if draw < 0.45:
                return NounPhrase(pick(rng, self.people), "3sg")
        if cls == "place" and chance(rng, 0.25):
            return NounPhrase(pick(rng, self.lexicon.names["city"]), "3sg")
        return self.noun_phrase(rng, cls)

    def _object_question(self, rng: np.random.Generator, cls: str) -> str | None:
        """A fronted object ("what", "which book", "how many apples") or None for an adverbial question."""
        draw = rng.random()
        if draw < 0.3:
            return "who" if cls == "person" else "what"
        if draw < 0.5:
            return f"which {pick(rng, self.lexicon.nouns[cls]).singular}"
        if draw < 0.6:
            countable = [n for n in self.lexicon.nouns[cls] if n.plural]
            return f"how many {pick(rng, countable).plural}"
        return None

    def noun_phrase(
        self, rng: np.random.Generator, cls: str, modifier: bool = False, indefinite: bool = False
    ) -> NounPhrase:
        """Determiner, maybe an adjective, a noun of class `cls`, maybe a modifier ("from Oslo")."""
        noun = pick(rng, self.lexicon.nouns[cls])
        plural = noun.plural is not None and chance(rng, 0.35)
        head = noun.plural if plural else noun.singular
        if chance(rng, 0.4):
            head = f"{pick(rng, self.lexicon.adjectives[ADJECTIVE_CLASS[cls]])} {head}"
        text = self._determine(rng, noun, plural, head, indefinite)
        if modifier and chance(rng, 0.12):
            text += pick(rng, (f" from {pick(rng, self.lexicon.names['city'])}", " next door",
                               f" from the {pick(rng, self.lexicon.nouns['place']).singular}"))
        return NounPhrase(text, "3pl" if plural else "3sg")

    def _determine(self, rng: np.random.Generator, noun: Noun, plural: bool, head: str, indefinite: bool) -> str:
        if plural:
            options = ("some", "many", "a few", "several", "two", "three", "four", "five", "ten",
                       number_words(int(rng.integers(2, 100))))
            if not indefinite:
                options += ("the", "the", "these", "those", "my", "your", "our", "their", "his", "her", "all the")
        elif noun.plural is None:
            options = ("some", "a little", "more", "too much")
            if not indefinite:
                options += ("the", "the", "this", "that", "my", "our", "their", "your")
        else:
            options = ("a", "a", "a", "another")
            if not indefinite:
                options += ("the", "the", "the", "this", "that", "my", "your", "his", "her", "our", "their",
                            "every", "POSSESSIVE")
        determiner = pick(rng, options)
        if determiner == "a":
            return with_article(head)
        if determiner == "POSSESSIVE":
            return f"{pick(rng, self.people)}'s {head}"
        return f"{determiner} {head}"

    def adjective_phrase(self, rng: np.random.Generator, cls: str) -> str:
        adjective = pick(rng, self.lexicon.adjectives[ADJECTIVE_CLASS[cls]])
        return f"{pick(rng, INTENSIFIERS)} {adjective}" if chance(rng, 0.5) else adjective

    def _adverbials(
        self, rng: np.random.Generator, tense: str, limit: int = 2, manner: bool = True
    ) -> list[Phrase]:
        """Up to `limit` of manner (unless `manner` is False), place and time, in that (English) order."""
        makers = []
        if chance(rng, 0.25) and manner:
            makers.append(lambda: pick(rng, self.lexicon.adverbs["manner"]))
        if chance(rng, 0.3):
            makers.append(lambda: self.place(rng))
        if chance(rng, 0.4):
            makers.append(lambda: self.time(rng, tense))
        return [Phrase("adverbial", make()) for make in makers[:limit]]

    def place(self, rng: np.random.Generator) -> str:
        if chance(rng, 0.2):
            return f"in {pick(rng, self.lexicon.names[pick(rng, ('city', 'country'))])}"
        place = pick(rng, self.lexicon.nouns["place"]).singular
        if chance(rng, 0.25):
            place = f"{pick(rng, self.lexicon.adjectives['place'])} {place}"
        return f"{pick(rng, PREPOSITIONS)} {pick(rng, ('the', 'the', 'the', 'my', 'our', 'their'))} {place}"

    def destination(self, rng: np.random.Generator) -> str:
        draw = rng.random()
        if draw < 0.15:
            return "home"
        if draw < 0.35:
            return f"to {pick(rng, self.lexicon.names[pick(rng, ('city', 'country'))])}"
        place = pick(rng, self.lexicon.nouns["place"]).singular
        return f"{pick(rng, ('to', 'to', 'to', 'into', 'towards', 'across', 'past'))} the {place}"

    def time(self, rng: np.random.Generator, tense: str) -> str:
        names = self.lexicon.names
        day, month, season = pick(rng, names["weekday"]), pick(rng, names["month"]), pick(rng, SEASONS)
        count, unit = number_words(int(rng.integers(2, 13))), pick(rng, ("days", "weeks", "months", "years"))
        options = {
            "past": ("yesterday", f"last {day}", f"last {season}", "last night", "last week", f"{count} {unit} ago",
                     f"on {day}", f"in {month}", "this morning", "earlier today",
                     f"in {year_words(int(rng.integers(1900, 2031)))}", f"at {clock_words(rng)}"),
            "present": ("every day", f"every {day}", f"on {day}s", "in the evening", "at night", f"every {season}",
                        f"at {clock_words(rng)}", "twice a week", "once a month", "in the morning", "today"),
            "future": ("tomorrow", f"next {day}", "next week", f"next {season}", f"in {count} {unit}", "tonight",
                       "later today", f"on {day}", f"in {month}", f"at {clock_words(rng)}", "soon"),
        }[TIME_OF_TENSE[tense]]
        if tense == "present_progressive":
            options = ("right now", "at the moment", "this week", "this afternoon", "today")
        elif tense == "past_perfect":
            options = ("already", "before", "by then", "the day before", "the year before", f"by {day}")
        elif tense == "present_perfect":
            options = ("this week", "recently", "already", f"since {day}", f"for {count} {unit}", "twice this year")
        return pick(rng, options)


def _same_time(tense: str) -> tuple[str, ...]:
    return tuple(t for t in TENSES if TIME_OF_TENSE[t] == TIME_OF_TENSE[tense])


def _split_be(tense: str, person: str, modal: str) -> tuple[str, str]:
    """Question form of "be": ("is", "") for "Is the soup hot?", ("will", "be"), ("has", "been")."""
    if tense in ("present", "past", "present_progressive", "past_progressive"):
        return be_form(tense, person), ""
    aux, form = auxiliary(tense, person, modal)
    return aux, getattr(BE, form)


def _assemble(phrases: Sequence[Phrase], kind: str) -> Sentence:
    # " 'm": a contraction split from its subject (Phrase("verb", "'m going")) joins it again
    text = " ".join(p.text for p in phrases if p.text).replace(" ,", ",").replace(" '", "'")
    text = text[0].upper() + text[1:] + ("?" if kind == "question" else ".")
    return Sentence(text=text, phrases=tuple(p for p in phrases if p.text), kind=kind)


@functools.lru_cache(maxsize=1)
def default_generator() -> SentenceGenerator:
    """The generator over the shipped lexicon (built once per process)."""
    return SentenceGenerator()
