"""Token tables and the two tokenizers (characters, sentencepiece BPE).

Ids: 0 is the blank `<blk>`; ids are 0..V-1 (V the vocab size). Words are
separated by sentencepiece's "▁" (U+2581) in both tokenizers, so turning ids
back into text needs only tokens.txt (`TokenTable.decode`), which is what the
torch-free runtime does. Decoding follows sherpa-onnx: a leading "▁" of each
symbol becomes a space, `<unk>` is dropped, the joined text is stripped (its
Python API strips); `<blk>` and `<sos/eos>` are dropped too, so the same ids give
the same text in both programs.

Encoding first normalises text with `asr.text.normalize_transcript` (upper case
A-Z, apostrophes, single spaces: LibriSpeech style), so "Hello, world!" encodes
as "HELLO WORLD". Characters the vocabulary lacks are an error by default, or
`<unk>` with on_unknown="unk".

sentencepiece is a training dependency: it is imported only inside
`BpeTokenizer`, never by importing this module.
"""

from __future__ import annotations

import io
import re
from abc import ABC, abstractmethod
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, ClassVar, Iterable, Literal, Sequence, TypeVar

from asr.errors import TokenError
from asr.text import normalize_transcript

BLANK = "<blk>"  # id 0: the transducer's blank, never part of text
SOS_EOS = "<sos/eos>"  # BPE id 1 (icefall's layout), never part of text
UNK = "<unk>"  # stands for characters the vocabulary lacks, never part of text
SPECIAL_SYMBOLS = frozenset({BLANK, SOS_EOS, UNK})
WORD_BOUNDARY = "\u2581"  # sentencepiece's "▁": a space in the text
BLANK_ID = 0
TOKENS_FILE = "tokens.txt"
BPE_MODEL_FILE = "bpe.model"

OnUnknown = Literal["error", "unk"]
_TokenizerT = TypeVar("_TokenizerT", bound="Tokenizer")

_BLOB_MAGIC = "asr-tokenizer"
_BLOB_VERSION = 1


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


class Tokenizer(ABC):
    """Text <-> token ids. U below is the number of tokens of one utterance."""

    kind: ClassVar[str]  # names the class inside `to_bytes` blobs

    def __init__(self, token_table: TokenTable) -> None:
        self.token_table = token_table
        if UNK not in token_table:
            raise TokenError(
                f"the {self.kind} token table has no {UNK}; re-create the tokenizer"
            )
        # Characters some non-special symbol spells: what text may contain.
        self._known_chars = frozenset(
            "".join(s for s in token_table.symbols if s not in SPECIAL_SYMBOLS)
        ) - {WORD_BOUNDARY}

    @property
    def vocab_size(self) -> int:
        return self.token_table.vocab_size

    @property
    def unk_id(self) -> int:
        return self.token_table.id_of(UNK)

    def unknown_characters(self, text: str) -> Counter[str]:
        """Count of each character of the normalised `text` the vocabulary lacks."""
        normalised = normalize_transcript(text)
        return Counter(normalised[i] for i in self._unknown_positions(normalised))

    def _unknown_positions(self, normalised: str) -> list[int]:
        return [i for i, c in enumerate(normalised) if c != " " and c not in self._known_chars]

    def encode(self, text: str, on_unknown: OnUnknown = "error") -> list[int]:
        """Token ids (U,) of normalised `text`; never the blank.

        on_unknown="error" raises TokenError naming characters the vocabulary lacks;
        "unk" encodes them as `<unk>`: count those with `ids.count(tokenizer.unk_id)`
        (BPE folds a run of unknown characters into one `<unk>`), or count the
        characters with `unknown_characters(text)`.
        """
        if on_unknown not in ("error", "unk"):
            raise TokenError(f"on_unknown must be 'error' or 'unk', got {on_unknown!r}")
        normalised = normalize_transcript(text)
        if on_unknown == "error":
            self._raise_on_unknown(normalised)
        return self._encode_normalised(normalised)

    def _raise_on_unknown(self, normalised: str) -> None:
        positions = self._unknown_positions(normalised)
        if not positions:
            return
        chars = "".join(sorted({normalised[i] for i in positions}))
        excerpt = normalised if len(normalised) <= 80 else normalised[:77] + "..."
        raise TokenError(
            f"characters {chars!r} are not in the {self.kind} vocabulary (first at position "
            f"{positions[0]} of normalised text {excerpt!r}); rebuild the tokenizer on "
            "transcripts that contain them, or encode with on_unknown='unk'"
        )

    def decode(self, ids: Sequence[int]) -> str:
        """Text for token ids (U,); the same as `TokenTable.decode`."""
        return self.token_table.decode(ids)

    def to_bytes(self) -> bytes:
        """A self-describing blob for checkpoints (no pickle): header line + payload."""
        header = f"{_BLOB_MAGIC}/{_BLOB_VERSION} {self.kind}\n".encode("ascii")
        return header + self._payload()

    @classmethod
    def from_bytes(cls: type[_TokenizerT], data: bytes) -> _TokenizerT:
        """Rebuild a tokenizer from `to_bytes`; TokenError if `data` is another kind."""
        kind, payload = _split_blob(data)
        if kind != cls.kind:
            raise TokenError(
                f"the blob holds a {kind} tokenizer, not {cls.kind}; use load_tokenizer(data)"
            )
        return cls._from_payload(payload)

    def save(self, directory: str | Path) -> None:
        """Write tokens.txt (and the model file, for BPE) into `directory`."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        self.token_table.write(directory / TOKENS_FILE)
        self._save_extra(directory)

    def _save_extra(self, directory: Path) -> None:
        """Files besides tokens.txt that reloading needs; none by default."""

    @abstractmethod
    def _encode_normalised(self, text: str) -> list[int]:
        """Ids of already normalised text; unknown characters become <unk>."""

    @abstractmethod
    def _payload(self) -> bytes:
        """The bytes `_from_payload` rebuilds this tokenizer from."""

    @classmethod
    @abstractmethod
    def _from_payload(cls: type[_TokenizerT], payload: bytes) -> _TokenizerT:
        """Inverse of `_payload`."""


class CharTokenizer(Tokenizer):
    """One token per character: <blk>=0, <unk>=1, ▁ (space)=2, then sorted characters."""

    kind = "char"

    def __init__(self, token_table: TokenTable) -> None:
        super().__init__(token_table)
        long_symbols = [
            s for s in token_table.symbols if s not in SPECIAL_SYMBOLS and len(s) != 1
        ]
        if long_symbols or WORD_BOUNDARY not in token_table:
            raise TokenError(
                f"not a character token table (multi-character symbols {long_symbols[:5]} or "
                f"no {WORD_BOUNDARY}); load BPE tables with BpeTokenizer.load"
            )
        # Normalised text has plain spaces where the table has ▁.
        self._char_ids = {
            (" " if s == WORD_BOUNDARY else s): i
            for i, s in enumerate(token_table.symbols)
            if s not in SPECIAL_SYMBOLS
        }

    @classmethod
    def build(cls, texts: Iterable[str]) -> CharTokenizer:
        """A vocabulary of every character in the normalised `texts`."""
        chars = set().union(*(normalize_transcript(t) for t in texts)) - {" "}
        if not chars:
            raise TokenError(
                "no characters to build a vocabulary from: the transcripts are empty after "
                "normalisation; check the corpus manifests"
            )
        return cls(TokenTable((BLANK, UNK, WORD_BOUNDARY, *sorted(chars))))

    def _encode_normalised(self, text: str) -> list[int]:
        unk = self.unk_id
        return [self._char_ids.get(c, unk) for c in text]

    def _payload(self) -> bytes:
        return self.token_table.to_text().encode("utf-8")

    @classmethod
    def _from_payload(cls, payload: bytes) -> CharTokenizer:
        return cls(TokenTable.parse(payload.decode("utf-8"), source="char tokenizer blob"))


class BpeTokenizer(Tokenizer):
    """sentencepiece BPE in icefall's layout: <blk>=0, <sos/eos>=1, <unk>=2, then pieces."""

    kind = "bpe"

    def __init__(self, model_proto: bytes) -> None:
        spm = _sentencepiece()
        try:
            self._processor = spm.SentencePieceProcessor(model_proto=model_proto)
        except (RuntimeError, OSError) as error:
            raise TokenError(
                f"not a sentencepiece model ({error}); re-train with BpeTokenizer.train or "
                "re-copy bpe.model"
            ) from None
        self._model_proto = model_proto
        size = self._processor.get_piece_size()
        super().__init__(TokenTable(tuple(self._processor.id_to_piece(i) for i in range(size))))

    @classmethod
    def train(
        cls, texts: Iterable[str], vocab_size: int = 500, *, model_dir: str | Path
    ) -> BpeTokenizer:
        """Train on the normalised `texts` and save bpe.model + tokens.txt in `model_dir`.

        Deterministic: one thread and no sentence sampling, so the same texts give
        the same model bytes. The vocabulary is exactly `vocab_size`; TokenError
        says which sizes work when the texts cannot support it.
        """
        spm = _sentencepiece()
        sentences = [s for s in (normalize_transcript(t) for t in texts) if s]
        if not sentences:
            raise TokenError(
                "no text to train BPE on: the transcripts are empty after normalisation; "
                "check the corpus manifests"
            )
        model = io.BytesIO()
        try:
            spm.SentencePieceTrainer.train(
                sentence_iterator=iter(sentences),
                model_writer=model,
                model_type="bpe",
                vocab_size=vocab_size,
                character_coverage=1.0,  # every character of the corpus gets a piece
                normalization_rule_name="identity",  # normalize_transcript already ran
                control_symbols=[BLANK, SOS_EOS],  # ids 0 and 1; never matched in text
                unk_id=2,
                bos_id=-1,
                eos_id=-1,
                pad_id=-1,
                input_sentence_size=0,  # use every sentence: no random sampling
                max_sentence_length=1 << 16,  # bytes; long transcripts are kept, not skipped
                num_threads=1,
                minloglevel=2,
            )
        except RuntimeError as error:
            raise _vocab_size_error(vocab_size, str(error)) from None
        tokenizer = cls(model.getvalue())
        tokenizer.save(model_dir)
        return tokenizer

    @classmethod
    def load(cls, model_path: str | Path) -> BpeTokenizer:
        """Load a bpe.model (ours or icefall's: anything with <blk> at id 0)."""
        model_path = Path(model_path)
        if not model_path.is_file():
            raise TokenError(
                f"{model_path}: no such sentencepiece model; pass the bpe.model written by "
                "BpeTokenizer.train"
            )
        try:
            return cls(model_path.read_bytes())
        except TokenError as error:
            raise TokenError(f"{model_path}: {error}") from None

    def _encode_normalised(self, text: str) -> list[int]:
        return self._processor.encode(text, out_type=int)

    def _payload(self) -> bytes:
        return self._model_proto

    @classmethod
    def _from_payload(cls, payload: bytes) -> BpeTokenizer:
        return cls(payload)

    def _save_extra(self, directory: Path) -> None:
        (directory / BPE_MODEL_FILE).write_bytes(self._model_proto)


_TOKENIZERS: dict[str, type[Tokenizer]] = {c.kind: c for c in (CharTokenizer, BpeTokenizer)}


def load_tokenizer(data: bytes) -> Tokenizer:
    """Rebuild whichever tokenizer `Tokenizer.to_bytes` stored in `data`."""
    kind, payload = _split_blob(data)
    return _TOKENIZERS[kind]._from_payload(payload)


def _split_blob(data: bytes) -> tuple[str, bytes]:
    """(kind, payload) of a `to_bytes` blob; TokenError for anything else."""
    header, newline, payload = data.partition(b"\n")
    match = re.fullmatch(rf"{_BLOB_MAGIC}/(\d+) (\w+)", header.decode("ascii", "replace"))
    if not newline or match is None:
        raise TokenError(
            "not a tokenizer blob (the checkpoint is corrupt or from another program); "
            "re-save the tokenizer with to_bytes()"
        )
    version, kind = int(match[1]), match[2]
    if version != _BLOB_VERSION:
        raise TokenError(
            f"tokenizer blob version {version}, this code reads version {_BLOB_VERSION}; "
            "use the asr version that wrote the checkpoint"
        )
    if kind not in _TOKENIZERS:
        raise TokenError(
            f"unknown tokenizer kind {kind!r} in blob (known: {', '.join(_TOKENIZERS)}); "
            "use the asr version that wrote the checkpoint"
        )
    return kind, payload


def _vocab_size_error(vocab_size: int, message: str) -> TokenError:
    """Turn sentencepiece's vocab-size failures into a message saying what size works."""
    too_high = re.search(r"value <= (\d+)", message)
    if too_high:
        return TokenError(
            f"vocab_size={vocab_size} is more than these transcripts support; the largest "
            f"that works is {too_high[1]}: lower vocab_size or train on more text"
        )
    too_low = re.search(r"required_chars\. \d+ vs (\d+)", message)
    if too_low:
        return TokenError(
            f"vocab_size={vocab_size} is below the {too_low[1]} pieces needed for every "
            f"character plus {BLANK}, {SOS_EOS}, {UNK}; use vocab_size >= {too_low[1]}"
        )
    return TokenError(f"sentencepiece training failed ({message}); check the transcripts")


def _sentencepiece() -> Any:
    """The sentencepiece module, imported only where BPE is trained or used."""
    try:
        import sentencepiece
    except ImportError:
        raise TokenError(
            "BPE tokenizers need sentencepiece: pip install 'streaming-asr[train]' "
            "(the runtime decodes with tokens.txt and does not need it)"
        ) from None
    return sentencepiece
