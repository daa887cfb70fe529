"""The text a token LM trains on, and the tokenizer it is written in.

Sources, in this order, one sentence each:
- user text files (`--text FILE...`): one sentence per line, normalised as transcripts are;
- WordNet's usage examples (`--wordnet`; asr.training.wordnet_text), everyday English;
- sentences drawn from a word n-gram LM (`--arpa FILE --arpa-sentences N`; asr.training.ngram_text),
  general English;
- transcripts of corpus subsets (`--data DIR --subsets synth-train`): the acoustic model's
  training text. Dev and test subsets are refused: an LM that has read the test sentences
  would make the fused WER a lie, and the fusion scale is chosen on dev;
- sentences of the synthetic grammar (`--synth-sentences N`), drawn only from the synth-train
  text bucket (asr.synth.corpus.text_subset) and never one of the everyday test or dev sentences:
  exactly the text `asr synth` may put in synth-train, so no dev or test sentence can occur.

Every sentence is encoded with the acoustic model's tokenizer (`--tokens`: a model dir, an
experiment dir or a tokens.txt), so the LM scores the symbols the transducer emits.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from asr.corpus.librispeech import load_subsets
from asr.errors import DataError, TokenError
from asr.runtime.tokens import TOKENS_FILE, TokenTable
from asr.synth.corpus import text_subset
from asr.synth.everyday import hand_written_transcripts
from asr.synth.sentences import default_generator
from asr.text import normalize_transcript
from asr.training.corpus import TOKENIZER_DIR
from asr.training.ngram_text import arpa_sentences
from asr.training.tokenizers import BPE_MODEL_FILE, BpeTokenizer, CharTokenizer, Tokenizer
from asr.training.wordnet_text import wordnet_examples

HELD_OUT_WORDS = ("dev", "test")  # subset names that must not train an LM (LibriSpeech's and synth's)
SYNTH_TRAIN = "synth-train"


@dataclass(frozen=True)
class LmText:
    """Sentences to train on, by source."""

    sentences: tuple[str, ...]  # normalised, non-empty
    counts: dict[str, int]  # source -> sentences taken from it


def read_text_file(path: Path) -> list[str]:
    """Non-empty normalised lines of a text file; DataError if it is missing or holds no words."""
    if not path.is_file():
        raise DataError(f"--text {path}: no such file; pass text files with one sentence per line")
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except UnicodeDecodeError as error:
        raise DataError(f"--text {path}: not UTF-8 text ({error}); convert it to UTF-8") from None
    sentences = [s for s in (normalize_transcript(line) for line in lines) if s]
    if not sentences:
        raise DataError(f"--text {path}: the file holds no words (empty, or nothing but punctuation and digits); "
                        "give it one sentence per line, or leave it out")
    return sentences


def corpus_transcripts(data: Path, subsets: Sequence[str]) -> list[str]:
    """Transcripts of training subsets; DataError for a dev or test subset."""
    held_out = [s for s in subsets if any(word in s for word in HELD_OUT_WORDS)]
    if held_out:
        raise DataError(f"--subsets {','.join(held_out)}: dev and test transcripts must not train the LM (its "
                        "scale is chosen on dev and its WER measured on test); use training subsets only")
    return [u.text for u in load_subsets(data, list(subsets)) if u.text]


def synth_sentences(count: int, seed: int) -> list[str]:
    """`count` grammar sentences of the synth-train text bucket, none an everyday test or dev sentence."""
    generator = default_generator()
    excluded = hand_written_transcripts()
    rng = np.random.default_rng([seed, 7919])  # its own stream: not the corpus plan of any subset
    sentences: list[str] = []
    while len(sentences) < count:
        transcript = generator.generate(rng).transcript
        if text_subset(transcript) == SYNTH_TRAIN and transcript not in excluded:
            sentences.append(transcript)
    return sentences


def gather_text(files: Sequence[Path], data: Path | None, subsets: Sequence[str], synth: int, seed: int,
                wordnet: Path | None = None, arpa: tuple[Path, int] | None = None) -> LmText:
    """All sentences from the five sources; DataError when there are none.

    `wordnet`: WordNet's data dir, or None; `arpa`: an ARPA file and how many sentences to draw from it, or None.
    """
    counts: dict[str, int] = {}
    sentences: list[str] = []
    for path in files:
        lines = read_text_file(path)
        counts[str(path)] = len(lines)
        sentences += lines
    if wordnet is not None:
        lines = wordnet_examples(wordnet)
        counts["WordNet examples"] = len(lines)
        sentences += lines
    if arpa is not None:
        lines = arpa_sentences(arpa[0], arpa[1], seed)
        counts[f"{arpa[0].name} samples"] = len(lines)
        sentences += lines
    if subsets:
        if data is None:
            raise DataError("--subsets needs --data, the corpus root holding LibriSpeech/<subset>/")
        lines = corpus_transcripts(data, subsets)
        counts[",".join(subsets)] = len(lines)
        sentences += lines
    if synth:
        lines = synth_sentences(synth, seed)
        counts["synthetic grammar"] = len(lines)
        sentences += lines
    if not sentences:
        raise DataError("no text to train the LM on; give --text FILE..., --wordnet, --arpa FILE, --data DIR "
                        "--subsets NAMES and/or --synth-sentences N")
    return LmText(tuple(sentences), counts)


def load_model_tokenizer(path: Path) -> Tokenizer:
    """The tokenizer of an acoustic model: from a model dir, an experiment dir or a tokens.txt file.

    Char tables need only tokens.txt; BPE tables need the bpe.model beside it (an
    experiment dir's tokenizer/ has both).
    """
    if path.is_dir() and (path / TOKENIZER_DIR).is_dir():
        path = path / TOKENIZER_DIR
    tokens = path / TOKENS_FILE if path.is_dir() else path
    if not tokens.is_file():
        raise TokenError(f"--tokens {path}: no tokens.txt there; pass the acoustic model's dir (what `asr export` "
                         "wrote), its experiment dir, or its tokens.txt")
    if (tokens.parent / BPE_MODEL_FILE).is_file():
        return BpeTokenizer.load(tokens.parent / BPE_MODEL_FILE)
    table = TokenTable.read(tokens)
    try:
        return CharTokenizer(table)
    except TokenError:
        raise TokenError(f"--tokens {path}: a BPE token table without its {BPE_MODEL_FILE}; pass the experiment "
                         "dir that trained the model (its tokenizer/ holds both)") from None


def encode_sentences(tokenizer: Tokenizer, sentences: Sequence[str]) -> list[list[int]]:
    """Token ids of each sentence (unknown characters as <unk>); sentences that encode to nothing are dropped."""
    encoded = (tokenizer.encode(s, on_unknown="unk") for s in sentences)
    return [ids for ids in encoded if ids]
