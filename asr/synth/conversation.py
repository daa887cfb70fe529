"""Everyday conversation: the second template family of asr.synth.sentences.

The descriptive grammar (asr.synth.sentences) says who did what to whom; it
never says "of", "it", "had", "by", "out", "down" or "again", which carry a
large share of spoken English. These templates are the constructions people
use in conversation, home, work, shops and travel: contractions ("I'm", "we've",
"she'd"), phrasal verbs with a pronoun inside ("turn it off"), of-phrases ("a lot
of", "the end of the week"), it- and there-clauses, relative clauses with who /
which / that, passives with by, perfect and past perfect with just / already /
still, requests, everyday questions, comparisons, prices, clock times, dates,
durations and distances in words. The clauses and phrases they combine are
asr.synth.conversation_phrases; requests, questions, opinions and replies are
asr.synth.conversation_exchanges.

Every random choice comes from the numpy Generator passed in. Each template
returns (phrases, kind) like the descriptive ones: every clause of a
statement is a subject, then a verb; questions open with an auxiliary or a
wh-word; commands with a verb.
"""

from __future__ import annotations

import numpy as np

from asr.synth.conversation_exchanges import ExchangeTemplates
from asr.synth.conversation_phrases import CHAT_TENSES, HAVE, OPEN, OPINIONS, SPEAKERS, PhraseSource, Template
from asr.synth.english import (
    TIME_OF_TENSE, NounPhrase, Phrase, auxiliary, be_form, be_group, chance, clock_words, comparative, contract,
    number_words, ordinal_words, pick, verb_group, with_article, year_words,
)
from asr.synth.lexicon import Lexicon, make_verb, with_particles

# Verbs these templates name themselves (the lexicon's classes do not say which verb means "cost").
_TAKE, _COST = make_verb("take", "took", "taken"), make_verb("cost", "cost", "cost")
_START, _CLOSE = make_verb("start"), make_verb("close")
_LEAVE, _FINISH = make_verb("leave", "left", "left"), make_verb("finish")
_ARRIVE, _WAIT, _LIVE, _WORK = make_verb("arrive"), make_verb("wait"), make_verb("live"), make_verb("work")
_STUDY, _STAY = make_verb("study"), make_verb("stay")
_RAIN, _SNOW, _STOP = make_verb("rain"), make_verb("snow"), make_verb("stop", "stopped")
_GET_WORSE = with_particles(make_verb("get", "got", "got"), "worse")
_CLEAR_UP = with_particles(make_verb("clear"), "up")
_HURT, _BREAK = make_verb("hurt", "hurt", "hurt"), make_verb("break", "broke", "broken")
_CUT = make_verb("cut", "cut", "cut")
_WASH, _INJURE, _HIT = make_verb("wash"), make_verb("injure"), make_verb("hit", "hit", "hit")
_ACHE, _ITCH = make_verb("ache"), make_verb("itch")
_GET, _CATCH = make_verb("get", "got", "got"), make_verb("catch", "caught", "caught")
_CONJUNCTIONS = ((", and", "same"), (", but", "same"), (", so", "same"), ("because", "same"), ("so that", "same"),
                 ("if", "condition"), ("when", "condition"), ("as soon as", "condition"), ("unless", "condition"),
                 ("until", "condition"), ("before", "condition"), ("after", "condition"), ("while", "same"),
                 ("although", "same"), ("even though", "same"), ("in case", "condition"), ("since", "past"),
                 ("as", "same"), (", or", "same"), ("whereas", "same"), ("once", "condition"))
_UNITS_OF_TIME = ("minute", "hour", "day", "week", "month", "year")
_SEPARABLE = frozenset(("up", "down", "off", "on", "away", "back", "in", "over", "out"))
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


class ConversationTemplates(ExchangeTemplates):
    """The everyday templates over a lexicon; `templates` pairs each with its relative weight."""

    def __init__(self, lexicon: Lexicon, phrases: PhraseSource) -> None:
        super().__init__(lexicon, phrases)
        self._separable = tuple(
            v for v in lexicon.verbs.get("object", ()) if v.base.count(" ") == 1 and v.base.split()[1] in _SEPARABLE
        ) or lexicon.verbs["object"]
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
        subject, frame = pick(rng, OPINIONS[:12])
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

    def _numbers(self, rng: np.random.Generator) -> tuple[list[Phrase], str]:
        """Clock times, prices, dates, ages, durations and distances, all in words."""
        names = self.lexicon.names
        draw = rng.random()
        if draw < 0.2:
            verb = pick(rng, (_START, OPEN, _CLOSE, _LEAVE, _FINISH, _ARRIVE))
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

    def _obligation(self, rng: np.random.Generator) -> tuple[list[Phrase], str]:
        """ "we have to leave by eight", "I used to live in Leeds", "she had to wait", "I'd rather stay in"."""
        subject = self.speaker(rng)
        cls = pick(rng, self._objects)
        verb = pick(rng, self.lexicon.verbs[cls])
        plain, third = pick(rng, _FRAMES)
        frame = third if subject.person == "3sg" else plain
        if subject.text == "I":
            frame = frame.replace("are ", "am ", 1).replace("were ", "was ", 1)
        if frame.startswith("'") and subject.text not in SPEAKERS:
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
            have = pick(rng, (HAVE, _GET, _CATCH))
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
