"""Token tables and tokenizers: round trips, tokens.txt format and checks, OOV, blobs."""

from __future__ import annotations

import random
import subprocess
import sys
from pathlib import Path

import pytest

from asr.errors import TokenError
from asr.runtime.tokens import BLANK, SOS_EOS, UNK, WORD_BOUNDARY, TokenTable
from asr.text import normalize_transcript
from asr.training.tokenizers import BpeTokenizer, CharTokenizer, Tokenizer, load_tokenizer

REPO = Path(__file__).resolve().parents[1]
BPE_VOCAB = 120


def _sentences(count: int, seed: int) -> list[str]:
    """Mixed-case sentences with punctuation, drawn from a fixed random word list."""
    rng = random.Random(seed)
    letters = "abcdefghijklmnopqrstuvwxyz"
    words = ["".join(rng.choices(letters, k=rng.randint(1, 7))) for _ in range(150)]
    words += ["it's", "o'clock", "Hello", "WORLD", "don't"]
    punctuation = ["", "", "", ",", ".", "!", "?", ";"]
    return [
        " ".join(rng.choice(words) + rng.choice(punctuation) for _ in range(rng.randint(1, 12)))
        for _ in range(count)
    ]


CORPUS = _sentences(300, seed=0)


@pytest.fixture(scope="module")
def char_tokenizer() -> CharTokenizer:
    return CharTokenizer.build(CORPUS)


@pytest.fixture(scope="module")
def bpe_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("bpe")
    BpeTokenizer.train(CORPUS, vocab_size=BPE_VOCAB, model_dir=directory)
    return directory


@pytest.fixture(scope="module")
def bpe_tokenizer(bpe_dir: Path) -> BpeTokenizer:
    return BpeTokenizer.load(bpe_dir / "bpe.model")


@pytest.fixture(params=["char", "bpe"])
def tokenizer(
    request: pytest.FixtureRequest, char_tokenizer: CharTokenizer, bpe_tokenizer: BpeTokenizer
) -> Tokenizer:
    return char_tokenizer if request.param == "char" else bpe_tokenizer


# ---- round trips -------------------------------------------------------------


def test_encode_decode_round_trip_gives_normalised_text(tokenizer: Tokenizer) -> None:
    for text in CORPUS + _sentences(100, seed=1):
        if tokenizer.unknown_characters(text):
            continue  # held-out sentences may use letters the corpus lacks
        ids = tokenizer.encode(text)
        assert tokenizer.decode(ids) == normalize_transcript(text)


def test_encode_never_produces_blank(tokenizer: Tokenizer) -> None:
    for text in CORPUS:
        assert TokenTable.blank_id not in tokenizer.encode(text)
    assert TokenTable.blank_id not in tokenizer.encode("zzq xq", on_unknown="unk")


def test_encode_empty_text(tokenizer: Tokenizer) -> None:
    assert tokenizer.encode("") == []
    assert tokenizer.encode(" ,.! ") == []
    assert tokenizer.decode([]) == ""


def test_blob_round_trip(tokenizer: Tokenizer) -> None:
    blob = tokenizer.to_bytes()
    for restored in (type(tokenizer).from_bytes(blob), load_tokenizer(blob)):
        assert type(restored) is type(tokenizer)
        assert restored.token_table == tokenizer.token_table
        assert [restored.encode(t) for t in CORPUS[:50]] == [tokenizer.encode(t) for t in CORPUS[:50]]


def test_blob_of_other_kind_or_garbage_is_rejected(
    char_tokenizer: CharTokenizer, bpe_tokenizer: BpeTokenizer
) -> None:
    with pytest.raises(TokenError, match="holds a bpe tokenizer"):
        CharTokenizer.from_bytes(bpe_tokenizer.to_bytes())
    with pytest.raises(TokenError, match="not a tokenizer blob"):
        load_tokenizer(b"\x80\x03pickle")
    blob = char_tokenizer.to_bytes().replace(b"/1 ", b"/9 ", 1)
    with pytest.raises(TokenError, match="version 9"):
        load_tokenizer(blob)


# ---- layouts -----------------------------------------------------------------


def test_char_layout(char_tokenizer: CharTokenizer) -> None:
    symbols = char_tokenizer.token_table.symbols
    assert symbols[:3] == (BLANK, UNK, WORD_BOUNDARY)
    assert list(symbols[3:]) == sorted(set("".join(normalize_transcript(t) for t in CORPUS)) - {" "})
    assert char_tokenizer.unk_id == 1


def test_bpe_layout_and_vocab_size(bpe_dir: Path, bpe_tokenizer: BpeTokenizer) -> None:
    assert bpe_tokenizer.vocab_size == BPE_VOCAB
    assert bpe_tokenizer.token_table.symbols[:3] == (BLANK, SOS_EOS, UNK)
    assert TokenTable.read(bpe_dir / "tokens.txt") == bpe_tokenizer.token_table
    assert len((bpe_dir / "tokens.txt").read_text(encoding="utf-8").splitlines()) == BPE_VOCAB


def test_bpe_training_is_deterministic(tmp_path: Path, bpe_tokenizer: BpeTokenizer) -> None:
    again = BpeTokenizer.train(CORPUS, vocab_size=BPE_VOCAB, model_dir=tmp_path)
    assert again.to_bytes() == bpe_tokenizer.to_bytes()


def test_bpe_vocab_too_large_names_largest_that_works(tmp_path: Path) -> None:
    texts = ["the cat sat on the mat", "a dog"]
    with pytest.raises(TokenError, match=r"largest that works is \d+") as caught:
        BpeTokenizer.train(texts, vocab_size=500, model_dir=tmp_path)
    largest = int(str(caught.value).split("largest that works is ")[1].split(":")[0])
    assert BpeTokenizer.train(texts, vocab_size=largest, model_dir=tmp_path).vocab_size == largest


def test_bpe_vocab_too_small_names_smallest(tmp_path: Path) -> None:
    with pytest.raises(TokenError, match=r"use vocab_size >= \d+"):
        BpeTokenizer.train(["the cat sat on the mat"], vocab_size=5, model_dir=tmp_path)


def test_empty_corpus_is_rejected(tmp_path: Path) -> None:
    with pytest.raises(TokenError, match="empty after normalisation"):
        CharTokenizer.build(["", "?!"])
    with pytest.raises(TokenError, match="empty after normalisation"):
        BpeTokenizer.train(["..."], vocab_size=10, model_dir=tmp_path)


def test_bpe_load_errors(tmp_path: Path) -> None:
    with pytest.raises(TokenError, match="no such sentencepiece model"):
        BpeTokenizer.load(tmp_path / "missing.model")
    corrupt = tmp_path / "bpe.model"
    corrupt.write_bytes(b"not a model")
    with pytest.raises(TokenError, match=r"bpe\.model: not a sentencepiece model"):
        BpeTokenizer.load(corrupt)


# ---- unknown characters --------------------------------------------------------


def test_unknown_characters_raise_by_default() -> None:
    tokenizer = CharTokenizer.build(["abc cab"])
    with pytest.raises(TokenError, match=r"'DZ'.*position 3 .*on_unknown='unk'"):
        tokenizer.encode("ab, dz")


def test_unknown_characters_as_unk_are_countable() -> None:
    tokenizer = CharTokenizer.build(["abc cab"])
    ids = tokenizer.encode("ab dz d", on_unknown="unk")
    assert ids == [
        tokenizer.token_table.id_of(s) for s in ["A", "B", WORD_BOUNDARY, UNK, UNK, WORD_BOUNDARY, UNK]
    ]
    assert ids.count(tokenizer.unk_id) == 3
    assert tokenizer.unknown_characters("ab dz d") == {"D": 2, "Z": 1}
    assert tokenizer.decode(ids) == "AB"  # <unk> never reaches text


def test_bpe_unknown_characters(tmp_path: Path) -> None:
    tokenizer = BpeTokenizer.train(["hello world"] * 20, vocab_size=20, model_dir=tmp_path)
    with pytest.raises(TokenError, match="'QZ'"):
        tokenizer.encode("hello qqz world")
    ids = tokenizer.encode("hello qqz world", on_unknown="unk")
    assert ids.count(tokenizer.unk_id) == 1  # sentencepiece folds the run into one <unk>
    assert tokenizer.decode(ids).split() == ["HELLO", "WORLD"]


def test_bad_on_unknown_value(char_tokenizer: CharTokenizer) -> None:
    with pytest.raises(TokenError, match="on_unknown"):
        char_tokenizer.encode("a", on_unknown="skip")  # type: ignore[arg-type]


# ---- tokens.txt ------------------------------------------------------------------


def test_tokens_txt_bytes_and_round_trip(tmp_path: Path) -> None:
    table = CharTokenizer.build(["ab c'"]).token_table
    path = tmp_path / "tokens.txt"
    table.write(path)
    assert path.read_bytes() == "<blk> 0\n<unk> 1\n▁ 2\n' 3\nA 4\nB 5\nC 6\n".encode("utf-8")
    assert TokenTable.read(path) == table


def test_save_writes_loadable_files(tmp_path: Path, char_tokenizer: CharTokenizer) -> None:
    char_tokenizer.save(tmp_path / "char")
    assert CharTokenizer(TokenTable.read(tmp_path / "char" / "tokens.txt")).token_table == (
        char_tokenizer.token_table
    )


def test_tokens_txt_tolerates_order_and_blank_lines(tmp_path: Path) -> None:
    path = tmp_path / "tokens.txt"
    path.write_text("<blk> 0\n\nB 2\nA 1\n\n", encoding="utf-8")
    assert TokenTable.read(path).symbols == (BLANK, "A", "B")


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("", r"tokens\.txt: no tokens"),
        ("\n  \n", r"tokens\.txt: no tokens"),
        ("<blk> 0\nA\n", r"tokens\.txt:2: expected `symbol id`"),
        ("<blk> 0\nA 1 extra\n", r"tokens\.txt:2: expected `symbol id`"),
        ("<blk> 0\nA one\n", r"tokens\.txt:2: expected `symbol id`"),
        ("<blk> 0\nA -1\n", r"tokens\.txt:2: expected `symbol id`"),
        ("<blk> 0\nA 1\nA 2\n", r"tokens\.txt:3: symbol 'A' is already at .*tokens\.txt:2;"),
        ("<blk> 0\nA 1\nB 1\n", r"tokens\.txt:3: id 1 is already used on line 2"),
        ("<blk> 0\nA 1\nB 3\n", r"tokens\.txt: ids must be 0\.\.2 without gaps, but id 2 is missing \(line 3"),
        ("A 1\nB 2\n", r"id 0 is missing"),
        ("A 0\n<blk> 1\n", r"tokens\.txt:1: 'A' has id 0, which must be the blank <blk>"),
    ],
)
def test_bad_tokens_txt(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "tokens.txt"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(TokenError, match=message):
        TokenTable.read(path)


def test_tokens_txt_missing_or_not_utf8(tmp_path: Path) -> None:
    with pytest.raises(TokenError, match="does not exist"):
        TokenTable.read(tmp_path / "tokens.txt")
    with pytest.raises(TokenError, match="is a directory"):
        TokenTable.read(tmp_path)
    (tmp_path / "tokens.txt").write_bytes(b"<blk> 0\n\xff\xfe 1\n")
    with pytest.raises(TokenError, match="not UTF-8"):
        TokenTable.read(tmp_path / "tokens.txt")


def test_table_constructor_checks_symbols(bpe_tokenizer: BpeTokenizer) -> None:
    with pytest.raises(TokenError, match="at least the blank"):
        TokenTable(())
    with pytest.raises(TokenError, match="has whitespace"):
        TokenTable((BLANK, "a b"))
    with pytest.raises(TokenError, match="not a character token table"):
        CharTokenizer(bpe_tokenizer.token_table)


def test_table_lookups_and_bad_ids(char_tokenizer: CharTokenizer) -> None:
    table = char_tokenizer.token_table
    assert table.id_of(WORD_BOUNDARY) == 2
    with pytest.raises(TokenError, match="not in this token table"):
        table.id_of("<nope>")
    for bad in (table.vocab_size, -1):
        with pytest.raises(TokenError, match=f"token id {bad} is outside"):
            table.decode([3, bad])


# ---- decoding agrees everywhere ------------------------------------------------------


def _sherpa_onnx_text(symbols: tuple[str, ...], ids: list[int]) -> str:
    """sherpa-onnx's rule, written from its C++: symbol-table.cc turns a leading ▁ into a
    space; online-recognizer-transducer-impl.h skips <unk> and joins; Python strips."""
    pieces = [" " + s[1:] if s.startswith(WORD_BOUNDARY) else s for s in symbols]
    return "".join(pieces[i] for i in ids if symbols[i] != UNK).strip()


def test_table_decode_matches_bpe_sentencepiece_and_sherpa_onnx(
    bpe_dir: Path, bpe_tokenizer: BpeTokenizer
) -> None:
    import sentencepiece

    processor = sentencepiece.SentencePieceProcessor(model_file=str(bpe_dir / "bpe.model"))
    table = TokenTable.read(bpe_dir / "tokens.txt")
    rng = random.Random(7)
    # Ids a decoder can emit: anything but blank and <sos/eos>.
    emittable = range(2, bpe_tokenizer.vocab_size)
    for _ in range(200):
        ids = rng.choices(emittable, k=rng.randint(0, 15))
        text = table.decode(ids)
        assert text == bpe_tokenizer.decode(ids)
        assert text == _sherpa_onnx_text(table.symbols, ids)
        if bpe_tokenizer.unk_id not in ids:  # sentencepiece writes <unk> as " ⁇ "
            assert text == processor.decode(ids).strip()  # it strips only the leading space


def test_char_decode_matches_sherpa_onnx(char_tokenizer: CharTokenizer) -> None:
    symbols = char_tokenizer.token_table.symbols
    rng = random.Random(8)
    for _ in range(200):
        ids = rng.choices(range(1, len(symbols)), k=rng.randint(0, 15))
        assert char_tokenizer.decode(ids) == _sherpa_onnx_text(symbols, ids)


# ---- dependencies ----------------------------------------------------------------------


def test_import_does_not_load_sentencepiece() -> None:
    result = subprocess.run(
        [sys.executable, "-c", "import asr.training.tokenizers, sys; print('sentencepiece' in sys.modules)"],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
    )
    assert result.stdout.strip() == "False"
