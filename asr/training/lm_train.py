"""Training a token LM for shallow fusion (`asr train-lm`, in asr.tools.train_lm), and running its checkpoint.

The text and tokenizer come from asr.training.lm_text; the model from models.lm. One
sentence in HELD_OUT_SHARE (at most HELD_OUT_MAX) is held out, chosen by a seeded shuffle,
to report the dev loss. Training stops after max_steps or max_minutes, whichever comes first; the
learning rate warms up, then decays linearly with the share of the budget used.

`TorchLm` runs lm.pt behind the search's LanguageModel interface, for `asr eval`.
"""

from __future__ import annotations

import io
import math
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from asr.atomic_write import write_bytes_atomically
from asr.errors import ConfigError, ModelFilesError
from asr.runtime.lm import LM_CHECKPOINT, check_lm_tokens, lm_file, tokens_hash
from asr.runtime.search import PredictorState
from asr.runtime.tokens import TokenTable
from models.lm import LanguageModel, LmConfig, build_lm, lm_loss

HELD_OUT_SHARE = 0.02  # of the sentences, for the dev loss...
HELD_OUT_MAX = 1000  # ...but no more: enough for a loss to 0.01 nats, cheap to score
WARMUP_STEPS = 50  # short: a CPU budget of minutes gives a few hundred steps
MIN_LR_SHARE = 0.1  # the learning rate decays to this share of its peak at the end of the budget


@dataclass(frozen=True)
class LmTrainOptions:
    """How long and how hard to train."""

    batch_size: int = 32  # sentences per step
    lr: float = 2e-3  # peak learning rate (AdamW)
    max_steps: int = 100_000  # stop after this many steps...
    max_minutes: float = 10.0  # ...or this much wall time
    seed: int = 0


def split_held_out(encoded: list[list[int]], seed: int) -> tuple[list[list[int]], list[list[int]]]:
    """(train, dev): a seeded HELD_OUT_SHARE of the sentences (1 to HELD_OUT_MAX) for dev, when there are two or more."""
    order = np.random.default_rng(seed).permutation(len(encoded))
    n_dev = min(HELD_OUT_MAX, max(1, round(HELD_OUT_SHARE * len(encoded)))) if len(encoded) > 1 else 0
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
        if step % 50 == 0:
            print(f"step {step}: loss {loss.item():.3f} nats/token, {elapsed / 60:.1f} min", flush=True)
    model.eval()
    return step


def save_lm(path: Path, model: LanguageModel, table: TokenTable, step: int, loss: float) -> None:
    """lm.pt: config, weights, token table, steps and dev loss (written atomically)."""
    buffer = io.BytesIO()
    torch.save({"config": model.config.to_dict(), "state_dict": model.state_dict(), "tokens": table.to_text(),
                "step": step, "dev_loss": loss}, buffer)
    write_bytes_atomically(path, buffer.getvalue())


def load_lm(directory: str | Path, table: TokenTable) -> LanguageModel:
    """The model of `directory`/lm.pt, in eval mode; ModelFilesError if unreadable or trained for other tokens."""
    path = lm_file(directory, LM_CHECKPOINT)
    try:
        saved = torch.load(path, map_location="cpu", weights_only=True)
        model = build_lm(LmConfig.from_dict(saved["config"]))
        model.load_state_dict(saved["state_dict"])
        lm_table = TokenTable.parse(saved["tokens"], source=str(path))
    except (RuntimeError, KeyError, TypeError, ValueError, EOFError) as error:
        raise ModelFilesError(f"{path}: not a readable LM checkpoint ({error}); rerun `asr train-lm`") from None
    check_lm_tokens(tokens_hash(lm_table), lm_table.vocab_size, table, f"the LM in {directory}")
    return model.eval()


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
        return cls(load_lm(directory, table))

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
