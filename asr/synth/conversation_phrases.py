"""The clauses and phrases of everyday conversation, which its templates (asr.synth.conversation) combine.

A subject as conversation has them (mostly pronouns), its verb group contracted
as speech does, a whole clause with an object and maybe an adverbial, of-phrases
("a lot of the boxes", "the end of the week"), amounts and prices in words. Every
random choice comes from the numpy Generator passed in.
"""

from __future__ import annotations

from typing import Callable, Protocol

import numpy as np

from asr.synth.english import (
    NounPhrase, Phrase, be_group, chance, contract, number_words, pick, verb_group, with_article,
)
from asr.synth.lexicon import Lexicon, Verb, make_verb

Template = Callable[[np.random.Generator], tuple[list[Phrase], str]]


class PhraseSource(Protocol):
    """What the templates borrow from the descriptive grammar (asr.synth.sentences.SentenceGenerator)."""

    people: tuple[str, ...]  # first names

    def subject(self, rng: np.random.Generator) -> NounPhrase: ...
    def object(self, rng: np.random.Generator, cls: str, subject_person: str) -> NounPhrase: ...
    def noun_phrase(
        self, rng: np.random.Generator, cls: str, modifier: bool = False, indefinite: bool = False
    ) -> NounPhrase: ...
    def adjective_phrase(self, rng: np.random.Generator, cls: str) -> str: ...
    def place(self, rng: np.random.Generator) -> str: ...
    def destination(self, rng: np.random.Generator) -> str: ...
    def time(self, rng: np.random.Generator, tense: str) -> str: ...
    def tense_for(self, verb: Verb, tense: str) -> str: ...


CHAT_TENSES = ("present", "past", "past", "future", "present_progressive", "present_perfect", "present_perfect",
               "past_perfect", "modal", "going_to")  # conversation leans on the past and the perfect
SPEAKERS = {"I": "1sg", "you": "2", "we": "1pl", "they": "3pl", "he": "3sg", "she": "3sg"}
_FAMILY = ("mum", "dad", "sister", "brother", "wife", "husband", "son", "daughter", "parents", "grandmother",
           "grandfather", "grandparents", "kids", "children", "boss", "friend", "friends", "neighbours",
           "neighbour", "cousin", "aunt", "uncle", "partner", "flatmate", "colleague", "teacher", "doctor")
_PLURAL_FAMILY = frozenset(("parents", "grandparents", "kids", "children", "friends", "neighbours"))
_INDEFINITE = ("something", "anything", "nothing", "everything", "someone", "anyone", "everyone", "nobody",
               "somebody", "everybody")
_PERFECT_ADVERBS = ("just", "already", "never", "recently", "finally", "always", "only just")
_BEFORE_VERB = ("still", "already", "just", "never", "always", "often", "finally", "almost", "nearly", "also",
                "even", "only", "really", "hardly", "actually", "probably", "usually", "sometimes", "still", "also")
_PLACE_PREPOSITIONS = ("under", "against", "between the door and", "through", "above", "below", "along", "behind",
                       "in front of", "on top of", "next to", "opposite", "round", "towards", "across", "beside")
_END_ADVERBS = ("again", "first", "as well", "too", "together", "anyway", "though", "once again", "at first",
                "for the first time", "in the end", "all day", "all the time", "at all", "any more",
                "for a while", "by mistake", "on purpose", "in a minute", "one by one", "over and over again",
                "right away", "after all", "instead", "either", "along the way", "along the river", "not yet",
                "despite the rain", "despite everything", "except on Sundays", "between the two", "in such a hurry",
                "between meals", "for such a long time", "on holiday", "during the holidays", "for an hour",
                "every hour", "up the stairs", "down the stairs", "all over the place", "without thinking",
                "above the door", "against the wall", "still", "under the bed", "on my own", "on their own",
                "without asking", "during the week", "each time", "the other day", "every other week",
                "at the same time", "unless it rains", "or something", "in the same place", "immediately",
                "eventually", "straight away", "in a million years", "at the moment", "these days",
                "through the window", "through the park", "above all")
_CONTAINERS = ("cup", "glass", "bottle", "box", "bag", "packet", "piece", "bowl", "plate", "jar", "tin", "slice")
_QUANTIFIERS_MASS = ("a lot of", "a bit of", "some of the", "most of the", "all of the", "the rest of the",
                     "plenty of", "a little bit of", "half of the", "much of the", "a great deal of", "enough")
_TIME_SPANS = ("the day", "the week", "the month", "the year", "the morning", "the afternoon", "the evening",
               "the night", "the summer", "the holidays", "the meeting", "the film", "the match", "the term")
_TRANSPORT = ("train", "bus", "car", "taxi", "bike", "plane", "coach", "boat", "tram", "underground")
_MONEY = ("pounds", "pence", "dollars", "euros")
_QUANTITIES = ("a lot of", "lots of", "some of OWNER", "most of OWNER", "all OWNER", "none of OWNER", "a couple of",
               "plenty of", "a few of OWNER", "both of OWNER", "half OWNER", "the rest of OWNER", "loads of",
               "a number of", "several of OWNER", "many of OWNER", "any of OWNER", "enough", "too many", "so many")
_SINGLE_OF = ("one of OWNER", "each of OWNER", "either of OWNER", "neither of OWNER", "another one of OWNER")
_PARTS_OF_TIME = ("the end of", "the start of", "the beginning of", "the middle of", "the rest of", "most of",
                  "half of", "part of")
_PARTS_OF_THING = ("the top of", "the bottom of", "the back of", "the front of", "the side of", "the edge of",
                   "the inside of", "the outside of", "the corner of", "the price of", "the name of", "the size of",
                   "the colour of", "the smell of", "the shape of", "the owner of", "a photo of", "a picture of",
                   "the key of", "the history of", "the rest of", "the other side of", "a list of")
# Verbs more than one template module names itself (asr.synth.conversation, asr.synth.conversation_exchanges).
HAVE = make_verb("have", "had", "had", "has")
OPEN = make_verb("open")
# (subject, verb): frames that take a that-clause ("I think that ...", "the problem is that ...")
OPINIONS = (("I", "think"), ("I", "don't think"), ("I", "'m sure"), ("I", "'m not sure if"), ("I", "guess"),
            ("I", "suppose"), ("I", "hope"), ("I", "believe"), ("I", "know"), ("I", "didn't know"),
            ("I", "forgot"), ("I", "heard"), ("I", "wonder if"), ("I", "'m afraid"), ("I", "'m glad"),
            ("it", "seems"), ("the thing", "is"), ("the problem", "is"), ("the good news", "is"),
            ("it", "turns out"), ("it", "'s a shame"), ("it", "'s true"), ("it", "'s possible"),
            ("I", "can't believe"), ("I", "'d say"), ("I", "told you"), ("she", "told me"), ("he", "said"),
            ("they", "said"), ("we", "found out"), ("I", "realised"), ("I", "noticed"), ("it", "looks like"),
            ("it", "sounds like"), ("I", "feel like"), ("the fact", "is"), ("nobody", "knows whether"),
            ("we", "can't decide whether"), ("I", "asked her whether"), ("I", "wish"), ("I", "bet"),
            ("she", "explained why"), ("he", "asked me how"), ("I", "don't understand why"),
            ("I", "was wondering if"), ("we", "were wondering whether"))


class ConversationPhrases:
    """Clauses and phrases over a lexicon, borrowing noun phrases, places and times from `phrases`."""

    def __init__(self, lexicon: Lexicon, phrases: PhraseSource) -> None:
        self.lexicon = lexicon
        self.phrases = phrases
        lx = lexicon
        self._objects = tuple(c for c in ("object", "food", "abstract", "place") if c in lx.verbs)
        self._doings = tuple(c for c in ("intransitive", "activity") if c in lx.verbs)
        self._count_nouns = {cls: tuple(n for n in nouns if n.plural) for cls, nouns in lx.nouns.items()}
        self._mass_nouns = {cls: tuple(n for n in nouns if not n.plural) for cls, nouns in lx.nouns.items()}

    def speaker(self, rng: np.random.Generator) -> NounPhrase:
        """A subject as conversation has them: mostly pronouns, then family, then anyone."""
        draw = rng.random()
        if draw < 0.55:
            text = pick(rng, tuple(SPEAKERS))
            return NounPhrase(text, SPEAKERS[text])
        if draw < 0.7:
            who = pick(rng, _FAMILY)
            owner = pick(rng, ("my", "my", "our", "your", "his", "her", "their"))
            return NounPhrase(f"{owner} {who}", "3pl" if who in _PLURAL_FAMILY else "3sg")
        if draw < 0.75:
            return NounPhrase(pick(rng, _INDEFINITE[4:]), "3sg")
        return self.phrases.subject(rng)

    def finite(
        self, rng: np.random.Generator, subject: NounPhrase, verb: Verb | None, tense: str, negative: bool = False
    ) -> list[Phrase]:
        """Subject and verb group ("be" when `verb` is None), contracted as speech does about half the time."""
        modal = pick(rng, ("can", "could", "should", "might", "must", "would", "will", "may"))
        contract_not = chance(rng, 0.6)
        if tense == "going_to":
            be = be_group("present", subject.person, negative, contract=contract_not)
            group = f"{be} going to {verb.base if verb else 'be'}"
        elif verb is None:
            group = be_group(tense, subject.person, negative, modal, contract=contract_not)
        else:
            tense = self.phrases.tense_for(verb, tense)
            group = verb_group(verb, tense, subject.person, negative, modal, contract=contract_not)
            if not negative and tense in ("present_perfect", "past_perfect") and chance(rng, 0.5):
                aux, _, rest = group.partition(" ")
                group = f"{aux} {pick(rng, _PERFECT_ADVERBS)} {rest}"
        joined = contract(subject.text, group) if chance(rng, 0.6) else None
        if joined:  # "I" + "'m going": _assemble glues the apostrophe back on
            return [Phrase("subject", subject.text), Phrase("verb", joined[len(subject.text):].strip())]
        return [Phrase("subject", subject.text), Phrase("verb", group)]

    def clause(self, rng: np.random.Generator, tense: str, subject: NounPhrase | None = None) -> list[Phrase]:
        """One everyday clause: who, a verb group, what, and maybe an adverb, a place or a time."""
        subject = subject or self.speaker(rng)
        negative = chance(rng, 0.2)
        draw = rng.random()
        verb: Verb | None
        if draw < 0.5:
            cls = pick(rng, self._objects)
            verb = pick(rng, self.lexicon.verbs[cls])
            rest = [Phrase("object", self.thing(rng, cls, negative).text)]
        elif draw < 0.62:
            verb = pick(rng, self.lexicon.verbs["person"])
            rest = [Phrase("object", self.phrases.object(rng, "person", subject.person).text)]
        elif draw < 0.77:
            verb, rest = pick(rng, self.lexicon.verbs[pick(rng, self._doings)]), []
        elif draw < 0.9:
            verb = pick(rng, self.lexicon.verbs["motion"])
            rest = [Phrase("adverbial", self.phrases.destination(rng))]
        else:
            verb = None
            rest = [Phrase("complement", self._adjective(rng, pick(rng, ("person", "predicative", "predicative"))))]
        phrases = self.finite(rng, subject, verb, tense, negative)
        adverbs = self.lexicon.adverbs
        if chance(rng, 0.12) and "sentence" in adverbs:
            phrases.insert(0, Phrase("adverbial", pick(rng, adverbs["sentence"]) + ","))
        elif chance(rng, 0.3) and not negative and len(phrases[-1].text.split()) == 1:
            # "I nearly missed it", "she still lives there": before a one-word verb group
            phrases[-1] = Phrase("verb", f"{pick(rng, _BEFORE_VERB)} {phrases[-1].text}")
        if negative and tense == "present_perfect" and chance(rng, 0.5):
            return [*phrases, *rest, Phrase("adverbial", "yet")]  # "I haven't finished it yet"
        return [*phrases, *rest, *self._tail(rng, tense)]

    def _tail(self, rng: np.random.Generator, tense: str) -> list[Phrase]:
        """Nothing, or one adverbial: "again", "at first", a time that fits `tense`, a place, "by train"."""
        draw = rng.random()
        if draw < 0.12:
            return [Phrase("adverbial", pick(rng, _END_ADVERBS))]
        if draw < 0.2:
            return [Phrase("adverbial", pick(rng, self.lexicon.adverbs.get("place") or _END_ADVERBS))]
        if draw < 0.35:
            return [Phrase("adverbial", self.phrases.time(rng, "future" if tense == "going_to" else tense))]
        if draw < 0.4:
            return [Phrase("adverbial", self.phrases.place(rng))]
        if draw < 0.45:
            where = self.phrases.noun_phrase(rng, pick(rng, ("place", "object"))).text
            return [Phrase("adverbial", f"{pick(rng, _PLACE_PREPOSITIONS)} {where}")]
        if draw < 0.5:
            return [Phrase("adverbial", f"by {pick(rng, _TRANSPORT)}")]
        return []

    def thing(self, rng: np.random.Generator, cls: str, negative: bool = False) -> NounPhrase:
        """An object noun phrase, often with "of" ("a lot of the boxes", "the end of the film")."""
        draw = rng.random()
        if draw < 0.08:
            words = ("anything", "anyone", "any of them") if negative else (
                "something", "everything", "someone", "nothing")
            return NounPhrase(pick(rng, words) + (" else" if chance(rng, 0.3) else ""), "3sg")
        if draw < 0.3:
            return self.of_phrase(rng, cls)
        if draw < 0.31 and self.lexicon.names.get("nationality"):  # "an Italian restaurant", "some French cheese"
            noun = self.phrases.noun_phrase(rng, cls, indefinite=True).text.split(" ", 1)
            if len(noun) == 2:
                nationality = pick(rng, self.lexicon.names["nationality"])
                return NounPhrase(f"{noun[0]} {nationality} {noun[1]}".replace("an ", "a ", 1)
                                  .replace(f"a {nationality}", with_article(nationality)), "3sg")
        if draw < 0.33:  # "my brother's car"
            noun = pick(rng, self.lexicon.nouns[cls]).singular
            return NounPhrase(f"{pick(rng, ('my', 'our', 'your'))} {pick(rng, _FAMILY)}'s {noun}", "3sg")
        if draw < 0.36:
            return NounPhrase(pick(rng, ("it", "them", "this", "that", "one", "these", "those", "the other one",
                                         "each other", "the same one", "my own", "mine", "yours", "hers", "his",
                                         "ours", "theirs")), "3sg")
        return self.phrases.noun_phrase(rng, cls)

    def of_phrase(self, rng: np.random.Generator, cls: str) -> NounPhrase:
        """ "a lot of apples", "one of the keys", "a cup of tea", "the end of the week", "the top of the hill"."""
        draw = rng.random()
        counts, masses = self._count_nouns.get(cls, ()), self._mass_nouns.get(cls, ())
        owner = pick(rng, ("the", "the", "my", "your", "our", "their", "his", "her", "its", "these", "those"))
        if draw < 0.3 and counts:
            quantity = pick(rng, _QUANTITIES).replace("OWNER", owner)
            return NounPhrase(f"{quantity} {pick(rng, counts).plural}", "3pl")
        if draw < 0.4 and counts:
            quantity = pick(rng, _SINGLE_OF).replace("OWNER", owner if owner not in ("these", "those") else "the")
            return NounPhrase(f"{quantity} {pick(rng, counts).plural}", "3sg")
        if draw < 0.5 and masses:
            return NounPhrase(f"{pick(rng, _QUANTIFIERS_MASS)} {pick(rng, masses).singular}", "3sg")
        if draw < 0.62:
            food = pick(rng, self._mass_nouns.get("food") or self.lexicon.nouns["food"])
            return NounPhrase(with_article(f"{pick(rng, _CONTAINERS)} of {food.singular}"), "3sg")
        if draw < 0.78:
            return NounPhrase(f"{pick(rng, _PARTS_OF_TIME)} {pick(rng, _TIME_SPANS)}", "3sg")
        whole = self.phrases.noun_phrase(rng, pick(rng, ("place", "object")))
        return NounPhrase(f"{pick(rng, _PARTS_OF_THING)} {whole.text}", "3sg")

    def _adjective(self, rng: np.random.Generator, cls: str) -> str:
        word = pick(rng, self.lexicon.adjectives.get(cls) or self.lexicon.adjectives["person"])
        if chance(rng, 0.4):
            degree = self.lexicon.adverbs.get("degree", ()) + ("very", "so", "too", "a bit", "not very", "not at all")
            return f"{pick(rng, degree)} {word}"
        return word

    def _amount(self, rng: np.random.Generator, unit: str) -> str:
        """ "an hour", "half an hour", "twenty five minutes"."""
        n = 1 if chance(rng, 0.25) else int(rng.integers(2, 60))  # "an hour" is said far more than "one hour"
        if n > 1:
            return f"{number_words(n)} {unit}s"
        return pick(rng, (with_article(unit), "half an hour" if unit == "hour" else f"one {unit}"))

    def _price(self, rng: np.random.Generator) -> str:
        pounds = number_words(int(rng.integers(2, 500)))
        draw = rng.random()
        if draw < 0.5:
            return f"{pounds} {pick(rng, _MONEY)}"
        if draw < 0.8:
            return f"{pounds} pounds {number_words(int(rng.integers(1, 100)))}"
        return pick(rng, (f"about {pounds} pounds", "a pound", f"under {pounds} pounds", "a fortune", "nothing",
                          f"less than {pounds} pounds", f"more than {pounds} euros"))
