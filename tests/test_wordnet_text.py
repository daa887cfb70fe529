"""WordNet's usage examples as LM text: what is kept and dropped, the everyday sentences never read, Debian's
files as installed, and a missing WordNet reported with the fix."""

from __future__ import annotations

from pathlib import Path

import pytest

import cli
from asr.errors import DataError
from asr.synth.everyday import EVERYDAY_DEV_PATH, EVERYDAY_TEST_PATH, load_everyday
from asr.training.lm_text import gather_text
from asr.training.wordnet_text import WORDNET_DIR, WORDNET_PARTS, wordnet_examples

LICENCE_HEADER = '  1 This software and database is being provided "as is" to you\n'


def write_wordnet(directory: Path, noun_lines: list[str]) -> Path:
    """A WordNet data dir: data.noun holds the lines given, the other parts only the licence header."""
    directory.mkdir(parents=True, exist_ok=True)
    for part in WORDNET_PARTS:
        lines = noun_lines if part == "noun" else []
        (directory / f"data.{part}").write_text(LICENCE_HEADER + "".join(f"{line}\n" for line in lines),
                                                encoding="latin-1")
    return directory


def synset(gloss: str) -> str:
    return f"00001740 03 n 01 entity 0 000 | {gloss}"


def test_examples_are_the_quoted_sentences_after_the_gloss(tmp_path: Path) -> None:
    everyday_test = load_everyday()[0].text
    everyday_dev = load_everyday(EVERYDAY_DEV_PATH)[0].text
    directory = write_wordnet(tmp_path / "wn", [
        synset('a sudden fall; "She slipped on the ice"; "the \'quiet\' man left early"'),
        synset('the number; "he paid 25 dollars for it"; "tall man"'),  # digits; too short
        synset('a repeat; "She slipped on the ice"'),  # the same sentence again
        synset(f'held out; "{everyday_test}"; "{everyday_dev}"'),
        '00001741 03 n 01 "quoted" 0 000 | no examples in this gloss',
    ])
    assert wordnet_examples(directory) == ["SHE SLIPPED ON THE ICE", "THE QUIET MAN LEFT EARLY"]
    text = gather_text([], None, [], 0, 0, wordnet=directory)
    assert text.counts == {"WordNet examples": 2}


def test_a_missing_wordnet_is_reported_with_the_fix(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(DataError, match="wordnet-base"):
        wordnet_examples(tmp_path)
    assert cli.main(["train-lm", "--wordnet", str(tmp_path), "--exp-dir", str(tmp_path / "lm")]) == 2
    error = capsys.readouterr().err
    assert "data.noun" in error and "apt-get install wordnet-base" in error
    assert not (tmp_path / "lm").exists()


def test_wordnet_without_examples_is_refused(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="no usage examples"):
        wordnet_examples(write_wordnet(tmp_path / "wn", [synset("a gloss without examples")]))


def test_debians_wordnet_gives_tens_of_thousands_of_sentences_and_no_everyday_one() -> None:
    """`make setup` installs wordnet-base; these are the sentences the shipped LM read."""
    examples = wordnet_examples(WORDNET_DIR)
    everyday = {s.transcript for path in (EVERYDAY_TEST_PATH, EVERYDAY_DEV_PATH) for s in load_everyday(path)}
    assert len(examples) > 40_000 and len(set(examples)) == len(examples)
    assert not everyday & set(examples)
    assert all(len(sentence.split()) >= 3 and set(sentence) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZ' ")
               for sentence in examples)
