from __future__ import annotations

import argparse
import json
import math
import os
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile

from asr.audio import SAMPLE_RATE
import asr.corpus.librispeech as librispeech
from asr.corpus.manifest import Utterance
from asr.errors import DataError
from asr.synth import generate_corpus, run_synth_command
import asr.synth.corpus as synth_corpus
from asr.synth.corpus import (
    CORPUS_FORMAT, EVERYDAY_FILES, MIN_UTTERANCES, SHARES, SUBSETS, OlderCorpusError, _plan, text_subset,
)
from asr.synth.everyday import EVERYDAY_DEV_PATH, load_everyday
from asr.synth.lexicon import load_lexicon, make_verb, past_of, plural_of, third_person_of
from asr.synth.sentences import (
    MAX_WORDS, MIN_WORDS, SentenceGenerator, be_group, number_words, verb_group, with_article, year_words,
)
import asr.synth.voices as synth_voices
from asr.synth.voices import (
    ALL_VOICES, ESPEAK, EXTRA_PACKAGES, FESTIVAL, FLITE, PICO, Style, Voice, select_voices, speak, voice_cycle,
)
from asr.text import normalize_transcript

BASIC_VOICES = ["espeak:en-us+m1", "flite:slt", "espeak:en-us+m7", "flite:rms"]  # two seen, two held out
VOICES = [*BASIC_VOICES, "festival:kal_diphone", "festival:ked_diphone"]  # and festival: one seen, one held out
HOURS = 0.015
# `make setup` installs festival, so CI runs these; the mark only spares a bare machine.
needs_festival = pytest.mark.skipif(
    shutil.which("text2wave") is None,
    reason="festival is not installed: apt-get install festival festvox-kallpc16k festvox-kdlpc16k "
    "festvox-us-slt-hts (make setup does)",
)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, list[Utterance]]]:
    if shutil.which("text2wave") is None:
        pytest.skip("festival is not installed: apt-get install festival festvox-kallpc16k festvox-kdlpc16k")
    out = tmp_path_factory.mktemp("synth") / "corpus"
    return out, generate_corpus(out, HOURS, seed=3, voices=VOICES, workers=1)


def _speaker(name: str) -> str:
    return next(str(voice.speaker_id) for voice in ALL_VOICES if voice.name == name)


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
    train_share = HOURS * SHARES["synth-train"]
    assert train_share <= hours["synth-train"] < train_share + 15 / 3600
    assert hours["synth-train"] > max(hours[subset] for subset in SUBSETS[1:])
    info = json.loads((corpus[0] / "corpus.json").read_text())
    assert info["request"] == {"hours": HOURS, "seed": 3, "voices": VOICES, "format": CORPUS_FORMAT}
    assert list(info["subsets"]) == list(SUBSETS)
    assert info["subsets"]["synth-train"]["utterances"] == len(result["synth-train"])


def test_test_sentences_never_in_train(corpus: tuple[Path, dict[str, list[Utterance]]]) -> None:
    _, result = corpus
    texts = {subset: [u.text for u in utterances] for subset, utterances in result.items()}
    for subset, subset_texts in texts.items():
        assert len(set(subset_texts)) == len(subset_texts), f"{subset} repeats a sentence"
        if subset not in EVERYDAY_FILES:
            assert all(text_subset(text) == subset for text in subset_texts)
    train = set(texts["synth-train"])
    for subset in SUBSETS[1:]:
        assert not train & set(texts[subset])
    everyday = [sentence.transcript for sentence in load_everyday()]
    assert set(texts["synth-test-everyday"]) == set(everyday[:MIN_UTTERANCES])  # file order, each sentence once
    everyday_dev = [sentence.transcript for sentence in load_everyday(EVERYDAY_DEV_PATH)]
    assert set(texts["synth-dev-everyday"]) == set(everyday_dev[:MIN_UTTERANCES])
    assert not set(everyday) & set(everyday_dev)


def test_grammar_plan_skips_everyday_sentences(tmp_path: Path) -> None:
    voices = select_voices(BASIC_VOICES[:1])
    first = [job.transcript for job, _ in zip(_plan("synth-train", 0, voices, tmp_path, frozenset()), range(6))]
    excluded = frozenset(first[::2])  # as if the everyday file held every other one of them
    again = [job.transcript for job, _ in zip(_plan("synth-train", 0, voices, tmp_path, excluded), range(6))]
    assert not excluded & set(again)
    assert first[1] in again  # the rest are still drawn


def test_held_out_voices_only_in_their_subsets(corpus: tuple[Path, dict[str, list[Utterance]]]) -> None:
    _, result = corpus
    speakers = {subset: {u.speaker for u in utterances} for subset, utterances in result.items()}
    seen = {_speaker("espeak:en-us+m1"), _speaker("flite:slt"), _speaker("festival:kal_diphone")}
    assert speakers["synth-test-voice"] == {_speaker("espeak:en-us+m7"), _speaker("flite:rms")}
    assert speakers["synth-test-natural"] == {_speaker("festival:ked_diphone")}
    assert speakers["synth-test-everyday"] == {
        _speaker("espeak:en-us+m7"), _speaker("flite:rms"), _speaker("festival:ked_diphone")
    }
    for subset in ("synth-train", "synth-dev", "synth-test", "synth-dev-everyday"):
        assert speakers[subset] <= seen
    assert speakers["synth-train"] == seen


def test_festival_voices_read_more_of_train(corpus: tuple[Path, dict[str, list[Utterance]]]) -> None:
    _, result = corpus
    counts = {name: sum(u.speaker == _speaker(name) for u in result["synth-train"]) for name in VOICES[:2]}
    assert sum(u.speaker == _speaker("festival:kal_diphone") for u in result["synth-train"]) > max(counts.values())


def test_voice_cycle_weighs_festival_voices_up_and_spreads_them() -> None:
    voices = [voice for voice in ALL_VOICES if not voice.held_out]
    cycle = voice_cycle(voices, weighted=True)
    assert cycle == voice_cycle(voices, weighted=True)
    for voice in voices:
        assert cycle.count(voice) == voice.weight
    assert all(a != b for a, b in zip(cycle, cycle[1:] + cycle[:1]))  # never the same voice twice running
    assert voice_cycle(voices, weighted=False) == voices


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
    one = generate_corpus(tmp_path / "a", 0.002, seed=1, voices=BASIC_VOICES, workers=1)
    two = generate_corpus(tmp_path / "b", 0.002, seed=2, voices=BASIC_VOICES, workers=1)
    assert [u.text for u in one["synth-train"]] != [u.text for u in two["synth-train"]]


def test_rerun_reuses_or_refuses(corpus: tuple[Path, dict[str, list[Utterance]]]) -> None:
    out, result = corpus
    assert generate_corpus(out, HOURS, seed=3, voices=VOICES) == result
    with pytest.raises(DataError, match="already holds a synthetic corpus"):
        generate_corpus(out, HOURS, seed=4, voices=VOICES)


def test_a_corpus_an_older_synth_wrote_is_named_as_such(tmp_path: Path) -> None:
    """Same request, older format: the message says so (and what the new format adds), before any synthesis."""
    request = {"hours": HOURS, "seed": 3, "voices": VOICES, "format": CORPUS_FORMAT - 1}
    (tmp_path / "corpus.json").write_text(json.dumps({"request": request, "subsets": {}}), encoding="utf-8")
    with pytest.raises(OlderCorpusError, match="older `asr synth` wrote it .*synth-dev-everyday"):
        generate_corpus(tmp_path, HOURS, seed=3, voices=VOICES)
    with pytest.raises(DataError, match="already holds a synthetic corpus") as other:
        generate_corpus(tmp_path, HOURS, seed=4, voices=VOICES)  # another request: not merely older
    assert not isinstance(other.value, OlderCorpusError)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["corpus.json"]


def test_without_festival_natural_is_left_out_and_a_short_file_is_all_of_everyday(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    short = tmp_path / "everyday.txt"
    short.write_text("Could you pass me the salt, please?\n\nWe're running a little late this morning.\n")
    monkeypatch.setitem(synth_corpus.EVERYDAY_FILES, "synth-test-everyday", short)
    result = generate_corpus(tmp_path / "c", 0.01, seed=1, voices=BASIC_VOICES, workers=1)
    assert "synth-test-natural: left out" in capsys.readouterr().out
    assert list(result) == [subset for subset in SUBSETS if subset != "synth-test-natural"]
    assert [u.text for u in result["synth-test-everyday"]] == [  # fewer than MIN_UTTERANCES: the file is all
        "COULD YOU PASS ME THE SALT PLEASE", "WE'RE RUNNING A LITTLE LATE THIS MORNING"
    ]
    assert generate_corpus(tmp_path / "c", 0.01, seed=1, voices=BASIC_VOICES) == result  # reused as written


def test_everyday_file_is_read_and_checked(tmp_path: Path) -> None:
    sentences = load_everyday()
    assert len(sentences) >= 100
    assert all(s.transcript == normalize_transcript(s.text) and s.transcript for s in sentences)
    bad = tmp_path / "everyday.txt"
    bad.write_text("It's late.\nIt's late!\n")
    with pytest.raises(DataError, match=r"everyday.txt:2: repeats the sentence of line 1"):
        load_everyday(bad)
    bad.write_text("Fine.\n?!\n")
    with pytest.raises(DataError, match=r"everyday.txt:2: '\?!' has no words"):
        load_everyday(bad)
    with pytest.raises(DataError, match="missing"):
        load_everyday(tmp_path / "absent.txt")


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


def test_held_out_set_covers_every_engine() -> None:
    engines = {voice.engine for voice in ALL_VOICES if voice.held_out}
    assert engines == {ESPEAK, FLITE, FESTIVAL, PICO}
    assert len({voice.speaker_id for voice in ALL_VOICES}) == len(ALL_VOICES)
    festival = {voice.name: voice.held_out for voice in ALL_VOICES if voice.engine == FESTIVAL}
    assert festival == {
        "festival:kal_diphone": False, "festival:cmu_us_slt_arctic_hts": False, "festival:ked_diphone": True,
        "festival:us1_mbrola": False, "festival:us2_mbrola": False, "festival:us3_mbrola": False,
    }


def test_speaker_ids_are_append_only() -> None:
    ids = {voice.name: voice.speaker_id for voice in ALL_VOICES}
    assert (ids["espeak:en-us+m1"], ids["flite:slt"], ids["flite:rms"]) == (9500, 9527, 9532)
    assert ids["festival:ked_diphone"] == 9535
    assert (ids["festival:us1_mbrola"], ids["pico:en-GB"]) == (9536, 9541)


def test_command_lists_voices(capsys: pytest.CaptureFixture[str]) -> None:
    args = argparse.Namespace(out=Path("unused"), hours=1.0, seed=0, voices=None, list_voices=True, workers=None)
    assert run_synth_command(args) == 0
    listing = capsys.readouterr().out
    assert "flite:rms" in listing and "held out: synth-test-voice, synth-test-everyday" in listing
    assert re.search(r"festival:ked_diphone +speaker 9535  held out: synth-test-natural", listing)


# ----- festival -----------------------------------------------------------

FESTIVAL_VOICES = ["festival:kal_diphone", "festival:ked_diphone", "festival:cmu_us_slt_arctic_hts"]
SENTENCE = "The train was twenty minutes late again this morning."


def _voice(name: str) -> Voice:
    return next(voice for voice in ALL_VOICES if voice.name == name)


def _f0(samples: np.ndarray) -> float:
    """Median pitch in Hz of the loud 40 ms frames, by autocorrelation (60-400 Hz)."""
    n = int(0.04 * SAMPLE_RATE)
    level = np.sqrt(np.mean(samples**2))
    pitches = []
    for start in range(0, len(samples) - n, n // 2):
        frame = samples[start:start + n] - samples[start:start + n].mean()
        if np.sqrt(np.mean(frame**2)) < 0.3 * level:
            continue
        correlation = np.correlate(frame, frame, "full")[n - 1:]
        lag = SAMPLE_RATE // 400 + int(np.argmax(correlation[SAMPLE_RATE // 400:SAMPLE_RATE // 60]))
        if correlation[lag] > 0.5 * correlation[0]:
            pitches.append(SAMPLE_RATE / lag)
    return float(np.median(pitches))


@needs_festival
@pytest.mark.parametrize("name", FESTIVAL_VOICES)
def test_festival_voice_speaks_16khz_audio(name: str) -> None:
    samples = speak(_voice(name), SENTENCE, Style(rate=1.0, pitch=1.0, gain=0.5))
    assert samples.dtype == np.float32 and samples.ndim == 1
    assert 2.0 < len(samples) / SAMPLE_RATE < 6.0  # at 16 kHz: a 10-word sentence takes about 3.5 s
    assert np.max(np.abs(samples)) == pytest.approx(0.5, abs=1e-6)
    assert np.sqrt(np.mean(samples**2)) > 0.02  # speech, not a click in silence


@needs_festival
@pytest.mark.parametrize("name", FESTIVAL_VOICES)
def test_festival_rate_and_pitch_change_the_audio(name: str) -> None:
    voice = _voice(name)
    slow, fast = (speak(voice, SENTENCE, Style(rate=rate, pitch=1.0, gain=0.5)) for rate in (0.8, 1.15))
    assert len(slow) / len(fast) == pytest.approx(1.15 / 0.8, rel=0.08)
    low, high = (_f0(speak(voice, SENTENCE, Style(rate=1.0, pitch=pitch, gain=0.5))) for pitch in (0.8, 1.25))
    expected = (1.25 / 0.8) ** (0.5 if name.endswith("_hts") else 1.0)  # HTS: square root, see voices.py
    assert high / low == pytest.approx(expected, rel=0.1)


# ----- extra voices (mbrola, Pico) ----------------------------------------

EXTRA_VOICES = list(EXTRA_PACKAGES)


def _extra_installed(name: str) -> bool:
    try:
        select_voices([name])
    except DataError:
        return False
    return True


def test_extra_voices_are_natural_and_used_only_when_named() -> None:
    extra = [voice for voice in ALL_VOICES if voice.extra]
    assert [voice.name for voice in extra] == EXTRA_VOICES
    assert all(voice.natural and voice.weight > 1 for voice in extra)
    assert not any(voice.extra for voice in select_voices())  # not even where they are installed
    assert [voice.name for voice in extra if voice.held_out] == ["pico:en-GB"]


def test_missing_mbrola_voice_names_the_install(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(synth_voices, "_MBROLA_DIR", tmp_path)  # no mbrola voice in it
    with pytest.raises(DataError, match=r"espeak:mb-en1 needs the mbrola voice en1, which is not installed; "
                                        r"install it \(make extra-voices, which installs mbrola-en1"):
        select_voices(["espeak:mb-en1"])


def test_missing_pico_names_the_install(monkeypatch: pytest.MonkeyPatch) -> None:
    real_which = shutil.which
    monkeypatch.setattr(synth_voices.shutil, "which", lambda name: None if name == PICO else real_which(name))
    with pytest.raises(DataError, match=r"pico:en-US needs pico2wave.*make extra-voices.*libttspico-utils"):
        select_voices(["pico:en-US"])


def test_pico_gets_rate_and_pitch_as_markup_and_escaped_text(monkeypatch: pytest.MonkeyPatch) -> None:
    commands = []

    def fake_run(command: list[str]) -> None:
        commands.append(command)
        soundfile.write(command[command.index("-w") + 1], np.full(1600, 0.1, np.float32), SAMPLE_RATE)

    monkeypatch.setattr(synth_voices, "_run", fake_run)
    samples = speak(_voice("pico:en-GB"), "Salt & <pepper>", Style(rate=0.8, pitch=1.25, gain=0.5))
    assert commands[0][:3] == [PICO, "-l", "en-GB"]
    assert commands[0][-1] == '<speed level="80"><pitch level="125">Salt &amp; &lt;pepper&gt;</pitch></speed>'
    assert np.max(np.abs(samples)) == pytest.approx(0.5)


@pytest.mark.parametrize("name", EXTRA_VOICES)
def test_extra_voice_rate_and_pitch_change_the_audio(name: str) -> None:
    if not _extra_installed(name):
        pytest.skip(f"{name} is not installed (make extra-voices)")
    voice = _voice(name)
    slow, fast = (speak(voice, SENTENCE, Style(rate=rate, pitch=1.0, gain=0.5)) for rate in (0.8, 1.15))
    assert 2.0 < len(fast) / SAMPLE_RATE < 6.0
    assert len(slow) / len(fast) == pytest.approx(1.15 / 0.8, rel=0.15)  # Pico's speed is not quite linear
    low, high = (_f0(speak(voice, SENTENCE, Style(rate=1.0, pitch=pitch, gain=0.5))) for pitch in (0.8, 1.25))
    if voice.engine == ESPEAK:  # espeak-ng's -p is a 0-99 scale, not a factor: mbrola's pitch moves less
        assert high / low > 1.15
    else:
        assert high / low == pytest.approx(1.25 / 0.8, rel=0.15)


@needs_festival
def test_festival_text_needs_no_quoting() -> None:
    text = 'He said "don\'t (quote) me"; then left\\.'
    samples = speak(_voice("festival:kal_diphone"), text, Style(rate=1.0, pitch=1.0, gain=0.5))
    assert len(samples) / SAMPLE_RATE > 1.0


def test_bad_hours(tmp_path: Path) -> None:
    for hours in (0.0, math.inf, math.nan):
        with pytest.raises(DataError, match="--hours must be a positive finite number"):
            generate_corpus(tmp_path, hours)


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


def _descendants(pid: int) -> set[int]:
    """Every live process below `pid` (children, theirs, ...), read from /proc."""
    parents = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()  # after "pid (name)": state, ppid, ...
        except OSError:  # the process ended while we read
            continue
        if fields[0] != "Z":
            parents[int(stat.parent.name)] = int(fields[1])
    found, frontier = set(), {pid}
    while frontier:
        frontier = {child for child, parent in parents.items() if parent in frontier} - found
        found |= frontier
    return found


def _alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def test_sigterm_stops_synth_and_its_workers(tmp_path: Path) -> None:
    """SIGTERM runs the worker pool's shutdown: the command exits 143 and leaves no process behind."""
    import signal
    import subprocess
    import sys
    import time

    out = tmp_path / "corpus"
    repo = Path(__file__).resolve().parent.parent
    err_path = tmp_path / "stderr.txt"  # a file, not a pipe: workers left behind would hold a pipe open
    with open(err_path, "w") as err_file:
        process = subprocess.Popen(
            [sys.executable, "cli.py", "synth", "--out", str(out), "--hours", "2", "--seed", "3", "--workers", "2",
             "--voices", *BASIC_VOICES],
            cwd=repo, stdout=subprocess.DEVNULL, stderr=err_file,
        )
    clips = out / synth_corpus._STAGING / "clips"
    workers: set[int] = set()
    try:
        # Wait for the first clip: the forkserver and both workers are running then. The deadline only
        # bounds a failure (2 hours of audio take minutes on any machine).
        deadline = time.monotonic() + 300
        while not (clips.is_dir() and any(clips.iterdir())) and process.poll() is None:
            assert time.monotonic() < deadline, "no clip was written in 300 s"
            time.sleep(0.2)
        assert process.poll() is None, err_path.read_text()
        workers = _descendants(process.pid)
        assert len(workers) >= 3  # the forkserver and two workers
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=300)
        err = err_path.read_text()
        assert process.returncode == 128 + signal.SIGTERM, err
        assert err.strip().endswith("asr synth: terminated (SIGTERM)"), err
        deadline = time.monotonic() + 60
        while any(_alive(pid) for pid in workers) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert not [pid for pid in workers if _alive(pid)], "worker processes outlived the command"
    finally:
        process.kill()
        for pid in workers:
            if _alive(pid):
                os.kill(pid, signal.SIGKILL)
