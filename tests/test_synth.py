from __future__ import annotations

import argparse
import json
import re
from pathlib import Path

import numpy as np
import pytest
import soundfile

import asr.librispeech as librispeech
from asr.errors import DataError
from asr.manifest import Utterance
from asr.synth import generate_corpus, run_synth_command
from asr.synth.corpus import MIN_UTTERANCES, SUBSETS, text_subset
from asr.synth.lexicon import load_lexicon, make_verb, past_of, plural_of, third_person_of
from asr.synth.sentences import (
    MAX_WORDS, MIN_WORDS, SentenceGenerator, be_group, number_words, verb_group, with_article, year_words,
)
from asr.synth.voices import ALL_VOICES, select_voices
from asr.text import normalize_transcript

VOICES = ["espeak:en-us+m1", "flite:slt", "espeak:en-us+m7", "flite:rms"]  # two seen, two held out
HOURS = 0.015


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, list[Utterance]]]:
    out = tmp_path_factory.mktemp("synth") / "corpus"
    return out, generate_corpus(out, HOURS, seed=3, voices=VOICES, workers=1)


# ----- corpus -------------------------------------------------------------


def test_layout_is_librispeech(corpus: tuple[Path, dict[str, list[Utterance]]]) -> None:
    out, result = corpus
    assert sorted(p.name for p in (out / "LibriSpeech").iterdir()) == sorted(SUBSETS)
    assert sorted(p.name for p in out.iterdir()) == ["LibriSpeech", "corpus.json"]  # staging removed
    for subset in SUBSETS:
        flacs = sorted((out / "LibriSpeech" / subset).glob("*/*/*.flac"))
        assert len(flacs) == len(result[subset]) >= MIN_UTTERANCES
        for flac in flacs:
            speaker, chapter = flac.parent.parent.name, flac.parent.name
            assert re.fullmatch(rf"{speaker}-{chapter}-\d{{4}}\.flac", flac.name)
            info = soundfile.info(str(flac))
            assert (info.samplerate, info.channels, info.format) == (16000, 1, "FLAC")
            assert 1.0 <= info.duration <= 15.0
        for transcript in (out / "LibriSpeech" / subset).glob("*/*/*.trans.txt"):
            speaker, chapter = transcript.parent.parent.name, transcript.parent.name
            assert transcript.name == f"{speaker}-{chapter}.trans.txt"
            for line in transcript.read_text().splitlines():
                utterance_id, text = line.split(" ", 1)
                assert (transcript.parent / f"{utterance_id}.flac").is_file()
                assert text == normalize_transcript(text) and text


def test_hours_are_split_by_share(corpus: tuple[Path, dict[str, list[Utterance]]]) -> None:
    _, result = corpus
    hours = {subset: sum(u.duration for u in utterances) / 3600 for subset, utterances in result.items()}
    assert HOURS * 0.8 <= hours["synth-train"] < HOURS * 0.8 + 15 / 3600
    assert hours["synth-train"] > max(hours["synth-dev"], hours["synth-test"], hours["synth-test-voice"])
    info = json.loads((corpus[0] / "corpus.json").read_text())
    assert info["request"] == {"hours": HOURS, "seed": 3, "voices": VOICES}
    assert info["subsets"]["synth-train"]["utterances"] == len(result["synth-train"])


def test_test_sentences_never_in_train(corpus: tuple[Path, dict[str, list[Utterance]]]) -> None:
    _, result = corpus
    texts = {subset: [u.text for u in utterances] for subset, utterances in result.items()}
    for subset, subset_texts in texts.items():
        assert len(set(subset_texts)) == len(subset_texts), f"{subset} repeats a sentence"
        assert all(text_subset(text) == subset for text in subset_texts)
    train = set(texts["synth-train"])
    for subset in ("synth-dev", "synth-test", "synth-test-voice"):
        assert not train & set(texts[subset])


def test_held_out_voices_only_in_test_voice(corpus: tuple[Path, dict[str, list[Utterance]]]) -> None:
    _, result = corpus
    ids = {voice.name: str(voice.speaker_id) for voice in ALL_VOICES}
    held_out = {ids["espeak:en-us+m7"], ids["flite:rms"]}
    assert {u.speaker for u in result["synth-test-voice"]} == held_out
    for subset in ("synth-train", "synth-dev", "synth-test"):
        assert {u.speaker for u in result[subset]} <= {ids["espeak:en-us+m1"], ids["flite:slt"]}
    assert {u.speaker for u in result["synth-train"]} == {ids["espeak:en-us+m1"], ids["flite:slt"]}


def test_reader_reads_synth_output_from_its_cache(
    corpus: tuple[Path, dict[str, list[Utterance]]], monkeypatch: pytest.MonkeyPatch
) -> None:
    out, result = corpus

    def fail(path: object) -> float:
        raise AssertionError("synth should have left a current manifest cache")

    monkeypatch.setattr(librispeech, "duration_seconds", fail)
    for subset in SUBSETS:
        assert librispeech.load_subset(out, subset) == result[subset]
    monkeypatch.undo()
    rebuilt = librispeech.load_subset(out, "synth-test", cache=False)  # from the files themselves
    assert [(u.id, u.text, u.speaker) for u in rebuilt] == [(u.id, u.text, u.speaker) for u in result["synth-test"]]
    assert np.allclose([u.duration for u in rebuilt], [u.duration for u in result["synth-test"]])


def test_same_seed_same_corpus_with_any_worker_count(
    corpus: tuple[Path, dict[str, list[Utterance]]], tmp_path: Path
) -> None:
    out, result = corpus
    again = generate_corpus(tmp_path / "again", HOURS, seed=3, voices=VOICES, workers=2)
    for subset in SUBSETS:
        assert [(u.id, u.text, u.duration) for u in again[subset]] == [
            (u.id, u.text, u.duration) for u in result[subset]
        ]
    for first in sorted((out / "LibriSpeech").rglob("*.*")):
        if first.suffix in (".flac", ".txt"):
            second = tmp_path / "again" / first.relative_to(out)
            assert first.read_bytes() == second.read_bytes(), first.name


def test_other_seed_other_sentences(tmp_path: Path) -> None:
    one = generate_corpus(tmp_path / "a", 0.002, seed=1, voices=VOICES, workers=1)
    two = generate_corpus(tmp_path / "b", 0.002, seed=2, voices=VOICES, workers=1)
    assert [u.text for u in one["synth-train"]] != [u.text for u in two["synth-train"]]


def test_rerun_reuses_or_refuses(corpus: tuple[Path, dict[str, list[Utterance]]]) -> None:
    out, result = corpus
    assert generate_corpus(out, HOURS, seed=3, voices=VOICES) == result
    with pytest.raises(DataError, match="already holds a synthetic corpus"):
        generate_corpus(out, HOURS, seed=4, voices=VOICES)


def test_interrupted_corpus_is_refused(tmp_path: Path) -> None:
    (tmp_path / "LibriSpeech" / "synth-train").mkdir(parents=True)
    with pytest.raises(DataError, match="interrupted run"):
        generate_corpus(tmp_path, 0.01, voices=VOICES, workers=1)


def test_unknown_voice_lists_known_ones() -> None:
    with pytest.raises(DataError, match=r"unknown voice\(s\) espeak:nope; known voices: espeak:en-us\+m1"):
        select_voices(["espeak:nope"])


def test_voices_need_seen_and_held_out(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="no held-out voice among them"):
        generate_corpus(tmp_path, 0.01, voices=["espeak:en-us+m1"], workers=1)


def test_held_out_set_covers_both_engines() -> None:
    engines = {voice.engine for voice in ALL_VOICES if voice.held_out}
    assert engines == {"espeak-ng", "flite"}
    assert len({voice.speaker_id for voice in ALL_VOICES}) == len(ALL_VOICES)


def test_command_lists_voices(capsys: pytest.CaptureFixture[str]) -> None:
    args = argparse.Namespace(out=Path("unused"), hours=1.0, seed=0, voices=None, list_voices=True, workers=None)
    assert run_synth_command(args) == 0
    listing = capsys.readouterr().out
    assert "flite:rms" in listing and "held out: synth-test-voice only" in listing


def test_bad_hours(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="--hours must be positive"):
        generate_corpus(tmp_path, 0.0)


# ----- sentences ----------------------------------------------------------


@pytest.fixture(scope="module")
def sentences() -> list:
    generator = SentenceGenerator()
    return [generator.generate(np.random.default_rng([7, i])) for i in range(8000)]


def test_vocabulary_is_large(sentences: list) -> None:
    vocabulary = {word for sentence in sentences for word in sentence.transcript.split()}
    assert len(vocabulary) >= 3000


def test_sentences_are_deterministic() -> None:
    generator = SentenceGenerator()
    first = [generator.generate(np.random.default_rng([5, i])).text for i in range(20)]
    assert first == [generator.generate(np.random.default_rng([5, i])).text for i in range(20)]
    assert len(set(first)) == 20


def test_sentences_have_sentence_structure(sentences: list) -> None:
    kinds = {sentence.kind for sentence in sentences}
    assert kinds == {"statement", "question", "command"}
    for sentence in sentences:
        roles = [phrase.role for phrase in sentence.phrases]
        assert sentence.text[0].isupper() and sentence.text[-1] == ("?" if sentence.kind == "question" else ".")
        assert MIN_WORDS <= len(sentence.transcript.split()) <= MAX_WORDS
        assert "verb" in roles or "aux" in roles, sentence.text
        if sentence.kind == "command":
            assert roles[0] == "verb", sentence.text
        elif sentence.kind == "question":
            assert roles[0] in ("aux", "question"), sentence.text
        else:
            for clause in _clauses(roles):  # every clause: a subject, then its verb
                assert "subject" in clause and "verb" in clause[clause.index("subject"):], sentence.text


def test_stative_verbs_are_never_progressive(sentences: list) -> None:
    progressive = {verb.ing for verb in load_lexicon().verbs["stative"]}  # "liking", "knowing", ...
    for sentence in sentences:
        assert not progressive & set(sentence.text.lower().rstrip(".?").split()), sentence.text


def _clauses(roles: list[str]) -> list[list[str]]:
    clauses: list[list[str]] = [[]]
    for role in roles:
        if role == "conjunction":
            clauses.append([])
        else:
            clauses[-1].append(role)
    return [clause for clause in clauses if clause]


def test_agreement_and_tense() -> None:
    walk, go = make_verb("walk"), make_verb("go", "went", "gone")
    assert verb_group(walk, "present", "3sg") == "walks"
    assert verb_group(walk, "present", "3pl") == "walk"
    assert verb_group(go, "past", "1sg") == "went"
    assert verb_group(go, "present", "3sg", negative=True, contract=True) == "doesn't go"
    assert verb_group(go, "present_perfect", "3sg") == "has gone"
    assert verb_group(go, "past_progressive", "3pl", negative=True) == "were not going"
    assert verb_group(go, "modal", "1sg", negative=True, modal="can") == "cannot go"
    assert verb_group(go, "future", "2", negative=True, contract=True) == "won't go"
    assert be_group("present", "1sg") == "am"
    assert be_group("past", "3pl", negative=True, contract=True) == "weren't"
    assert be_group("present_perfect", "3sg") == "has been"


def test_morphology_rules() -> None:
    assert [plural_of(w) for w in ("box", "city", "day", "piano", "church")] == [
        "boxes", "cities", "days", "pianos", "churches"
    ]
    assert [third_person_of(w) for w in ("go", "carry", "wash", "play")] == ["goes", "carries", "washes", "plays"]
    assert [past_of(w) for w in ("like", "carry", "play", "walk")] == ["liked", "carried", "played", "walked"]
    assert [make_verb(w).ing for w in ("make", "see", "lie", "sit", "visit", "fix")] == [
        "making", "seeing", "lying", "sitting", "visiting", "fixing"
    ]
    assert make_verb("stop", "stopped").ing == "stopping"


def test_numbers_and_articles() -> None:
    assert number_words(0) == "zero"
    assert number_words(42) == "forty two"
    assert number_words(105) == "one hundred and five"
    assert number_words(2030) == "two thousand and thirty"
    assert year_words(1984) == "nineteen eighty four"
    assert year_words(1905) == "nineteen oh five"
    assert year_words(2007) == "two thousand and seven"
    assert year_words(2024) == "twenty twenty four"
    assert [with_article(w) for w in ("apple", "pear", "hour", "university")] == [
        "an apple", "a pear", "an hour", "a university"
    ]


def test_lexicon_errors_name_the_line(tmp_path: Path) -> None:
    bad = tmp_path / "lexicon.txt"
    bad.write_text("[noun food]\napple\napple\n")
    with pytest.raises(DataError, match=r"lexicon.txt:3: 'apple' is listed twice"):
        load_lexicon(bad)
    bad.write_text("apple\n")
    with pytest.raises(DataError, match=r"lexicon.txt:1: entry 'apple' before any"):
        load_lexicon(bad)
    bad.write_text("[verb motion]\ngo/went/gone/goes/going/extra\n")
    with pytest.raises(DataError, match=r"lexicon.txt:2: 'go/went/gone/goes/going/extra' has a bad form list"):
        load_lexicon(bad)
