"""Everyday conversation: the second template family of asr.synth.sentences.

The descriptive grammar (asr.synth.sentences) says who did what to whom; it
never says "of", "it", "had", "by", "out", "down" or "again", which carry a
large share of spoken English. These templates are the constructions people
use in conversation, home, work, shops and travel: contractions ("I'm", "we've",
"she'd"), phrasal verbs with a pronoun inside ("turn it off"), of-phrases ("a lot
of", "the end of the week"), it- and there-clauses, relative clauses with who /
which / that, passives with by, perfect and past perfect with just / already /
still, requests, everyday questions, comparisons, prices, clock times, dates,
durations and distances in words.

Every random choice comes from the numpy Generator passed in. Each template
returns (phrases, kind) like the descriptive ones: every clause of a
statement is a subject, then a verb; questions open with an auxiliary or a
wh-word; commands with a verb.
"""

from __future__ import annotations

from typing import Callable, Protocol

import numpy as np

from asr.synth.english import (
    TIME_OF_TENSE, NounPhrase, Phrase, auxiliary, be_form, be_group, chance, clock_words, comparative, contract,
    number_words, ordinal_words, pick, verb_group, with_article, year_words,
)
from asr.synth.lexicon import Lexicon, Verb, make_verb, with_particles

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
_SPEAKERS = {"I": "1sg", "you": "2", "we": "1pl", "they": "3pl", "he": "3sg", "she": "3sg"}
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
_CONJUNCTIONS = ((", and", "same"), (", but", "same"), (", so", "same"), ("because", "same"), ("so that", "same"),
                 ("if", "condition"), ("when", "condition"), ("as soon as", "condition"), ("unless", "condition"),
                 ("until", "condition"), ("before", "condition"), ("after", "condition"), ("while", "same"),
                 ("although", "same"), ("even though", "same"), ("in case", "condition"), ("since", "past"),
                 ("as", "same"), (", or", "same"), ("whereas", "same"), ("once", "condition"))
_CONTAINERS = ("cup", "glass", "bottle", "box", "bag", "packet", "piece", "bowl", "plate", "jar", "tin", "slice")
_QUANTIFIERS_MASS = ("a lot of", "a bit of", "some of the", "most of the", "all of the", "the rest of the",
                     "plenty of", "a little bit of", "half of the", "much of the", "a great deal of", "enough")
_TIME_SPANS = ("the day", "the week", "the month", "the year", "the morning", "the afternoon", "the evening",
               "the night", "the summer", "the holidays", "the meeting", "the film", "the match", "the term")
_TRANSPORT = ("train", "bus", "car", "taxi", "bike", "plane", "coach", "boat", "tram", "underground")
_UNITS_OF_TIME = ("minute", "hour", "day", "week", "month", "year")
_MONEY = ("pounds", "pence", "dollars", "euros")
# Verbs the templates name themselves (the lexicon's classes do not say which verb means "cost").
_TAKE, _COST = make_verb("take", "took", "taken"), make_verb("cost", "cost", "cost")
_HAVE = make_verb("have", "had", "had", "has")
_TALK, _THINK, _WORRY = make_verb("talk"), make_verb("think", "thought", "thought"), make_verb("worry")
_COMPLAIN, _FORGET = make_verb("complain"), make_verb("forget", "forgot", "forgotten", ing="forgetting")
_DREAM, _START, _OPEN = make_verb("dream", "dreamt"), make_verb("start"), make_verb("open")
_CLOSE, _LEAVE, _FINISH = make_verb("close"), make_verb("leave", "left", "left"), make_verb("finish")
_ARRIVE, _WAIT, _LIVE, _WORK = make_verb("arrive"), make_verb("wait"), make_verb("live"), make_verb("work")
_STUDY, _STAY, _BORROW, _USE = make_verb("study"), make_verb("stay"), make_verb("borrow"), make_verb("use")
_TRY, _RAIN, _SNOW, _STOP = make_verb("try"), make_verb("rain"), make_verb("snow"), make_verb("stop", "stopped")
_GET_WORSE = with_particles(make_verb("get", "got", "got"), "worse")
_CLEAR_UP = with_particles(make_verb("clear"), "up")
_HURT, _BREAK = make_verb("hurt", "hurt", "hurt"), make_verb("break", "broke", "broken")
_CUT = make_verb("cut", "cut", "cut")
_WASH, _INJURE, _HIT = make_verb("wash"), make_verb("injure"), make_verb("hit", "hit", "hit")
_ACHE, _ITCH = make_verb("ache"), make_verb("itch")
_GET, _CATCH = make_verb("get", "got", "got"), make_verb("catch", "caught", "caught")
_SEPARABLE = frozenset(("up", "down", "off", "on", "away", "back", "in", "over", "out"))
_REPLIES = ("yes,", "no,", "oh,", "well,", "sorry,", "thanks,", "okay,", "right,", "of course,", "no thanks,",
            "thank you,", "excuse me,", "hang on,", "look,", "listen,", "oh dear,", "all right,", "anyway,",
            "by the way,", "to be honest,", "in fact,", "so,", "hello,", "good morning,", "good night,", "bye,",
            "please,", "oh no,", "never mind,", "fair enough,", "great,", "lovely,", "I see,", "wait,")


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
# (subject, verb): frames that take a that-clause ("I think that ...", "the problem is that ...")
_OPINIONS = (("I", "think"), ("I", "don't think"), ("I", "'m sure"), ("I", "'m not sure if"), ("I", "guess"),
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
_ASKING = (("did", "you know"), ("do", "you think"), ("are", "you sure"), ("do", "you know if"),
           ("do", "you remember when"), ("is", "it true"), ("have", "you heard"))
# (auxiliary, subject, verb prefix, form): polite requests and offers
_REQUESTS = (("could", "you", "", "base"), ("can", "you", "", "base"), ("would", "you", "", "base"),
             ("will", "you", "", "base"), ("could", "you", "please", "base"), ("would", "you", "mind", "ing"),
             ("do", "you", "mind", "ing"), ("can", "I", "", "base"), ("could", "I", "just", "base"),
             ("may", "I", "", "base"), ("shall", "I", "", "base"), ("shall", "we", "", "base"),
             ("would", "you", "like to", "base"), ("do", "you", "want me to", "base"))
_COMMAND_OPENERS = ("let's", "please", "don't", "don't forget to", "remember to", "try to", "make sure you",
                    "go and", "just", "let me", "help me", "never", "always", "come and", "please don't")
_QUESTION_WORDS = ("how long", "how often", "how much", "how many times", "what time", "where", "why", "when",
                   "how", "how far", "how soon", "where else")
# (wh-word, verb, rest): set phrases of everyday questions
_SET_QUESTIONS = (("what", "'s the matter", "with PLACE"), ("what", "'s wrong", "with PERSON"),
                  ("what", "'s going on", "in PLACE"), ("what", "happened", "to PERSON"),
                  ("what", "'s the time", "in CITY"), ("what", "'s the weather like", "in CITY"),
                  ("what", "'s for", "dinner tonight"), ("who", "'s", "there"), ("what", "'s", "your name"),
                  ("where", "'s", "the nearest PLACE_NOUN"), ("what", "'s the best way", "to PLACE"),
                  ("which", "is", "the way to PLACE"), ("whose", "is", "PLACE"), ("who", "was", "that on the phone"),
                  ("what", "was", "that noise"), ("how", "was", "your day"), ("how", "'s", "PERSON"),
                  ("how", "are", "you getting on"), ("what", "time is it", "now"), ("where", "were", "you"),
                  ("whose", "turn is it", "now"), ("whose", "coat is", "this"), ("whose", "idea was", "that"),
                  ("whose", "car is", "parked outside"))
_EVENTS = ("the film", "the meeting", "the match", "the concert", "the party", "the lesson", "the show", "the class",
           "the game", "the wedding", "the interview", "the appointment", "the course", "the sale", "the exam")
_JOURNEYS = ("the train", "the bus", "the flight", "the plane", "the coach", "the ferry", "the last train",
             "the next bus", "our flight", "the boat")
_FRAMES = (("used to", "used to"), ("didn't use to", "didn't use to"), ("had to", "had to"), ("have to", "has to"),
           ("don't have to", "doesn't have to"), ("will have to", "will have to"), ("are about to", "is about to"),
           ("'d better", "had better"), ("'d rather", "would rather"), ("'d like to", "would like to"),
           ("'d love to", "would love to"), ("ought to", "ought to"), ("need to", "needs to"),
           ("are going to", "is going to"), ("were supposed to", "was supposed to"), ("might have to", "might have to"),
           ("wanted to", "wanted to"), ("tried to", "tried to"), ("managed to", "managed to"),
           ("forgot to", "forgot to"),
           ("can't afford to", "can't afford to"), ("'ve got to", "has got to"), ("are able to", "is able to"),
           ("shouldn't have to", "shouldn't have to"), ("may want to", "may want to"),
           ("keep trying to", "keeps trying to"))


class ConversationTemplates:
    """The everyday templates over a lexicon; `templates` pairs each with its relative weight."""

    def __init__(self, lexicon: Lexicon, phrases: PhraseSource) -> None:
        self.lexicon = lexicon
        self.phrases = phrases
        lx = lexicon
        self._objects = tuple(c for c in ("object", "food", "abstract", "place") if c in lx.verbs)
        self._doings = tuple(c for c in ("intransitive", "activity") if c in lx.verbs)
        self._count_nouns = {cls: tuple(n for n in nouns if n.plural) for cls, nouns in lx.nouns.items()}
        self._mass_nouns = {cls: tuple(n for n in nouns if not n.plural) for cls, nouns in lx.nouns.items()}
        self._separable = tuple(
            v for v in lx.verbs.get("object", ()) if v.base.count(" ") == 1 and v.base.split()[1] in _SEPARABLE
        ) or lx.verbs["object"]
        self.templates: tuple[tuple[float, Template], ...] = (
            (3.0, lambda rng: (self.clause(rng, pick(rng, CHAT_TENSES)), "statement")),
            (1.6, self._joined),
            (1.2, self._it_clause),
            (1.0, self._there_clause),
            (1.0, self._relative),
            (0.8, self._passive),
            (1.0, self._about),
            (1.4, self._numbers),
            (1.4, self._request),
            (1.8, self._question),
            (0.7, self._comparison),
            (1.2, self._opinion),
            (1.0, self._obligation),
            (0.7, self._since_ago),
            (0.8, self._reply),
            (0.7, self._weather),
            (0.5, self._body),
            (0.8, self._phrasal_pronoun),
        )

    # ----- clauses and phrases ---------------------------------------------------

    def speaker(self, rng: np.random.Generator) -> NounPhrase:
        """A subject as conversation has them: mostly pronouns, then family, then anyone."""
        draw = rng.random()
        if draw < 0.55:
            text = pick(rng, tuple(_SPEAKERS))
            return NounPhrase(text, _SPEAKERS[text])
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

    # ----- templates ------------------------------------------------------------

    def _joined(self, rng: np.random.Generator) -> tuple[list[Phrase], str]:
        """Two clauses: "I'll call you as soon as I get home", "she left early, but we stayed"."""
        tense = pick(rng, CHAT_TENSES)
        word, relation = pick(rng, _CONJUNCTIONS)
        time = "future" if tense == "going_to" else TIME_OF_TENSE[tense]
        if relation == "condition" and time == "future":
            second = "present"  # "I'll tell her when she arrives"
        elif relation == "past":
            second = "past"
        else:
            second = pick(rng, [t for t in CHAT_TENSES if t != "going_to" and TIME_OF_TENSE[t] == time])
        return [*self.clause(rng, tense), Phrase("conjunction", word), *self.clause(rng, second)], "statement"

    def _it_clause(self, rng: np.random.Generator) -> tuple[list[Phrase], str]:
        """ "it's hard to find a good dentist", "it took us an hour to get there", "it doesn't matter"."""
        tense = pick(rng, ("present", "past", "future", "present_perfect"))
        it = NounPhrase("it", "3sg")
        draw = rng.random()
        if draw < 0.4:
            cls = pick(rng, self._objects)
            verb = pick(rng, self.lexicon.verbs[cls])
            adjective = pick(rng, self.lexicon.adjectives["abstract"] + ("hard", "easy", "nice", "better"))
            return [*self.finite(rng, it, None, tense), Phrase("complement", adjective),
                    Phrase("verb", f"to {verb.base}"), Phrase("object", self.thing(rng, cls).text)], "statement"
        if draw < 0.6:
            span = f"{pick(rng, ('about', 'nearly', 'almost', 'over', 'less than', 'more than', 'at least', ''))} " \
                   f"{self._amount(rng, pick(rng, _UNITS_OF_TIME))}".strip()
            who = pick(rng, ("me", "us", "them", "him", "her", ""))
            return [*self.finite(rng, it, _TAKE, tense), Phrase("object", f"{who} {span}".strip()),
                    Phrase("verb", f"to get {self.phrases.destination(rng)}")], "statement"
        if draw < 0.8:
            verb, rest = pick(rng, (("doesn't", "matter"), ("depends", "on the weather"), ("makes", "sense"),
                                    ("looks", "like rain"), ("sounds", "good to me"), ("was", "worth it"),
                                    ("is", "up to you"), ("was", "my fault"), ("never", "happened"),
                                    ("happens", "all the time"), ("works", "fine now"), ("wasn't", "easy"),
                                    ("is", "getting late"), ("was", "nice to see you"), ("'s", "your turn"),
                                    ("was", "a long day"), ("'s", "not worth it"), ("'s", "about time")))
            subject = "it"
            if chance(rng, 0.35):  # "that's a good idea"
                subject, verb, rest = "that", pick(rng, ("'s", "was", "'s")), pick(rng, (
                    "a good idea", "not fair", "why I called", "all right", "the same thing", "all for now",
                    "what I said", "a shame", "very kind of you", "exactly what I wanted", "the other one",
                    "either yours or mine", "less than I paid", "its own fault", "both of them", "such a pity"))
            return [Phrase("subject", subject), Phrase("verb", verb), Phrase("complement", rest)], "statement"
        subject, frame = pick(rng, _OPINIONS[:12])
        return [Phrase("subject", subject), Phrase("verb", frame), *self.finite(rng, it, None, tense),
                Phrase("complement", self._adjective(rng, "abstract"))], "statement"

    def _there_clause(self, rng: np.random.Generator) -> tuple[list[Phrase], str]:
        """ "there's a lot of traffic on the road", "there weren't enough chairs", "is there any milk left?"."""
        tense = pick(rng, ("present", "present", "past", "future", "present_perfect", "modal"))
        cls = pick(rng, ("object", "food", "person", "place", "abstract"))
        thing = self.of_phrase(rng, cls) if chance(rng, 0.35) else self.phrases.noun_phrase(rng, cls, indefinite=True)
        if chance(rng, 0.25):
            aux, rest = _be_question(tense, thing.person)
            where = pick(rng, ("left", "here", "nearby", "in the fridge", "at the station", "on the way",
                               "anywhere near here", "in there", "for me", "at home"))
            return [Phrase("aux", aux), Phrase("subject", "there"), Phrase("verb", rest),
                    Phrase("complement", thing.text), Phrase("adverbial", where)], "question"
        group = be_group(tense, thing.person, chance(rng, 0.2), pick(rng, ("might", "must", "should", "could")),
                         contract=chance(rng, 0.6))
        joined = contract("there", group) if chance(rng, 0.6) else None
        where = pick(rng, (self.phrases.place(rng), "over there", "out there", "down there", "up there",
                           "in here", "everywhere", "on the way back", "in the middle of the road", "again"))
        return [Phrase("subject", "there"), Phrase("verb", joined[len("there"):].strip() if joined else group),
                Phrase("complement", thing.text), Phrase("adverbial", where)], "statement"

    def _relative(self, rng: np.random.Generator) -> tuple[list[Phrase], str]:
        """ "the woman who lives next door is a nurse", "the book that I lent you was great"."""
        tense = pick(rng, ("present", "past", "present_perfect"))
        if chance(rng, 0.5):
            head = self.phrases.noun_phrase(rng, "person")
            inner = self.clause(rng, pick(rng, ("present", "past", "present_perfect")), NounPhrase("", head.person))
            said = " ".join(p.text for p in inner if p.role not in ("subject", "adverbial"))
            who = pick(rng, ("who", "who", "that"))
        else:
            cls = pick(rng, ("object", "food", "place"))
            head = self.phrases.noun_phrase(rng, cls)
            speaker = self.speaker(rng)
            verb = pick(rng, self.lexicon.verbs[cls])
            said = f"{speaker.text} {verb_group(verb, self.phrases.tense_for(verb, 'past'), speaker.person)}"
            who = pick(rng, ("that", "which", "that"))
        if chance(rng, 0.4):
            group = be_group(tense, head.person, chance(rng, 0.15))
            rest = [Phrase("complement", self._adjective(rng, pick(rng, ("abstract", "thing"))))]
        else:
            cls = pick(rng, self._objects)
            verb = pick(rng, self.lexicon.verbs[cls])
            group = verb_group(verb, self.phrases.tense_for(verb, tense), head.person)
            rest = [Phrase("object", self.thing(rng, cls).text)]
        return [Phrase("subject", f"{head.text} {who} {said}"), Phrase("verb", group), *rest], "statement"

    def _passive(self, rng: np.random.Generator) -> tuple[list[Phrase], str]:
        """ "the bridge was built by the council", "the letters have been sent", "it'll be done by Friday"."""
        cls = pick(rng, ("object", "food", "place", "abstract"))
        verb = pick(rng, self.lexicon.verbs[cls])
        thing = self.phrases.noun_phrase(rng, cls)
        tense = pick(rng, ("present", "past", "past", "future", "present_perfect", "past_perfect", "modal"))
        modal = pick(rng, ("should", "must", "can", "might"))
        group = f"{be_group(tense, thing.person, chance(rng, 0.15), modal)} {verb.participle}"
        if tense in ("present", "past") and chance(rng, 0.2):  # "the road is being repaired"
            group = f"{be_form(tense, thing.person)} being {verb.participle}"
        draw = rng.random()
        if draw < 0.5:
            tail = f"by {self.phrases.noun_phrase(rng, 'person').text}" if chance(rng, 0.7) \
                else f"by {pick(rng, self.phrases.people)}"
        elif draw < 0.75 and TIME_OF_TENSE[tense] != "past":
            tail = f"by {pick(rng, self.lexicon.names['weekday'] + ('tomorrow', 'the end of the week', 'then'))}"
        elif draw < 0.75:
            tail = f"by {pick(rng, ('mistake', 'accident', 'the time we arrived', 'then', 'the end of the day'))}"
        else:
            tail = pick(rng, ("again", "last week", "twice", "on time", "in the end", "at last", "by hand",
                              "before lunch", "over the weekend", "during the night", "without any problems"))
        return [Phrase("subject", thing.text), Phrase("verb", group), Phrase("adverbial", tail)], "statement"

    def _about(self, rng: np.random.Generator) -> tuple[list[Phrase], str]:
        """ "what do you think about the new flat?", "we talked about it for ages", "how about a walk?"."""
        thing = self.phrases.noun_phrase(rng, pick(rng, ("abstract", "object", "place", "person", "food")))
        draw = rng.random()
        if draw < 0.3:
            wh, aux, rest = pick(rng, (("what", "do", "you think"), ("what", "did", "she say"),
                                       ("how", "do", "you feel"), ("what", "do", "you know"),
                                       ("what", "was", "it"), ("", "have", "you heard anything"),
                                       ("", "did", "they tell you anything"), ("", "are", "you worried"),
                                       ("", "are", "you sure"), ("", "is", "this")))
            opener = [Phrase("question", wh)] if wh else []
            return [*opener, Phrase("aux", aux), Phrase("verb", rest), Phrase("object", f"about {thing.text}")], \
                "question"
        if draw < 0.45:
            doing = pick(rng, ("going to", "having", "trying", "asking", "looking at", "getting"))
            return [Phrase("question", pick(rng, ("how about", "what about"))), Phrase("verb", doing),
                    Phrase("object", thing.text)], "question"
        subject = self.speaker(rng)
        tense = pick(rng, ("past", "present", "present_perfect", "present_progressive", "future", "going_to"))
        verb = pick(rng, (_TALK, _THINK, _WORRY, _COMPLAIN, _FORGET, _DREAM))
        about = pick(rng, ("about", "about", "about", "all about", "a lot about", "a bit about"))
        span = pick(rng, ("for ages", "all evening", "for a while", "again", "at first", "",
                          f"for about {self._amount(rng, pick(rng, ('minute', 'hour')))}"))
        return [*self.finite(rng, subject, verb, tense), Phrase("object", f"{about} {thing.text}"),
                Phrase("adverbial", span)], "statement"

    def _numbers(self, rng: np.random.Generator) -> tuple[list[Phrase], str]:
        """Clock times, prices, dates, ages, durations and distances, all in words."""
        names = self.lexicon.names
        draw = rng.random()
        if draw < 0.2:
            verb = pick(rng, (_START, _OPEN, _CLOSE, _LEAVE, _FINISH, _ARRIVE))
            subject = pick(rng, _JOURNEYS) if verb in (_LEAVE, _ARRIVE) else (
                pick(rng, _EVENTS) if verb in (_START, _FINISH) else self.phrases.noun_phrase(rng, "place").text)
            when = f"at {clock_words(rng)}" + pick(rng, ("", " in the morning", " tonight", " tomorrow",
                                                           " on Sundays", " every day", " at the latest"))
            group = verb_group(verb, pick(rng, ("present", "future", "past")), "3sg")
            return [Phrase("subject", subject), Phrase("verb", group), Phrase("adverbial", when)], "statement"
        if draw < 0.38:
            thing = self.phrases.noun_phrase(rng, pick(rng, ("object", "food")))
            if chance(rng, 0.4):
                aux = pick(rng, ("does" if thing.person == "3sg" else "do", "did", "will"))
                return [Phrase("question", "how much"), Phrase("aux", aux), Phrase("subject", thing.text),
                        Phrase("verb", "cost")], "question"
            group = verb_group(_COST, pick(rng, ("present", "past")), thing.person)
            return [Phrase("subject", thing.text), Phrase("verb", group), Phrase("object", self._price(rng))], \
                "statement"
        if draw < 0.55:
            subject = self.speaker(rng)
            day = f"the {ordinal_words(int(rng.integers(1, 32)))} of {pick(rng, names['month'])}"
            if chance(rng, 0.4):
                day = f"{pick(rng, names['weekday'])} the {ordinal_words(int(rng.integers(1, 32)))}"
            state = pick(rng, ("born", "married", "here", "away", "back", "free", "busy", "in town"))
            tense = "past" if state in ("born", "married") else pick(rng, ("past", "future", "present"))
            year = f" in {year_words(int(rng.integers(1940, 2030)))}" if tense == "past" and chance(rng, 0.4) else ""
            return [*self.finite(rng, subject, None, tense), Phrase("complement", state),
                    Phrase("adverbial", f"on {day}{year}")], "statement"
        if draw < 0.68:
            subject = self.speaker(rng)
            age = number_words(int(rng.integers(2, 100)))
            form = pick(rng, (age, f"{age} years old", f"nearly {age}", f"over {age}", f"{age} next month",
                              f"{age} on {pick(rng, names['weekday'])}", f"{age} in {pick(rng, names['month'])}"))
            return [*self.finite(rng, subject, None, "present"), Phrase("complement", form)], "statement"
        if draw < 0.82:
            place = self.phrases.noun_phrase(rng, "place")
            distance = self._amount(rng, pick(rng, ("mile", "minute", "hour", "metre")))
            return [Phrase("subject", place.text), Phrase("verb", be_group("present", place.person)),
                    Phrase("complement", f"{pick(rng, ('about', 'only', 'just over', 'less than'))} {distance}"),
                    Phrase("adverbial", pick(rng, ("from here", "away", "from the station", "north of the town",
                                                   "south of the river", "east of here", "west of the city",
                                                   "on foot", "by car", "by train")))], "statement"
        subject = self.speaker(rng)
        verb = pick(rng, (_WAIT, _LIVE, _WORK, _STUDY, _STAY))
        third = subject.person == "3sg"
        group = pick(rng, (f"{'has' if third else 'have'} been {verb.ing}", f"had been {verb.ing}", verb.past))
        joined = contract(subject.text, group) if chance(rng, 0.6) else None
        span = f"for {self._amount(rng, pick(rng, _UNITS_OF_TIME))}"
        where = pick(rng, ("", "here", "in this house", f"in {pick(rng, names['city'])}", "at the same place"))
        verb_text = joined[len(subject.text):].strip() if joined else group
        return [Phrase("subject", subject.text), Phrase("verb", verb_text),
                Phrase("adverbial", where), Phrase("adverbial", span)], "statement"

    def _request(self, rng: np.random.Generator) -> tuple[list[Phrase], str]:
        """ "could you pass me the salt, please?", "would you mind closing the door?", "let's go home"."""
        cls = pick(rng, ("object", "food", "object", "abstract"))
        verb = pick(rng, self.lexicon.verbs[cls])
        thing = self.thing(rng, cls).text + (", please" if chance(rng, 0.3) else "")
        if chance(rng, 0.55):
            aux, subject, prefix, form = pick(rng, _REQUESTS)
            if form == "ing" and self.phrases.tense_for(verb, "present_progressive") != "present_progressive":
                aux, subject, prefix, form = _REQUESTS[0]  # "would you mind forgetting": no -ing of a state
            if subject == "I" and chance(rng, 0.5):
                verb = pick(rng, (_HAVE, _BORROW, _USE, _TRY, _OPEN))
            return [Phrase("aux", aux), Phrase("subject", subject),
                    Phrase("verb", f"{prefix} {getattr(verb, form)}".strip()), Phrase("object", thing)], "question"
        opener = pick(rng, _COMMAND_OPENERS)
        return [Phrase("verb", f"{opener} {verb.base}"), Phrase("object", thing), *self._tail(rng, "future")], \
            "command"

    def _question(self, rng: np.random.Generator) -> tuple[list[Phrase], str]:
        """Everyday questions: have you ever, how long, set phrases, would you like to, what if."""
        subject = self.speaker(rng)
        if subject.text in ("I", "we") and chance(rng, 0.5):
            subject = NounPhrase("you", "2")
        cls = pick(rng, self._objects)
        verb = pick(rng, self.lexicon.verbs[cls])
        draw = rng.random()
        if draw < 0.25:
            tense = pick(rng, ("present_perfect", "present_perfect", "past", "present", "past_perfect"))
            aux, form = auxiliary(self.phrases.tense_for(verb, tense), subject.person)
            ever = pick(rng, ("ever", "ever", "already", "just", "really", "")) if "perfect" in tense else ""
            return [Phrase("aux", aux), Phrase("subject", subject.text),
                    Phrase("verb", f"{ever} {getattr(verb, form)}".strip()),
                    Phrase("object", self.thing(rng, cls).text), *self._tail(rng, tense)], "question"
        if draw < 0.5:
            wh = pick(rng, _QUESTION_WORDS)
            tense = pick(rng, ("present", "past", "present_perfect", "future", "modal"))
            aux, form = auxiliary(self.phrases.tense_for(verb, tense), subject.person,
                                  pick(rng, ("can", "should", "could", "would")))
            return [Phrase("question", wh), Phrase("aux", aux), Phrase("subject", subject.text),
                    Phrase("verb", getattr(verb, form)), Phrase("object", self.thing(rng, cls).text)], "question"
        if draw < 0.7:
            wh, verb_text, rest = pick(rng, _SET_QUESTIONS)
            place = self.phrases.noun_phrase(rng, "place")
            rest = (rest.replace("PLACE_NOUN", pick(rng, self.lexicon.nouns["place"]).singular)
                    .replace("PLACE", place.text).replace("PERSON", self.phrases.object(rng, "person", "2").text)
                    .replace("CITY", pick(rng, self.lexicon.names["city"])))
            return [Phrase("question", wh), Phrase("verb", verb_text), Phrase("complement", rest)], "question"
        if draw < 0.85:
            aux, subject_text, verb_text = pick(rng, (
                ("do", "you", "want to"), ("did", "you", "remember to"), ("would", "you", "like to"),
                ("are", "you", "going to"), ("will", "you", "be able to"), ("have", "you", "got time to"),
                ("did", "you", "manage to"), ("do", "we", "need to"), ("is", "it", "too late to"),
                ("was", "it", "hard to"), ("should", "I", "try to"), ("shall", "we", "")))
            return [Phrase("aux", aux), Phrase("subject", subject_text),
                    Phrase("verb", f"{verb_text} {verb.base}".strip()), Phrase("object", self.thing(rng, cls).text),
                    *self._tail(rng, "future")], "question"
        aux, subject_text, verb_text = pick(rng, (
            ("is", "it", "all right if"), ("do", "you", "mind if"), ("would", "it", "be okay if"),
            ("", "what", "if"), ("", "what", "happens if"), ("is", "it", "true that"), ("do", "you", "know if"),
            ("do", "you", "know whether"), ("have", "you", "noticed that"), ("did", "you", "hear that")))
        head = [Phrase("question", subject_text), Phrase("verb", verb_text)] if not aux else [
            Phrase("aux", aux), Phrase("subject", subject_text), Phrase("verb", verb_text)]
        return [*head, *self.clause(rng, pick(rng, ("present", "past", "present_perfect")))], "question"

    def _comparison(self, rng: np.random.Generator) -> tuple[list[Phrase], str]:
        """ "the new flat is much bigger than the old one", "it was the best meal I've ever had"."""
        cls = pick(rng, ("object", "food", "place", "person"))
        thing = self.phrases.noun_phrase(rng, cls)
        adjectives = self.lexicon.adjectives[{"object": "thing"}.get(cls, cls)]
        adjective = pick(rng, adjectives + ("good", "bad", "far", "nice", "cheap", "big", "small", "easy", "hard"))
        more, most = comparative(adjective)
        group = be_group(pick(rng, ("present", "past", "present_perfect", "future")), thing.person)
        draw = rng.random()
        if draw < 0.4:
            other = pick(rng, ("the old one", "I thought", "it used to be", "last year", "ever", "before", "usual",
                               "the others", "mine", "yours", "hers", "ours", "theirs", "we expected",
                               self.phrases.noun_phrase(rng, cls).text))
            degree = pick(rng, ("much ", "a lot ", "a bit ", "even ", "far ", "slightly ", "no ", "", ""))
            complement = f"{degree}{more} than {other}"
        elif draw < 0.7:
            noun = pick(rng, self.lexicon.nouns[cls]).singular
            after = pick(rng, ("I've ever seen", "in the world", "in town", "we've ever had", "of all", "I know",
                               "in the whole country", "of the year", "so far", "on the list"))
            complement = f"the {most} {noun} {after}"
        else:
            degree = pick(rng, ("just as", "not as", "nearly as", "twice as", "as", "not quite as"))
            complement = f"{degree} {adjective} as " + pick(rng, ("the old one", "before", "I remember", "it looks",
                                                                   "ever", "yours", "mine", "we hoped"))
        return [Phrase("subject", thing.text), Phrase("verb", group), Phrase("complement", complement)], "statement"

    def _opinion(self, rng: np.random.Generator) -> tuple[list[Phrase], str]:
        """ "I think that ...", "I'm not sure if ...", "did you know that ...?": a frame and a clause."""
        inner = self.clause(rng, pick(rng, CHAT_TENSES))
        that = pick(rng, ("that", "", ""))
        if chance(rng, 0.2):
            aux, rest = pick(rng, _ASKING)
            subject, _, verb = rest.partition(" ")
            return [Phrase("aux", aux), Phrase("subject", subject), Phrase("verb", verb),
                    Phrase("conjunction", that), *inner], "question"
        subject, verb = pick(rng, _OPINIONS)
        if verb.endswith(("if", "whether", "why", "how")):
            that = ""
        return [Phrase("subject", subject), Phrase("verb", verb), Phrase("conjunction", that), *inner], "statement"

    def _obligation(self, rng: np.random.Generator) -> tuple[list[Phrase], str]:
        """ "we have to leave by eight", "I used to live in Leeds", "she had to wait", "I'd rather stay in"."""
        subject = self.speaker(rng)
        cls = pick(rng, self._objects)
        verb = pick(rng, self.lexicon.verbs[cls])
        plain, third = pick(rng, _FRAMES)
        frame = third if subject.person == "3sg" else plain
        if subject.text == "I":
            frame = frame.replace("are ", "am ", 1).replace("were ", "was ", 1)
        if frame.startswith("'") and subject.text not in _SPEAKERS:
            frame = {"'d": "would", "'ve": "have"}[frame.split()[0]] + frame[frame.index(" "):]
        return [Phrase("subject", subject.text), Phrase("verb", f"{frame} {verb.base}"),
                Phrase("object", self.thing(rng, cls).text), *self._tail(rng, "present")], "statement"

    def _since_ago(self, rng: np.random.Generator) -> tuple[list[Phrase], str]:
        """ "I haven't seen her since Christmas", "they moved here ten years ago"."""
        subject = self.speaker(rng)
        verb = pick(rng, self.lexicon.verbs["person"])
        other = self.phrases.object(rng, "person", subject.person)
        names = self.lexicon.names
        if chance(rng, 0.5):
            since = pick(rng, (f"since {pick(rng, names['weekday'])}", "since last year", "since we were kids",
                               f"since {pick(rng, names.get('holiday') or names['month'])}", "since the summer",
                               "since the wedding", "since we left school", "for ages", "for a long time",
                               f"since {year_words(int(rng.integers(1980, 2025)))}",
                               f"since {pick(rng, names['month'])}"))
            return [*self.finite(rng, subject, verb, "present_perfect", chance(rng, 0.6)),
                    Phrase("object", other.text), Phrase("adverbial", since)], "statement"
        ago = f"{self._amount(rng, pick(rng, _UNITS_OF_TIME))} ago"
        ago = pick(rng, (ago, ago, "a long time ago", "not long ago", "a while ago", "ages ago"))
        return [*self.finite(rng, subject, verb, "past"), Phrase("object", other.text),
                Phrase("adverbial", ago)], "statement"

    def _reply(self, rng: np.random.Generator) -> tuple[list[Phrase], str]:
        """A reply opener and a clause: "no, thanks, I've just eaten", "oh, I didn't know that"."""
        return [Phrase("adverbial", pick(rng, _REPLIES)), *self.clause(rng, pick(rng, CHAT_TENSES))], "statement"

    def _weather(self, rng: np.random.Generator) -> tuple[list[Phrase], str]:
        """ "it's raining again", "it was cold and windy all day", "the snow has stopped"."""
        it = NounPhrase("it", "3sg")
        weather = self.lexicon.nouns.get("weather", ())
        tense = pick(rng, ("present", "past", "future", "present_progressive", "past_progressive", "present_perfect"))
        draw = rng.random()
        if draw < 0.4 or not weather:
            kind = pick(rng, ("cold", "hot", "warm", "sunny", "windy", "cloudy", "foggy", "wet", "dry", "freezing",
                              "lovely", "miserable", "chilly", "humid", "mild", "stormy", "icy"))
            if chance(rng, 0.3):
                kind += f" and {pick(rng, ('windy', 'wet', 'dark', 'grey', 'bright', 'cold', 'sunny'))}"
            return [*self.finite(rng, it, None, tense), Phrase("complement", kind),
                    Phrase("adverbial", self.phrases.time(rng, tense))], "statement"
        if draw < 0.6:
            return [*self.finite(rng, it, pick(rng, (_RAIN, _SNOW)), tense),
                    Phrase("adverbial", pick(rng, ("all day", "again", "all night", "heavily", "a lot", "since lunch",
                                                   "this morning", "for hours", "on and off")))], "statement"
        subject = NounPhrase(f"the {pick(rng, weather).singular}", "3sg")
        verb = pick(rng, (_STOP, _START, _GET_WORSE, _CLEAR_UP))
        return [*self.finite(rng, subject, verb, pick(rng, ("past", "present_perfect", "future"))),
                Phrase("adverbial", pick(rng, ("at last", "by lunchtime", "overnight", "soon", "again", "",
                                               "in the afternoon")))], "statement"

    def _body(self, rng: np.random.Generator) -> tuple[list[Phrase], str]:
        """ "my back hurts", "she broke her arm", "his knees ache when he walks"."""
        part = pick(rng, self.lexicon.nouns.get("body") or self.lexicon.nouns["object"])
        subject = self.speaker(rng)
        owner = {"I": "my", "you": "your", "we": "our", "they": "their", "he": "his", "she": "her"}.get(
            subject.text, "their" if subject.person == "3pl" else pick(rng, ("his", "her")))
        illness = self.lexicon.nouns.get("illness")
        if illness and chance(rng, 0.3):
            ill = pick(rng, illness)
            have = pick(rng, (_HAVE, _GET, _CATCH))
            return [*self.finite(rng, subject, have, pick(rng, ("present", "past", "present_perfect"))),
                    Phrase("object", with_article(ill.singular) if ill.plural else f"the {ill.singular}"),
                    *self._tail(rng, "past")], "statement"
        if chance(rng, 0.5):
            verb = pick(rng, (_HURT, _BREAK, _CUT, _WASH, _INJURE, _HIT))
            return [*self.finite(rng, subject, verb, pick(rng, ("past", "present_perfect", "past_perfect"))),
                    Phrase("object", f"{owner} {part.singular}"), *self._tail(rng, "past")], "statement"
        plural = part.plural is not None and chance(rng, 0.3)
        body = NounPhrase(f"{owner} {part.plural if plural else part.singular}", "3pl" if plural else "3sg")
        verb = pick(rng, (_HURT, _ACHE, _ITCH))
        return [*self.finite(rng, body, verb, pick(rng, ("present", "present_progressive", "past", "present_perfect"))),
                Phrase("adverbial", pick(rng, ("a lot", "a bit", "all day", "again", "since yesterday", "",
                                               "when I walk", "at night")))], "statement"

    def _phrasal_pronoun(self, rng: np.random.Generator) -> tuple[list[Phrase], str]:
        """A separable phrasal verb around a pronoun: "turn it off", "I put them away"."""
        verb = pick(rng, self._separable)
        head, _, particle = verb.base.partition(" ")
        pronoun = pick(rng, ("it", "it", "them", "this", "that", "everything"))
        if chance(rng, 0.4):
            opener = pick(rng, ("", "please", "just", "don't", "can you", "could you"))
            if opener.endswith("you"):
                aux, subject = opener.split()
                return [Phrase("aux", aux), Phrase("subject", subject), Phrase("verb", head),
                        Phrase("object", f"{pronoun} {particle}")], "question"
            return [Phrase("verb", f"{opener} {head}".strip()), Phrase("object", f"{pronoun} {particle}"),
                    *self._tail(rng, "future")], "command"
        tense = pick(rng, CHAT_TENSES)
        phrases = self.finite(rng, self.speaker(rng), verb, tense, chance(rng, 0.15))
        group = phrases[-1].text.removesuffix(f" {particle}")
        return [*phrases[:-1], Phrase("verb", group), Phrase("object", f"{pronoun} {particle}"),
                *self._tail(rng, tense)], "statement"


def _be_question(tense: str, person: str) -> tuple[str, str]:
    """ "Is there ...?" ("is", ""), "Will there be ...?" ("will", "be"), "Has there been ...?"."""
    if tense in ("present", "past"):
        return be_form(tense, person), ""
    aux, form = auxiliary(tense, person, "can")
    return aux, {"base": "be", "participle": "been", "ing": "being"}[form]
