"""Hotword lists: read (sherpa-onnx's file format), spelt with a model's token table, built into a ContextGraph.

File format, as sherpa-onnx's --hotwords-file: one phrase per line, optionally
followed by its own score written as a trailing `:2.5` (`HELLO WORLD :2.5`);
blank lines and lines starting with `#` are skipped. A phrase is spelt with the
model's tokens.txt by greedy longest match over its symbols, the way the
training tokenizers write text: a char table separates words with "▁" and has
none before the first (`H E L L O ▁ W O R L D`), a BPE table starts every word
with it (`▁HE LLO ▁WOR LD`). With a char table a phrase can also match inside a
longer word, as it does in sherpa-onnx. Tables whose letters are all upper case (or all lower case) get the
phrase in that case, so `hello` works with the shipped model's upper-case table.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Sequence, Union

from asr.errors import ConfigError
from asr.runtime.context_graph import ContextGraph
from asr.runtime.tokens import SPECIAL_SYMBOLS, WORD_BOUNDARY, TokenTable

DEFAULT_SCORE = 1.5  # per-token bonus (sherpa-onnx's --hotwords-score default)
# What create_stream(hotwords=...) takes: phrases, or (phrase, per-token score) pairs.
HotwordList = Sequence[Union[str, tuple[str, float]]]


class HotwordError(ConfigError):
    """A hotword list that cannot be used; the CLI exits 2 with the message."""


def check_score(score: object, where: str) -> float:
    """`score` as a finite float; HotwordError naming `where` otherwise."""
    if isinstance(score, bool):
        raise HotwordError(f"{where}: score {score!r} is not a number; write e.g. 2.5")
    try:
        value = float(score)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise HotwordError(f"{where}: score {score!r} is not a number; write e.g. 2.5") from None
    if not math.isfinite(value):
        raise HotwordError(f"{where}: score {score!r} is not finite; write e.g. 2.5")
    return value


def parse_hotwords(text: str, source: str, default_score: float = DEFAULT_SCORE) -> list[tuple[str, float, str]]:
    """(phrase, score, where) per phrase of a hotwords file's `text`; `source` names it in errors."""
    check_score(default_score, "--hotwords-score")
    phrases = []
    for number, line in enumerate(text.splitlines(), start=1):
        where = f"{source}:{number}"
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        phrase, score = stripped, default_score
        if ":" in stripped:
            phrase, _, written = stripped.rpartition(":")
            phrase = phrase.strip()
            score = check_score(written.strip(), where)
        if not phrase:
            raise HotwordError(f"{where}: no phrase before the score in {line!r}; write `PHRASE` or `PHRASE :2.5`")
        phrases.append((phrase, score, where))
    if not phrases:
        raise HotwordError(f"{source}: no hotwords in the file; write one phrase per line")
    return phrases


def read_hotwords(path: str | Path, default_score: float = DEFAULT_SCORE) -> list[tuple[str, float, str]]:
    """parse_hotwords of a file; HotwordError if it cannot be read."""
    path = Path(path)
    try:
        text = path.read_bytes().decode("utf-8")
    except OSError as error:
        raise HotwordError(f"{path}: cannot read the hotwords file ({error.strerror or error})") from None
    except UnicodeDecodeError as error:
        raise HotwordError(f"{path}: the hotwords file is not UTF-8 text ({error})") from None
    return parse_hotwords(text, str(path), default_score)


def _case_of(table: TokenTable) -> str:
    """'upper' or 'lower' when every cased letter of the table's symbols has that case, else ''."""
    letters = [c for s in table.symbols if s not in SPECIAL_SYMBOLS for c in s if c.isalpha() and c.lower() != c.upper()]
    if letters and all(c.isupper() for c in letters):
        return "upper"
    if letters and all(c.islower() for c in letters):
        return "lower"
    return ""


def spell(table: TokenTable, phrase: str, where: str) -> tuple[int, ...]:
    """Token ids of `phrase` by greedy longest match over the table's symbols; HotwordError naming `where`."""
    case = _case_of(table)
    words = (phrase.upper() if case == "upper" else phrase.lower() if case == "lower" else phrase).split()
    plain = [s for s in table.symbols if s not in SPECIAL_SYMBOLS]
    longest = max(len(s) for s in plain)
    ids: list[int] = []
    for i, word in enumerate(words):
        # A char table (single-character symbols) writes "▁" between words only (CharTokenizer).
        text = word if longest == 1 and i == 0 else WORD_BOUNDARY + word
        start = 0
        while start < len(text):
            for end in range(min(len(text), start + longest), start, -1):
                symbol = text[start:end]
                if symbol in table and symbol not in SPECIAL_SYMBOLS:
                    ids.append(table.id_of(symbol))
                    start = end
                    break
            else:
                raise HotwordError(
                    f"{where}: hotword {phrase!r} has {text[start]!r}, which the model's tokens cannot "
                    "spell; remove the phrase or write it with the model's letters"
                )
    return tuple(ids)


def build_context_graph(table: TokenTable, hotwords: HotwordList, default_score: float = DEFAULT_SCORE,
                        places: Sequence[str] | None = None) -> ContextGraph | None:
    """The graph of `hotwords` (phrases or (phrase, score) pairs) spelt with `table`; None for an empty list.

    places: where each phrase came from (file:line), for error messages.
    """
    check_score(default_score, "hotwords score")
    spelt = []
    for i, item in enumerate(hotwords):
        where = places[i] if places is not None else f"hotword {i + 1}"
        phrase, score = (item, default_score) if isinstance(item, str) else item
        if not isinstance(phrase, str) or not phrase.strip():
            raise HotwordError(f"{where}: hotword {phrase!r} is empty or not a string; give a phrase")
        spelt.append((spell(table, phrase, where), check_score(score, where)))
    if not spelt:
        return None
    return ContextGraph(spelt, table.vocab_size, table.blank_id)


def file_context_graph(table: TokenTable, parsed: Sequence[tuple[str, float, str]]) -> ContextGraph:
    """The graph of a hotwords file as read_hotwords gives it (the CLI's --hotwords), spelt with `table`."""
    graph = build_context_graph(table, [(p, s) for p, s, _ in parsed], places=[w for _, _, w in parsed])
    assert graph is not None  # read_hotwords refuses a file without phrases
    return graph
