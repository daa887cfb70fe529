"""The token table of tokens.txt: the id <-> symbol mapping the runtime decodes with.

Ids: 0 is the blank `<blk>`; ids are 0..V-1 (V the vocab size). Words are
separated by sentencepiece's "▁" (U+2581) in both training tokenizers
(asr.training.tokenizers), so turning ids back into text needs only tokens.txt
(`TokenTable.decode`), which is what the torch-free runtime does. Decoding
follows sherpa-onnx: a leading "▁" of each symbol becomes a space, `<unk>` is
dropped, the joined text is stripped (its Python API strips); `<blk>` and
`<sos/eos>` are dropped too, so the same ids give the same text in both programs.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, ClassVar, Sequence

from asr.errors import TokenError

BLANK = "<blk>"  # id 0: the transducer's blank, never part of text
SOS_EOS = "<sos/eos>"  # BPE id 1 (icefall's layout), never part of text
UNK = "<unk>"  # stands for characters the vocabulary lacks, never part of text
SPECIAL_SYMBOLS = frozenset({BLANK, SOS_EOS, UNK})
WORD_BOUNDARY = "\u2581"  # sentencepiece's "▁": a space in the text
BLANK_ID = 0
TOKENS_FILE = "tokens.txt"


@dataclass(frozen=True)
class TokenTable:
    """The id <-> symbol mapping of tokens.txt (V symbols, ids 0..V-1, blank at 0)."""

    symbols: tuple[str, ...]  # symbols[i] is the symbol of id i
    blank_id: ClassVar[int] = BLANK_ID
    _ids: dict[str, int] = field(init=False, repr=False, compare=False)
    _text: tuple[str, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        symbols = tuple(self.symbols)
        _check_symbols(symbols, lambda i: f"id {i}")
        object.__setattr__(self, "symbols", symbols)
        object.__setattr__(self, "_ids", {s: i for i, s in enumerate(symbols)})
        object.__setattr__(self, "_text", tuple(_text_of(s) for s in symbols))

    @property
    def vocab_size(self) -> int:
        return len(self.symbols)

    @property
    def pieces(self) -> tuple[str, ...]:
        """pieces[i] is what id i contributes to `decode`'s text before the final strip."""
        return self._text

    def __contains__(self, symbol: object) -> bool:
        return symbol in self._ids

    def id_of(self, symbol: str) -> int:
        """The id of `symbol`; TokenError if the table lacks it."""
        try:
            return self._ids[symbol]
        except KeyError:
            raise TokenError(
                f"symbol {symbol!r} is not in this token table ({self.vocab_size} symbols); "
                "use the tokens.txt that belongs to the model"
            ) from None

    def decode(self, ids: Sequence[int]) -> str:
        """Text for token ids (U,): symbols joined, "▁" as space, specials dropped, stripped."""
        text = self._text
        # Checked explicitly: a negative id would index from the end without error.
        bad = next((i for i in ids if not 0 <= i < len(text)), None)
        if bad is not None:
            raise TokenError(
                f"token id {bad} is outside 0..{len(text) - 1}: the model and tokens.txt do not "
                "match; use the tokens.txt exported with this model"
            )
        return "".join([text[i] for i in ids]).strip()

    def to_text(self) -> str:
        """tokens.txt content: `symbol id` per line, in id order, blank first."""
        return "".join(f"{symbol} {i}\n" for i, symbol in enumerate(self.symbols))

    def write(self, path: str | Path) -> None:
        Path(path).write_bytes(self.to_text().encode("utf-8"))

    @classmethod
    def read(cls, path: str | Path) -> TokenTable:
        """Read and check a tokens.txt; TokenError names the file, line and fix."""
        path = Path(path)
        if not path.is_file():
            what = "is a directory" if path.is_dir() else "does not exist"
            raise TokenError(
                f"{path}: tokens file {what}; pass the tokens.txt saved with the model or tokenizer"
            )
        try:
            text = path.read_bytes().decode("utf-8")
        except UnicodeDecodeError as error:
            raise TokenError(
                f"{path}: not UTF-8 text ({error}); re-create it with the tokenizer's save()"
            ) from None
        return cls.parse(text, source=str(path))

    @classmethod
    def parse(cls, text: str, source: str) -> TokenTable:
        """Parse tokens.txt content; `source` names it in error messages.

        Lines are `symbol id`; blank lines are skipped (sherpa-onnx skips them too);
        lines may come in any order but the ids must be exactly 0..V-1.
        """
        by_id: dict[int, tuple[str, int]] = {}  # id -> (symbol, line number)
        for number, line in enumerate(text.splitlines(), start=1):
            if not line.strip():
                continue
            symbol, token_id = _parse_line(line, f"{source}:{number}")
            if token_id in by_id:
                raise TokenError(
                    f"{source}:{number}: id {token_id} is already used on line "
                    f"{by_id[token_id][1]}; give every symbol its own id"
                )
            by_id[token_id] = (symbol, number)
        if not by_id:
            raise TokenError(
                f"{source}: no tokens in the file; re-create it with the tokenizer's save()"
            )
        missing = next((i for i in range(len(by_id)) if i not in by_id), None)
        if missing is not None:
            top = max(by_id)
            raise TokenError(
                f"{source}: ids must be 0..{len(by_id) - 1} without gaps, but id {missing} is "
                f"missing (line {by_id[top][1]} has id {top}); renumber the ids contiguously"
            )
        symbols = tuple(by_id[i][0] for i in range(len(by_id)))
        _check_symbols(symbols, lambda i: f"{source}:{by_id[i][1]}")
        return cls(symbols)


def _parse_line(line: str, where: str) -> tuple[str, int]:
    fields = line.split()
    if len(fields) != 2 or not re.fullmatch(r"[0-9]+", fields[1]):
        raise TokenError(
            f"{where}: expected `symbol id` (a symbol without spaces, a space, a "
            f"non-negative integer), got {line!r}; fix the line or re-create the file"
        )
    return fields[0], int(fields[1])


def _check_symbols(symbols: tuple[str, ...], where: Callable[[int], str]) -> None:
    """Blank first, no duplicates, no empty or whitespace symbols; `where(id)` locates one."""
    if not symbols:
        raise TokenError("a token table needs at least the blank symbol <blk> at id 0")
    seen: dict[str, int] = {}
    for i, symbol in enumerate(symbols):
        if not symbol or any(c.isspace() for c in symbol):
            raise TokenError(
                f"{where(i)}: symbol {symbol!r} is empty or has whitespace, which tokens.txt "
                "cannot hold; use sentencepiece's ▁ (U+2581) for spaces"
            )
        if symbol in seen:
            raise TokenError(
                f"{where(i)}: symbol {symbol!r} is already at {where(seen[symbol])}; "
                "keep one line per symbol"
            )
        seen[symbol] = i
    if symbols[BLANK_ID] != BLANK:
        raise TokenError(
            f"{where(BLANK_ID)}: {symbols[BLANK_ID]!r} has id 0, which must be the blank {BLANK}; "
            f"put `{BLANK} 0` first and renumber, or re-create the tokenizer"
        )


def _text_of(symbol: str) -> str:
    """What a symbol contributes to text: sherpa-onnx turns only a leading ▁ into a space."""
    if symbol in SPECIAL_SYMBOLS:
        return ""
    if symbol.startswith(WORD_BOUNDARY):
        return " " + symbol[len(WORD_BOUNDARY) :]
    return symbol
