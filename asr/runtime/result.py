"""What a stream has recognised (`RecognitionResult`), built incrementally as tokens come.

A stream that is never reset (a long file, a live input without endpoints) has a
hypothesis that grows for hours, and its result is read after every chunk. Building
the result from the whole hypothesis on every read made each chunk cost more than
the last (issue 14: CPU per simulated minute went from 0.87 s to 3.10 s over an
hour). `ResultBuilder` instead keeps the best path decoded so far and, on each read,
processes only the tokens that are new since the previous read (or that replace a
suffix, when beam search's best hypothesis switches). The materialised columns are
kept in frozen blocks of BLOCK tokens plus a short tail, so a read copies O(L / BLOCK
+ BLOCK) references; the token tuples of a result are joined only when asked for.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from typing import Generic, Sequence, TypeVar

from asr.errors import TokenError
from asr.runtime.token_path import EMPTY_PATH, TokenPath
from asr.runtime.tokens import SPECIAL_SYMBOLS, WORD_BOUNDARY, TokenTable

BLOCK = 256  # tokens per frozen block: a read copies len / BLOCK block references plus < BLOCK tail items
T = TypeVar("T")


@dataclass(frozen=True)
class Word:
    """One word of a result: its text and when it was spoken, in seconds from the stream's start."""

    word: str
    start: float  # when its first token was emitted
    end: float  # one encoder frame after its last token was emitted, but not past the next word's start
    # The mean probability of the word's tokens (a lone boundary token "▁" belongs to no word);
    # the mean rather than the minimum, so one doubtful letter of a long word does not sink it.
    # None when the result carries no token probabilities.
    confidence: float | None = None

    def to_dict(self, digits: int = 3) -> dict[str, object]:
        out: dict[str, object] = {"word": self.word, "start": round(self.start, digits), "end": round(self.end, digits)}
        if self.confidence is not None:
            out["confidence"] = round(self.confidence, digits)
        return out


def words_of(tokens: Sequence[str], timestamps: Sequence[float], frame_shift: float,
             log_probs: Sequence[float] = ()) -> tuple[Word, ...]:
    """The words of token symbols (U,) emitted at `timestamps` (U,); `frame_shift`: seconds per encoder frame.

    log_probs: (U,) each token's log-probability, for the words' confidence (empty: none).

    A word starts at a symbol with a leading word boundary (sentencepiece's "▁": BPE
    "▁he", or the char tables' "▁" alone) or at the first symbol; the boundary itself
    is never a word nor part of one, and special symbols (<unk>, ...) add nothing, as
    in the text (TokenTable.decode), so the words are the text's words. A token carries
    only its emission time, so a word ends one frame (the emitting frame) after its
    last token, or at the next word's start when that comes sooner (several tokens
    can be emitted on one frame).
    """
    pieces: list[list[str]] = []  # the text pieces of each word
    starts: list[float] = []  # when each word's first token was emitted
    lasts: list[float] = []  # when each word's last token was emitted
    probs: list[list[float]] = []  # the probabilities of each word's tokens
    open_word = False  # whether the next plain symbol continues the last word
    with_probs = len(log_probs) == len(tokens)
    for u, (symbol, time) in enumerate(zip(tokens, timestamps)):
        prob = math.exp(log_probs[u]) if with_probs else 0.0
        if symbol in SPECIAL_SYMBOLS:
            continue
        if symbol.startswith(WORD_BOUNDARY):
            symbol = symbol[len(WORD_BOUNDARY):]
            open_word = False
        if not symbol:
            continue
        if open_word:
            pieces[-1].append(symbol)
            lasts[-1] = time
            probs[-1].append(prob)
        else:
            pieces.append([symbol])
            starts.append(time)
            lasts.append(time)
            probs.append([prob])
            open_word = True
    ends = [last + frame_shift for last in lasts]
    for i in range(len(ends) - 1):
        ends[i] = max(lasts[i], min(ends[i], starts[i + 1]))
    confidences = [sum(p) / len(p) if with_probs else None for p in probs]
    return tuple(Word("".join(p), start, end, c) for p, start, end, c in zip(pieces, starts, ends, confidences))


@dataclass(frozen=True)
class Alternative:
    """One entry of an n-best list: a hypothesis's text and score."""

    text: str
    score: float  # log-probability of the hypothesis (hotword bonuses of finished matches included)
    token_ids: tuple[int, ...]

    def to_dict(self, digits: int = 4) -> dict[str, object]:
        return {"text": self.text, "score": round(self.score, digits)}


class _Frozen(Generic[T]):
    """An immutable snapshot of a BlockList: its frozen blocks and a copy of its tail."""

    __slots__ = ("_blocks", "_tail", "_joined")

    def __init__(self, blocks: tuple[tuple[T, ...], ...], tail: tuple[T, ...]) -> None:
        self._blocks = blocks
        self._tail = tail
        self._joined: tuple[T, ...] | None = None

    def to_tuple(self) -> tuple[T, ...]:
        """All items (O(length), once per snapshot)."""
        if self._joined is None:
            self._joined = tuple(itertools.chain(itertools.chain.from_iterable(self._blocks), self._tail))
        return self._joined


class BlockList(Generic[T]):
    """An append-mostly list stored as frozen blocks of BLOCK items plus a mutable tail.

    Snapshots share the frozen blocks, so taking one costs O(len / BLOCK + BLOCK),
    not O(len); truncation (beam search changing its mind) rebuilds at most one block.
    """

    def __init__(self) -> None:
        self.blocks: list[tuple[T, ...]] = []
        self.tail: list[T] = []
        self.copies = 0  # references copied by snapshots: what tests bound to prove reads stay cheap

    def __len__(self) -> int:
        return len(self.blocks) * BLOCK + len(self.tail)

    def __getitem__(self, index: int) -> T:
        block, offset = divmod(index, BLOCK)
        return self.blocks[block][offset] if block < len(self.blocks) else self.tail[offset]

    def append(self, item: T) -> None:
        self.tail.append(item)
        if len(self.tail) == BLOCK:
            self.blocks.append(tuple(self.tail))
            self.tail = []

    def truncate(self, length: int) -> None:
        """Keep the first `length` items."""
        block, offset = divmod(length, BLOCK)
        if block < len(self.blocks):
            self.tail = list(self.blocks[block][:offset])
            del self.blocks[block:]
        else:
            del self.tail[offset:]

    def snapshot(self) -> _Frozen[T]:
        self.copies += len(self.blocks) + len(self.tail)
        return _Frozen(tuple(self.blocks), tuple(self.tail))


class RecognitionResult:
    """What a stream has recognised in its current segment; immutable, compared by value.

    The one result schema of the runtime (sherpa-onnx's names where it has them);
    `to_dict` is what `asr transcribe` and `asr live` write as JSON:
        text        the tokens as text (tokens.txt decoding, sherpa-onnx style)
        tokens      symbol of each token
        token_ids   id of each token (Python only)
        timestamps  seconds from the stream's start at which each token was emitted
        words       each word with its start and end (`Word`; to_dict: {word, start, end})
        ys_probs    log-probability of each token where it was emitted (sherpa-onnx's name)
        words       each word with its start, end and confidence (mean of its tokens' probabilities)
        segment     index of this segment (reset() after a segment with tokens starts the next)
        start_time  seconds from the stream's start at which this segment begins
        end_time    seconds from the stream's start up to which it has been decoded
        nbest       beam search's alternatives (`Alternative`), only when asked for (Stream.nbest)
    The token tuples (and the words) are built when first read, so reading only
    `text` after every chunk stays cheap on a long stream. `frame_shift` (seconds per
    encoder frame) sets how long a word's last token lasts.
    """

    __slots__ = ("text", "segment", "start_time", "end_time", "frame_shift", "nbest", "_ids", "_symbols", "_probs",
                 "_seconds")

    def __init__(
        self,
        text: str,
        token_ids: Sequence[int] | _Frozen[int],
        tokens: Sequence[str] | _Frozen[str],
        timestamps: Sequence[float] | _Frozen[float],
        segment: int,
        start_time: float,
        end_time: float | None = None,
        frame_shift: float = 0.0,
        ys_probs: Sequence[float] | _Frozen[float] = (),
        nbest: Sequence[Alternative] = (),
    ) -> None:
        self.text = text
        self.segment = segment
        self.start_time = start_time
        self.end_time = start_time if end_time is None else end_time
        self.frame_shift = frame_shift
        self.nbest = tuple(nbest)
        self._ids = token_ids if isinstance(token_ids, _Frozen) else _Frozen((), tuple(token_ids))
        self._symbols = tokens if isinstance(tokens, _Frozen) else _Frozen((), tuple(tokens))
        self._probs = ys_probs if isinstance(ys_probs, _Frozen) else _Frozen((), tuple(ys_probs))
        self._seconds = timestamps if isinstance(timestamps, _Frozen) else _Frozen((), tuple(timestamps))

    def __setattr__(self, name: str, value: object) -> None:
        if hasattr(self, "_seconds"):  # set last in __init__: from then on the result is frozen
            raise AttributeError(f"RecognitionResult is immutable; cannot set {name}")
        object.__setattr__(self, name, value)

    @property
    def tokens(self) -> tuple[str, ...]:
        return self._symbols.to_tuple()

    @property
    def token_ids(self) -> tuple[int, ...]:
        return self._ids.to_tuple()

    @property
    def timestamps(self) -> tuple[float, ...]:
        return self._seconds.to_tuple()

    @property
    def ys_probs(self) -> tuple[float, ...]:
        """Each token's log-probability (the joiner's log-softmax where it was emitted); () if not known."""
        return self._probs.to_tuple()

    @property
    def words(self) -> tuple[Word, ...]:
        """The words of the text with their times (words_of: O(tokens) per read, so read it per segment)."""
        return words_of(self.tokens, self.timestamps, self.frame_shift, self.ys_probs)

    def with_nbest(self, nbest: Sequence[Alternative]) -> RecognitionResult:
        """This result with an n-best list attached."""
        return RecognitionResult(self.text, self._ids, self._symbols, self._seconds, self.segment, self.start_time,
                                 self.end_time, self.frame_shift, self._probs, nbest)

    def to_dict(self, digits: int = 3) -> dict[str, object]:
        """The JSON fields of the schema, times rounded to `digits` decimals (milliseconds)."""
        return {
            "text": self.text,
            "tokens": list(self.tokens),
            "timestamps": [round(t, digits) for t in self.timestamps],
            "ys_probs": [round(p, digits + 1) for p in self.ys_probs],
            "words": [word.to_dict(digits) for word in self.words],
            "segment": self.segment,
            "start_time": round(self.start_time, digits),
            "end_time": round(self.end_time, digits),
            **({"nbest": [a.to_dict() for a in self.nbest]} if self.nbest else {}),
        }

    def _key(self) -> tuple[object, ...]:
        return (self.text, self.tokens, self.token_ids, self.timestamps, self.ys_probs, self.segment, self.start_time,
                self.end_time, self.frame_shift, self.nbest)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, RecognitionResult):
            return NotImplemented
        return self._key() == other._key()

    def __hash__(self) -> int:
        return hash(self._key())

    def __repr__(self) -> str:
        return (
            f"RecognitionResult(text={self.text!r}, tokens={self.tokens!r}, token_ids={self.token_ids!r}, "
            f"timestamps={self.timestamps!r}, segment={self.segment!r}, start_time={self.start_time!r}, "
            f"end_time={self.end_time!r}, frame_shift={self.frame_shift!r}, ys_probs={self.ys_probs!r}, "
            f"nbest={self.nbest!r})"
        )


class ResultBuilder:
    """The result of one segment, kept in step with its best path one token at a time."""

    def __init__(self, table: TokenTable, frame_ms: float, segment: int, start_frame: int) -> None:
        self._table = table
        self._frame_ms = frame_ms  # ms per encoder frame: seconds are frames * ms / 1000, exactly as before
        self._segment = segment
        self._start_frame = start_frame
        self._start_time = start_frame * frame_ms / 1000.0
        self._path: TokenPath = EMPTY_PATH
        self._nodes: BlockList[TokenPath] = BlockList()  # _nodes[i] is the prefix of length i + 1
        self._ids: BlockList[int] = BlockList()
        self._symbols: BlockList[str] = BlockList()
        self._seconds: BlockList[float] = BlockList()
        self._probs: BlockList[float] = BlockList()
        self._pieces: BlockList[str] = BlockList()  # each token's text (tokens.txt decoding)
        self._block_texts: list[str] = []  # "".join of each frozen block of _pieces
        self._result: RecognitionResult | None = None
        self._num_frames = 0  # encoder frames of the segment when _result was built
        self.processed = 0  # tokens materialised so far: linear in the tokens, whatever the reads

    def result(self, path: TokenPath, num_frames: int = 0) -> RecognitionResult:
        """The result for best path `path` after `num_frames` encoder frames of the segment.

        The previous call's object when neither changed.
        """
        if path is not self._path or num_frames != self._num_frames or self._result is None:
            self._follow(path)
            self._num_frames = num_frames
            self._result = self._build()
        return self._result

    def _follow(self, path: TokenPath) -> None:
        """Make the materialised columns hold `path`: drop what it does not share, add what is new."""
        new: list[TokenPath] = []
        node = path
        while node.length > len(self._nodes) or (node.length and self._nodes[node.length - 1] is not node):
            new.append(node)
            node = node.previous  # type: ignore[assignment]  # length > 0: not the empty path
        if node.length < len(self._nodes):
            for column in (self._nodes, self._ids, self._symbols, self._seconds, self._probs, self._pieces):
                column.truncate(node.length)
            del self._block_texts[len(self._pieces.blocks):]
        symbols, pieces = self._table.symbols, self._table.pieces
        for node in reversed(new):
            if not 0 <= node.token < len(symbols):
                raise TokenError(
                    f"token id {node.token} is outside 0..{len(symbols) - 1}: the model and tokens.txt do "
                    "not match; use the tokens.txt exported with this model"
                )
            self._nodes.append(node)
            self._ids.append(node.token)
            self._symbols.append(symbols[node.token])
            self._seconds.append((self._start_frame + node.frame) * self._frame_ms / 1000.0)
            self._probs.append(node.log_prob)
            blocks = len(self._pieces.blocks)
            self._pieces.append(pieces[node.token])
            if len(self._pieces.blocks) > blocks:
                self._block_texts.append("".join(self._pieces.blocks[-1]))
        self.processed += len(new)
        self._path = path

    def _build(self) -> RecognitionResult:
        text = ("".join(self._block_texts) + "".join(self._pieces.tail)).strip()
        return RecognitionResult(
            text,
            self._ids.snapshot(),
            self._symbols.snapshot(),
            self._seconds.snapshot(),
            self._segment,
            self._start_time,
            (self._start_frame + self._num_frames) * self._frame_ms / 1000.0,
            self._frame_ms / 1000.0,
            self._probs.snapshot(),
        )

    @property
    def copies(self) -> int:
        """References copied into results so far (each column counted once)."""
        return self._ids.copies
