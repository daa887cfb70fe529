"""The training tokenizers (characters, sentencepiece BPE) over the runtime's token table.

A tokenizer turns transcripts into token ids for training and travels inside
checkpoints (`to_bytes`); its `token_table` (asr.runtime.tokens) is what an
export writes as tokens.txt, and all the runtime needs to turn ids into text.

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
from pathlib import Path
from typing import Any, ClassVar, Iterable, Literal, Sequence, TypeVar

from asr.errors import TokenError
from asr.runtime.tokens import BLANK, SOS_EOS, SPECIAL_SYMBOLS, TOKENS_FILE, UNK, WORD_BOUNDARY, TokenTable
from asr.text import normalize_transcript

BPE_MODEL_FILE = "bpe.model"

OnUnknown = Literal["error", "unk"]
_TokenizerT = TypeVar("_TokenizerT", bound="Tokenizer")

_BLOB_MAGIC = "asr-tokenizer"
_BLOB_VERSION = 1


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
