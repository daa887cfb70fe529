"""`asr train-lm`: train a token LM for shallow fusion, save it, and export lm.onnx beside it.

    asr train-lm --text FILE... [--data DIR --subsets synth-train] [--synth-sentences N]
                 --exp-dir DIR [--kind transformer|lstm] [--tokens MODEL_DIR] [--max-minutes M]

Training is asr.training.lm_train (text and tokenizer: asr.training.lm_text), the export
and its check against torch export.lm_export; this command runs one after the other. The
exp dir then holds lm.pt (config, weights, token table), lm.onnx and tokens.txt: the dir
that `--lm` takes on transcribe, live and eval.
"""

from __future__ import annotations

import argparse
import math
import time
from pathlib import Path

from asr.options import MAX_THREADS, check_output_dir, float_in, int_in
from asr.runtime.default_model import DEFAULT_MODEL_DIR
from models.lm_config import LM_KINDS, LmConfig


def add_train_lm_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--text", type=Path, nargs="*", default=[], metavar="FILE", help="text files, one sentence a line")
    p.add_argument("--data", type=Path, default=None, help="corpus root holding LibriSpeech/<subset>/ (with --subsets)")
    p.add_argument("--subsets", default="", help="training subsets whose transcripts to add, e.g. synth-train")
    p.add_argument("--synth-sentences", type=int_in(0, 10_000_000), default=0, metavar="N",
                   help="add N sentences of the synthetic grammar (synth-train's text bucket only)")
    p.add_argument("--exp-dir", type=Path, required=True, help="where lm.pt, lm.onnx and tokens.txt go")
    p.add_argument("--kind", choices=LM_KINDS, default="transformer", help="causal Transformer or the cheaper LSTM")
    p.add_argument("--tokens", type=Path, default=DEFAULT_MODEL_DIR,
                   help="the acoustic model's tokenizer: its model dir, exp dir or tokens.txt (default: the shipped model)")
    p.add_argument("--dim", type=int_in(8, 4096), default=128, help="embedding and hidden size")
    p.add_argument("--layers", type=int_in(1, 48), default=2, help="layers")
    p.add_argument("--heads", type=int_in(1, 64), default=4, help="transformer: attention heads")
    p.add_argument("--context", type=int_in(1, 4096), default=64, help="transformer: tokens attended to")
    p.add_argument("--batch-size", type=int_in(1, 4096), default=32, help="sentences per step")
    p.add_argument("--lr", type=float_in(0, 1, low_open=True), default=2e-3, help="peak learning rate")
    p.add_argument("--max-steps", type=int_in(1, 10_000_000), default=100_000, help="stop after N steps")
    p.add_argument("--max-minutes", type=float_in(0, 100_000, low_open=True), default=10.0, help="stop after M minutes")
    p.add_argument("--num-threads", type=int_in(1, MAX_THREADS), default=1,
                   help="torch CPU threads (1 is fastest per core on a small, busy machine)")
    p.add_argument("--seed", type=int_in(0, 2**31 - 1), default=0, help="same seed and text, same sentences drawn")
    p.add_argument("--int8", action="store_true",
                   help="write lm.onnx with int8 weights (a quarter of the size; checked against torch)")


def run_train_lm_command(args: argparse.Namespace) -> int:
    check_output_dir(args.exp_dir, "--exp-dir")  # before minutes of training, not after
    # torch (training, export) only once the command runs: `asr --help` and the parser stay light.
    import torch

    from asr.runtime.lm import LM_CHECKPOINT, LM_ONNX
    from asr.runtime.tokens import TOKENS_FILE
    from asr.training.lm_text import encode_sentences, gather_text, load_model_tokenizer
    from asr.training.lm_train import LmTrainOptions, dev_loss, save_lm, split_held_out, train_lm
    from export.lm_export import export_lm
    from models.lm import build_lm

    torch.manual_seed(args.seed)
    torch.set_num_threads(args.num_threads)
    tokenizer = load_model_tokenizer(args.tokens)
    table = tokenizer.token_table
    config = LmConfig(kind=args.kind, vocab_size=table.vocab_size, dim=args.dim, num_layers=args.layers,
                      num_heads=args.heads, context=args.context, boundary_id=table.blank_id)  # checked before text
    subsets = [s.strip() for s in args.subsets.split(",") if s.strip()]
    text = gather_text(args.text, args.data, subsets, args.synth_sentences, args.seed)
    encoded = encode_sentences(tokenizer, text.sentences)
    train, dev = split_held_out(encoded, args.seed)
    print("text: " + ", ".join(f"{source} {n}" for source, n in text.counts.items())
          + f"; {len(train)} sentences to train, {len(dev)} held out, "
          f"{sum(map(len, train))} tokens", flush=True)
    model = build_lm(config)
    options = LmTrainOptions(args.batch_size, args.lr, args.max_steps, args.max_minutes, args.seed)
    started = time.monotonic()
    steps = train_lm(model, train, options)
    loss = dev_loss(model, dev, args.batch_size)
    minutes = (time.monotonic() - started) / 60
    args.exp_dir.mkdir(parents=True, exist_ok=True)
    save_lm(args.exp_dir / LM_CHECKPOINT, model, table, steps, loss)
    table.write(args.exp_dir / TOKENS_FILE)
    check = export_lm(model, table, args.exp_dir / LM_ONNX, loss, int8=args.int8)
    parameters = sum(p.numel() for p in model.parameters())
    matches = (f"matches torch to {check.fp32_log_prob:.1e}" if check.int8_prob is None else
               f"(int8 weights) matches torch to {check.int8_prob:.3f} in probability")
    print(f"{args.kind} LM, {parameters / 1e6:.2f}M parameters: {steps} steps in {minutes:.1f} min, dev loss "
          f"{loss:.3f} nats/token (perplexity {math.exp(loss):.2f}); {args.exp_dir / LM_ONNX} {matches}; "
          f"use it with --lm {args.exp_dir}")
    return 0
