"""Everyday exchanges: requests, questions, opinions and replies (templates of asr.synth.conversation).

"could you pass me the salt, please?", "have you ever been to Rome?", "what do
you think about the new flat?", "I guess it's fine", "oh, we stayed at home".
"""

from __future__ import annotations

import numpy as np

from asr.synth.conversation_phrases import CHAT_TENSES, HAVE, OPEN, OPINIONS, ConversationPhrases
from asr.synth.english import NounPhrase, Phrase, auxiliary, chance, pick
from asr.synth.lexicon import make_verb

# Verbs these templates name themselves.
_TALK, _THINK, _WORRY = make_verb("talk"), make_verb("think", "thought", "thought"), make_verb("worry")
_COMPLAIN, _FORGET = make_verb("complain"), make_verb("forget", "forgot", "forgotten", ing="forgetting")
_DREAM, _BORROW, _USE, _TRY = make_verb("dream", "dreamt"), make_verb("borrow"), make_verb("use"), make_verb("try")
_REPLIES = ("yes,", "no,", "oh,", "well,", "sorry,", "thanks,", "okay,", "right,", "of course,", "no thanks,",
            "thank you,", "excuse me,", "hang on,", "look,", "listen,", "oh dear,", "all right,", "anyway,",
            "by the way,", "to be honest,", "in fact,", "so,", "hello,", "good morning,", "good night,", "bye,",
            "please,", "oh no,", "never mind,", "fair enough,", "great,", "lovely,", "I see,", "wait,")
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


class ExchangeTemplates(ConversationPhrases):
    """The exchange templates; asr.synth.conversation.ConversationTemplates weighs them with the others."""

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
                verb = pick(rng, (HAVE, _BORROW, _USE, _TRY, OPEN))
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

    def _opinion(self, rng: np.random.Generator) -> tuple[list[Phrase], str]:
        """ "I think that ...", "I'm not sure if ...", "did you know that ...?": a frame and a clause."""
        inner = self.clause(rng, pick(rng, CHAT_TENSES))
        that = pick(rng, ("that", "", ""))
        if chance(rng, 0.2):
            aux, rest = pick(rng, _ASKING)
            subject, _, verb = rest.partition(" ")
            return [Phrase("aux", aux), Phrase("subject", subject), Phrase("verb", verb),
                    Phrase("conjunction", that), *inner], "question"
        subject, verb = pick(rng, OPINIONS)
        if verb.endswith(("if", "whether", "why", "how")):
            that = ""
        return [Phrase("subject", subject), Phrase("verb", verb), Phrase("conjunction", that), *inner], "statement"

    def _reply(self, rng: np.random.Generator) -> tuple[list[Phrase], str]:
        """A reply opener and a clause: "no, thanks, I've just eaten", "oh, I didn't know that"."""
        return [Phrase("adverbial", pick(rng, _REPLIES)), *self.clause(rng, pick(rng, CHAT_TENSES))], "statement"
