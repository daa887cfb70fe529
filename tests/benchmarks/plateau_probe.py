"""How fast does a small encoder leave the CTC blank plateau? A one-core probe on a fixed batch.

    python tests/benchmarks/plateau_probe.py --data DATA [--subset synth-train] [--layers 3] [--plain] [--lr 1e-3]

Trains only the encoder and CTC head of the small preset (char tokens) on the same
15 utterances at every step and prints CTC nats per token every 25 steps. The token
unigram sits near 2.9 nats; a model that can learn at all fits one batch well below
it within a hundred steps. This is the probe that found why the plain three-layer
LSTM stack sat on the plateau (README "Accuracy"): `--plain` stacks the layers
without residual sums, as the presets did before.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time
from pathlib import Path

import numpy as np
import torch

from asr.corpus.feature_cache import FeatureCache, default_cache_dir
from asr.corpus.librispeech import load_subsets
from asr.features import FbankConfig
from asr.training.batches import collate
from asr.training.tokenizers import CharTokenizer
from models.losses import ctc_loss
from models.presets import build_config
from models.transducer import Transducer

BATCH = 15  # utterances, about the CPU recipe's 60-second batch
WARMUP = 100  # linear learning-rate warm-up steps


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, required=True, help="corpus root holding LibriSpeech/")
    parser.add_argument("--subset", default="synth-train")
    parser.add_argument("--encoder", default="lstm", choices=("lstm", "gru", "rnn"))
    parser.add_argument("--layers", type=int, default=None, help="recurrent layers (default: the preset's)")
    parser.add_argument("--plain", action="store_true", help="no residual sums between layers")
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--steps", type=int, default=150)
    args = parser.parse_args(argv)
    torch.set_num_threads(1)

    utterances = load_subsets(args.data, [args.subset])[:BATCH]
    cache = FeatureCache.build(utterances, default_cache_dir(args.data, 1.0), FbankConfig(), num_workers=1)
    tokenizer = CharTokenizer.build([u.text for u in utterances])
    features = [np.asarray(cache.get(u.id)) for u in utterances]
    tokens = [np.asarray(tokenizer.encode(u.text)) for u in utterances]
    batch = collate(features, tokens, [u.id for u in utterances])
    frames = np.concatenate(features)  # (T_total, D)

    config = build_config("small", args.encoder, vocab_size=tokenizer.vocab_size)
    encoder = dataclasses.replace(config.encoder, residual=not args.plain,
                                  num_layers=args.layers or config.encoder.num_layers)
    torch.manual_seed(0)
    model = Transducer(dataclasses.replace(config, encoder=encoder))
    model.encoder.subsampling.set_feature_stats(torch.tensor(frames.mean(0)), torch.tensor(frames.std(0)))
    optimizer = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=1e-3)
    start = time.monotonic()
    for step in range(args.steps):
        for group in optimizer.param_groups:
            group["lr"] = args.lr * min(1.0, (step + 1) / WARMUP)
        encoded, lengths = model.encode(batch.features, batch.feature_lens)
        loss = ctc_loss(model.ctc_log_probs(encoded), batch.tokens, lengths, batch.token_lens, blank=0)
        optimizer.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 5.0)
        optimizer.step()
        if step % 25 == 0 or step == args.steps - 1:
            per_token = loss.item() * BATCH / float(batch.token_lens.sum())
            print(f"step {step:4d}  CTC {per_token:.3f} nats/token  ({time.monotonic() - start:.0f} s)", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
