"""`asr train-lm`: train a token LM for shallow fusion, save it, and export lm.onnx beside it.

    asr train-lm --text FILE... [--wordnet] [--arpa FILE] [--data DIR --subsets synth-train] [--synth-sentences N]
                 --exp-dir DIR [--kind transformer|lstm | --init-from LM_DIR] [--tokens MODEL_DIR] [--max-minutes M]

Training is asr.training.lm_train (text and tokenizer: asr.training.lm_text), the export
and its check against torch export.lm_export; this command runs one after the other. The
exp dir then holds lm.pt (config, weights, token table), lm.onnx and tokens.txt: the dir
that `--lm` takes on transcribe, live and eval, and words.txt: every word of the text with its
count (asr.runtime.lexicon: the words a non-word penalty keeps search to). `--init-from LM_DIR`
starts from that LM's weights instead of random ones (more training, or other text); its
architecture is kept, so an architecture flag that disagrees with it is an error, and its
words.txt is added to the new one. `--words-only` trains nothing: it adds the text's words to
EXP/words.txt, for an LM trained before words.txt was written. `--word-trigram` also counts a
word trigram over the text (asr.training.word_ngram) and writes EXP/word_lm.npz, which
rescores each segment's n-best (asr.runtime.word_rescore); with `--words-only`, it and words.txt
are all that is written.
"""

from __future__ import annotations

import argparse
import math
import time
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING, Sequence

from asr.errors import ConfigError
from asr.options import MAX_THREADS, check_output_dir, float_in, int_in
from asr.runtime.default_model import DEFAULT_MODEL_DIR
from asr.training.wordnet_text import WORDNET_DIR
from models.lm_config import LM_KINDS, LmConfig

if TYPE_CHECKING:
    from asr.training.lm_text import LmText

# Architecture flag -> LmConfig field. The flags default to None (a new LM then takes LmConfig's default), so
# that --init-from can tell a flag given on the command line, checked against the checkpoint, from one that was not.
ARCHITECTURE_FLAGS = {"kind": "kind", "dim": "dim", "layers": "num_layers", "heads": "num_heads", "context": "context"}


def add_train_lm_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--text", type=Path, nargs="*", default=[], metavar="FILE", help="text files, one sentence a line")
    p.add_argument("--wordnet", type=Path, nargs="?", const=WORDNET_DIR, default=None, metavar="DIR",
                   help=f"add WordNet's usage examples, everyday English (DIR: its data files; default {WORDNET_DIR}, "
                        "Debian's wordnet-base)")
    p.add_argument("--arpa", type=Path, default=None, metavar="FILE",
                   help="add sentences drawn from this word n-gram LM in ARPA format, general English (see "
                        "--arpa-sentences)")
    p.add_argument("--arpa-sentences", type=int_in(1, 10_000_000), default=200_000, metavar="N",
                   help="sentences to draw from --arpa (default: 200000)")
    p.add_argument("--data", type=Path, default=None, help="corpus root holding LibriSpeech/<subset>/ (with --subsets)")
    p.add_argument("--subsets", default="", help="training subsets whose transcripts to add, e.g. synth-train")
    p.add_argument("--synth-sentences", type=int_in(0, 10_000_000), default=0, metavar="N",
                   help="add N sentences of the synthetic grammar (synth-train's text bucket only)")
    p.add_argument("--exp-dir", type=Path, required=True, help="where lm.pt, lm.onnx and tokens.txt go")
    p.add_argument("--init-from", type=Path, default=None, metavar="LM_DIR",
                   help="start from the weights of the LM there (its lm.pt) and keep its architecture")
    p.add_argument("--kind", choices=LM_KINDS, help="causal Transformer or the cheaper LSTM (default: transformer)")
    p.add_argument("--tokens", type=Path, default=DEFAULT_MODEL_DIR,
                   help="the acoustic model's tokenizer: its model dir, exp dir or tokens.txt (default: the shipped model)")
    p.add_argument("--dim", type=int_in(8, 4096), help="embedding and hidden size (default: 128)")
    p.add_argument("--layers", type=int_in(1, 48), help="layers (default: 2)")
    p.add_argument("--heads", type=int_in(1, 64), help="transformer: attention heads (default: 4)")
    p.add_argument("--context", type=int_in(1, 4096), help="transformer: tokens attended to (default: 64)")
    p.add_argument("--batch-size", type=int_in(1, 4096), default=32, help="sentences per step")
    p.add_argument("--lr", type=float_in(0, 1, low_open=True), default=2e-3, help="peak learning rate")
    p.add_argument("--max-steps", type=int_in(1, 10_000_000), default=100_000, help="stop after N steps")
    p.add_argument("--max-minutes", type=float_in(0, 100_000, low_open=True), default=10.0, help="stop after M minutes")
    p.add_argument("--num-threads", type=int_in(1, MAX_THREADS), default=1,
                   help="torch CPU threads (1 is fastest per core on a small, busy machine)")
    p.add_argument("--seed", type=int_in(0, 2**31 - 1), default=0, help="same seed and text, same sentences drawn")
    p.add_argument("--int8", action="store_true",
                   help="write lm.onnx with int8 weights (a quarter of the size; checked against torch)")
    p.add_argument("--words-only", action="store_true",
                   help="train nothing: add the words of the text to EXP_DIR/words.txt (for an LM trained before "
                        "words.txt was written; give the text flags it was trained with)")
    p.add_argument("--word-trigram", action="store_true",
                   help="also count a word trigram over the text and write EXP_DIR/word_lm.npz (for --word-lm-weight)")
    p.add_argument("--word-trigram-min-count", type=int_in(1, 1_000_000), default=2, metavar="N",
                   help="keep the word trigram's bigrams and trigrams seen at least N times (default: 2)")


def run_train_lm_command(args: argparse.Namespace) -> int:
    check_output_dir(args.exp_dir, "--exp-dir")  # before minutes of training, not after
    if args.words_only:  # nothing to train or export
        return write_words_only(args)
    # torch (training, export) only once the command runs: `asr --help` and the parser stay light.
    import torch

    from asr.runtime.lm import LM_CHECKPOINT, LM_ONNX
    from asr.runtime.tokens import TOKENS_FILE
    from asr.training.lm_text import encode_sentences, load_model_tokenizer
    from asr.training.lm_train import LmTrainOptions, dev_loss, load_lm, save_lm, split_held_out, train_lm
    from export.lm_export import export_lm
    from models.lm import build_lm

    torch.manual_seed(args.seed)
    torch.set_num_threads(args.num_threads)
    tokenizer = load_model_tokenizer(args.tokens)
    table = tokenizer.token_table
    if args.init_from is not None:  # the checkpoint and the flags are checked before the text is read
        model = load_lm(args.init_from, table)
        check_architecture_flags(args, model.config)
    else:
        model = build_lm(new_lm_config(args, table.vocab_size, table.blank_id))
    text = gather_args_text(args)
    encoded = encode_sentences(tokenizer, text.sentences)
    train, dev = split_held_out(encoded, args.seed)
    print("text: " + ", ".join(f"{source} {n}" for source, n in text.counts.items())
          + f"; {len(train)} sentences to train, {len(dev)} held out, "
          f"{sum(map(len, train))} tokens", flush=True)
    options = LmTrainOptions(args.batch_size, args.lr, args.max_steps, args.max_minutes, args.seed)
    started = time.monotonic()
    steps = train_lm(model, train, options)
    loss = dev_loss(model, dev, args.batch_size)
    minutes = (time.monotonic() - started) / 60
    args.exp_dir.mkdir(parents=True, exist_ok=True)
    save_lm(args.exp_dir / LM_CHECKPOINT, model, table, steps, loss)
    table.write(args.exp_dir / TOKENS_FILE)
    write_words(args.exp_dir, text.sentences, args.init_from)
    if args.word_trigram:
        write_word_trigram(args.exp_dir, text.sentences, args.word_trigram_min_count)
    check = export_lm(model, table, args.exp_dir / LM_ONNX, loss, int8=args.int8)
    parameters = sum(p.numel() for p in model.parameters())
    matches = (f"matches torch to {check.fp32_log_prob:.1e}" if check.int8_prob is None else
               f"(int8 weights) matches torch to {check.int8_prob:.3f} in probability")
    print(f"{model.config.kind} LM, {parameters / 1e6:.2f}M parameters: {steps} steps in {minutes:.1f} min, dev loss "
          f"{loss:.3f} nats/token (perplexity {math.exp(loss):.2f}); {args.exp_dir / LM_ONNX} {matches}; "
          f"use it with --lm {args.exp_dir}")
    return 0


def write_words(exp_dir: Path, sentences: Sequence[str], also: Path | None) -> int:
    """EXP/words.txt: the words of `sentences`, plus those of `also`/words.txt where there is one; how many."""
    from asr.atomic_write import write_text_atomically
    from asr.runtime.lexicon import WORDS_FILE, read_word_counts, word_list_text

    counts = Counter(word for sentence in sentences for word in sentence.split())
    if also is not None and (also / WORDS_FILE).is_file():
        counts.update(read_word_counts(also / WORDS_FILE))
    write_text_atomically(exp_dir / WORDS_FILE, word_list_text(counts))
    return len(counts)


def gather_args_text(args: argparse.Namespace) -> LmText:
    """The sentences the text flags name (asr.training.lm_text.gather_text)."""
    from asr.training.lm_text import gather_text

    subsets = [s.strip() for s in args.subsets.split(",") if s.strip()]
    arpa = None if args.arpa is None else (args.arpa, args.arpa_sentences)
    return gather_text(args.text, args.data, subsets, args.synth_sentences, args.seed, wordnet=args.wordnet, arpa=arpa)


def write_words_only(args: argparse.Namespace) -> int:
    """`--words-only`: the text's words added to EXP/words.txt (created if need be), and the word trigram with
    --word-trigram; nothing trained."""
    from asr.runtime.lexicon import WORDS_FILE

    text = gather_args_text(args)
    args.exp_dir.mkdir(parents=True, exist_ok=True)
    words = write_words(args.exp_dir, text.sentences, args.exp_dir)
    print("text: " + ", ".join(f"{source} {n}" for source, n in text.counts.items())
          + f"; {args.exp_dir / WORDS_FILE} holds {words} words", flush=True)
    if args.word_trigram:
        write_word_trigram(args.exp_dir, text.sentences, args.word_trigram_min_count)
    return 0


def write_word_trigram(exp_dir: Path, sentences: Sequence[str], min_count: int) -> None:
    """EXP/word_lm.npz: the word trigram of `sentences`, n-grams seen fewer than `min_count` times pruned."""
    from asr.runtime.word_lm import WORD_LM_FILE
    from asr.training.word_ngram import count_word_trigram

    model = count_word_trigram(sentences, min_count)
    path = exp_dir / WORD_LM_FILE
    model.write(path)
    print(f"word trigram: {model.vocab_size} words, {len(model.bigram_keys)} bigrams, {len(model.trigram_keys)} "
          f"trigrams seen {min_count}+ times; {path} ({path.stat().st_size / 1e6:.1f} MB)", flush=True)


def new_lm_config(args: argparse.Namespace, vocab_size: int, boundary_id: int) -> LmConfig:
    """The architecture the flags ask for; a flag not given keeps LmConfig's default."""
    given = {field: getattr(args, flag) for flag, field in ARCHITECTURE_FLAGS.items() if getattr(args, flag) is not None}
    return LmConfig(vocab_size=vocab_size, boundary_id=boundary_id, **given)


def check_architecture_flags(args: argparse.Namespace, config: LmConfig) -> None:
    """ConfigError naming every architecture flag given with --init-from that disagrees with the checkpoint."""
    clashes = [f"--{flag} {getattr(args, flag)} (it has {getattr(config, field)})"
               for flag, field in ARCHITECTURE_FLAGS.items()
               if getattr(args, flag) is not None and getattr(args, flag) != getattr(config, field)]
    if clashes:
        raise ConfigError(f"--init-from {args.init_from}: that LM's architecture is kept, and {', '.join(clashes)} "
                          "disagree with it; leave those flags out")
