"""`asr train-lm`: train a token LM for shallow fusion, save it and export lm.onnx beside it.

    asr train-lm --text FILE... [--data DIR --subsets synth-train] [--synth-sentences N]
                 --exp-dir DIR [--kind transformer|lstm] [--tokens MODEL_DIR] [--max-minutes M]

The text and tokenizer come from asr.training.lm_text; the model from models.lm. One
sentence in HELD_OUT_SHARE is held out (chosen by a seeded shuffle) to report the dev
loss. Training stops at --max-steps or --max-minutes, whichever comes first; the
learning rate warms up, then decays linearly with the share of the budget used. The exp
dir then holds lm.pt (config, weights, token table), lm.onnx (verified against torch)
and tokens.txt: the dir `--lm` takes on transcribe, live and eval.

`TorchLm` runs lm.pt behind the search's LanguageModel interface, for `asr eval`.
"""

from __future__ import annotations

import argparse
import math
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from asr.atomic_write import write_bytes_atomically
from asr.errors import ConfigError, ModelFilesError
from asr.options import MAX_THREADS, float_in, int_in
from asr.runtime.default_model import DEFAULT_MODEL_DIR
from asr.runtime.lm import LM_CHECKPOINT, LM_ONNX, check_lm_tokens, lm_file, tokens_hash
from asr.runtime.search import PredictorState
from asr.runtime.tokens import TOKENS_FILE, TokenTable
from asr.training.lm_text import encode_sentences, gather_text, load_model_tokenizer
from models.lm import LM_KINDS, LanguageModel, LmConfig, build_lm, lm_loss

HELD_OUT_SHARE = 0.02  # of the sentences, for the dev loss
WARMUP_STEPS = 200
MIN_LR_SHARE = 0.1  # the learning rate decays to this share of its peak at the end of the budget


@dataclass(frozen=True)
class LmTrainOptions:
    """How long and how hard to train."""

    batch_size: int = 64  # sentences per step
    lr: float = 2e-3  # peak learning rate (AdamW)
    max_steps: int = 100_000  # stop after this many steps...
    max_minutes: float = 10.0  # ...or this much wall time
    seed: int = 0


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
    p.add_argument("--batch-size", type=int_in(1, 4096), default=64, help="sentences per step")
    p.add_argument("--lr", type=float_in(0, 1, low_open=True), default=2e-3, help="peak learning rate")
    p.add_argument("--max-steps", type=int_in(1, 10_000_000), default=100_000, help="stop after N steps")
    p.add_argument("--max-minutes", type=float_in(0, 100_000, low_open=True), default=10.0, help="stop after M minutes")
    p.add_argument("--num-threads", type=int_in(1, MAX_THREADS), default=2, help="torch CPU threads")
    p.add_argument("--seed", type=int_in(0, 2**31 - 1), default=0)


def split_held_out(encoded: list[list[int]], seed: int) -> tuple[list[list[int]], list[list[int]]]:
    """(train, dev): a seeded HELD_OUT_SHARE of the sentences (at least one) for dev, when there are two or more."""
    order = np.random.default_rng(seed).permutation(len(encoded))
    n_dev = max(1, round(HELD_OUT_SHARE * len(encoded))) if len(encoded) > 1 else 0
    dev = [encoded[i] for i in order[:n_dev]]
    return [encoded[i] for i in order[n_dev:]], dev


def make_batch(sentences: list[list[int]], boundary: int) -> tuple[torch.Tensor, torch.Tensor]:
    """BOS + ids + EOS, right-padded with the boundary: tokens (B, U), lengths (B,)."""
    lengths = [len(s) + 2 for s in sentences]
    tokens = torch.full((len(sentences), max(lengths)), boundary, dtype=torch.int64)
    for row, ids in enumerate(sentences):
        tokens[row, 1 : 1 + len(ids)] = torch.tensor(ids)
    return tokens, torch.tensor(lengths)


def dev_loss(model: LanguageModel, dev: list[list[int]], batch_size: int) -> float:
    """Nats per token (EOS included) over the held-out sentences; nan when there are none."""
    if not dev:
        return math.nan
    was_training = model.training
    model.eval()
    total = count = 0.0
    with torch.no_grad():
        for start in range(0, len(dev), batch_size):
            tokens, lengths = make_batch(dev[start : start + batch_size], model.config.boundary_id)
            scored = float((lengths - 1).sum())
            total += float(lm_loss(model, tokens, lengths)) * scored
            count += scored
    model.train(was_training)
    return total / count


def lr_at(step: int, elapsed_share: float, peak: float) -> float:
    """Linear warm-up over WARMUP_STEPS, then linear decay with the share of the budget used."""
    return peak * min(1.0, (step + 1) / WARMUP_STEPS) * max(MIN_LR_SHARE, 1.0 - elapsed_share)


def train_lm(model: LanguageModel, train: list[list[int]], options: LmTrainOptions) -> int:
    """Train in place until the step or time budget runs out; the number of steps taken."""
    if not train:
        raise ConfigError("no training sentences left after holding out dev; give more text")
    optimizer = torch.optim.AdamW(model.parameters(), lr=options.lr, weight_decay=0.01)
    rng = np.random.default_rng(options.seed)
    budget = options.max_minutes * 60.0
    start = time.monotonic()
    model.train()
    step = 0
    order = rng.permutation(len(train))
    position = 0
    while step < options.max_steps and (elapsed := time.monotonic() - start) < budget:
        if position >= len(order):
            order, position = rng.permutation(len(train)), 0
        picked = [train[i] for i in order[position : position + options.batch_size]]
        position += options.batch_size
        tokens, lengths = make_batch(picked, model.config.boundary_id)
        for group in optimizer.param_groups:
            group["lr"] = lr_at(step, elapsed / budget, options.lr)
        loss = lm_loss(model, tokens, lengths)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        step += 1
        if step % 200 == 0:
            print(f"step {step}: loss {float(loss):.3f} nats/token, {elapsed / 60:.1f} min", flush=True)
    model.eval()
    return step


def save_lm(path: Path, model: LanguageModel, table: TokenTable, step: int, loss: float) -> None:
    """lm.pt: config, weights, token table, steps and dev loss (written atomically)."""
    import io

    buffer = io.BytesIO()
    torch.save({"config": model.config.to_dict(), "state_dict": model.state_dict(), "tokens": table.to_text(),
                "step": step, "dev_loss": loss}, buffer)
    write_bytes_atomically(path, buffer.getvalue())


def run_train_lm_command(args: argparse.Namespace) -> int:
    torch.manual_seed(args.seed)
    torch.set_num_threads(args.num_threads)
    tokenizer = load_model_tokenizer(args.tokens)
    subsets = [s.strip() for s in args.subsets.split(",") if s.strip()]
    text = gather_text(args.text, args.data, subsets, args.synth_sentences, args.seed)
    encoded = encode_sentences(tokenizer, text.sentences)
    train, dev = split_held_out(encoded, args.seed)
    print("text: " + ", ".join(f"{source} {n}" for source, n in text.counts.items())
          + f"; {len(train)} sentences to train, {len(dev)} held out, "
          f"{sum(map(len, train))} tokens", flush=True)
    table = tokenizer.token_table
    config = LmConfig(kind=args.kind, vocab_size=table.vocab_size, dim=args.dim, num_layers=args.layers,
                      num_heads=args.heads, context=args.context, boundary_id=table.blank_id)
    model = build_lm(config)
    options = LmTrainOptions(args.batch_size, args.lr, args.max_steps, args.max_minutes, args.seed)
    started = time.monotonic()
    steps = train_lm(model, train, options)
    loss = dev_loss(model, dev, args.batch_size)
    minutes = (time.monotonic() - started) / 60
    args.exp_dir.mkdir(parents=True, exist_ok=True)
    save_lm(args.exp_dir / LM_CHECKPOINT, model, table, steps, loss)
    table.write(args.exp_dir / TOKENS_FILE)
    from export.lm_export import export_lm  # export needs onnx: only once training is done

    diff = export_lm(model, table, args.exp_dir / LM_ONNX, loss)
    parameters = sum(p.numel() for p in model.parameters())
    print(f"{args.kind} LM, {parameters / 1e6:.2f}M parameters: {steps} steps in {minutes:.1f} min, dev loss "
          f"{loss:.3f} nats/token (perplexity {math.exp(loss):.2f}); {args.exp_dir / LM_ONNX} matches torch "
          f"to {diff:.1e}; use it with --lm {args.exp_dir}")
    return 0


class TorchLm:
    """`asr.runtime.search.LanguageModel` over an lm.pt checkpoint (numpy in and out), for `asr eval`.

    Every models.lm state array has its batch on axis 1, the search's HYP_AXIS, so states pass as they are.
    """

    def __init__(self, model: LanguageModel) -> None:
        self.model = model.eval()
        self._state_type = type(model.init_state(1))

    @classmethod
    def from_dir(cls, directory: str | Path, table: TokenTable) -> TorchLm:
        """Load `directory`/lm.pt for a transducer with `table`; ModelFilesError if it was trained for other tokens."""
        path = lm_file(directory, LM_CHECKPOINT)
        try:
            saved = torch.load(path, map_location="cpu", weights_only=True)
            model = build_lm(LmConfig.from_dict(saved["config"]))
            model.load_state_dict(saved["state_dict"])
            lm_table = TokenTable.parse(saved["tokens"], source=str(path))
        except (RuntimeError, KeyError, TypeError, ValueError, EOFError) as error:
            raise ModelFilesError(f"{path}: not a readable LM checkpoint ({error}); rerun `asr train-lm`") from None
        check_lm_tokens(tokens_hash(lm_table), lm_table.vocab_size, table, f"the LM in {directory}")
        return cls(model)

    @property
    def vocab_size(self) -> int:
        return self.model.config.vocab_size

    @property
    def boundary_id(self) -> int:
        return self.model.config.boundary_id

    def initial_state(self, n: int) -> PredictorState:
        return tuple(t.numpy() for t in self.model.init_state(n))

    def step(self, tokens: np.ndarray, state: PredictorState) -> tuple[np.ndarray, PredictorState]:
        with torch.inference_mode():
            torch_state = self._state_type(*(torch.from_numpy(np.ascontiguousarray(a)) for a in state))
            log_probs, new_state = self.model.step(torch.as_tensor(tokens, dtype=torch.int64), torch_state)
            return log_probs.numpy(), tuple(t.numpy() for t in new_state)
