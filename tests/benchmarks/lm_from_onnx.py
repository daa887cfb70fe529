"""Rebuild an LSTM LM's lm.pt from its lm.onnx, so that `asr train-lm --init-from` can continue it.

    python tests/benchmarks/lm_from_onnx.py LM_DIR OUT_DIR

The shipped LM (asr/resources/default_lm) carries lm.onnx only: its lm.pt stayed on the machine that
trained it. The ONNX file holds every weight, int8 ones as int8 levels times one scale per output
column (export.quantize), so dequantizing gives the float weights back to within half a level.
OUT_DIR gets lm.pt, tokens.txt and words.txt (copied); the rebuilt model is checked against the
ONNX file on random token sequences before anything is written.

The unrolled LSTM's four weight matrices are MatMul initializers named by the tracer, not by
the module; which is which (input or recurrent weights of layer 0 or 1) is found by trying each
assignment and keeping the one that reproduces the file's outputs.
"""

from __future__ import annotations

import itertools
import json
import shutil
import sys
from pathlib import Path

import numpy as np
import onnx
import torch

from asr.runtime.lexicon import WORDS_FILE
from asr.runtime.lm import LM_CHECKPOINT, LM_ONNX, OnnxLm
from asr.runtime.tokens import TOKENS_FILE, TokenTable
from asr.training.lm_train import save_lm
from export.lm_export import INT8_TOLERANCE, verify_lm
from export.recover import float_weights
from models.lm import build_lm
from models.lm_config import LmConfig


def rebuild(lm_dir: Path) -> tuple[torch.nn.Module, TokenTable, float, float]:
    path = lm_dir / LM_ONNX
    proto = onnx.load(str(path))
    meta = {p.key: p.value for p in proto.metadata_props}
    config = LmConfig.from_dict(json.loads(meta["lm_config"]))
    if config.kind != "lstm":
        raise SystemExit(f"{path}: a {config.kind} LM; only LSTM LMs are rebuilt")
    weights = float_weights(proto)
    named = {k[len("model."):]: v for k, v in weights.items() if k.startswith("model.")}
    matrices = sorted(k for k in weights if not k.startswith("model."))  # the LSTM's (input, 4H) products
    model = build_lm(config).eval()
    targets = [f"lstm.weight_{kind}_l{layer}" for layer in range(config.num_layers) for kind in ("ih", "hh")]
    if len(matrices) != len(targets):
        raise SystemExit(f"{path}: {len(matrices)} unnamed weight matrices, expected {len(targets)}")
    lm = OnnxLm(path, num_threads=1)
    best: tuple[float, dict[str, torch.Tensor]] | None = None
    for order in itertools.permutations(matrices):
        state = {name: torch.from_numpy(np.array(v)) for name, v in named.items()}
        state["out.weight"] = state["out.weight"].t().contiguous()  # stored (dim, vocab) for MatMul
        state.update({t: torch.from_numpy(np.array(weights[m].T)) for t, m in zip(targets, order)})
        try:
            model.load_state_dict(state)
        except RuntimeError:  # shapes that cannot be this assignment
            continue
        diff = verify_lm(model, lm, probabilities=True)
        if best is None or diff < best[0]:
            best = (diff, state)
    # int8 activations round too (the shipped LM's right assignment: 0.075); a wrong one is off by 0.7 or more
    if best is None or best[0] > INT8_TOLERANCE:
        raise SystemExit(f"{path}: no assignment of its weights reproduces it (best {best and best[0]})")
    model.load_state_dict(best[1])
    table = TokenTable.read(lm_dir / TOKENS_FILE)
    return model, table, best[0], float(meta.get("dev_loss", "nan"))


def main(lm_dir: Path, out_dir: Path) -> None:
    model, table, diff, dev_loss = rebuild(lm_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    save_lm(out_dir / LM_CHECKPOINT, model, table, 0, dev_loss)
    for name in (TOKENS_FILE, WORDS_FILE):
        if (lm_dir / name).is_file():
            shutil.copyfile(lm_dir / name, out_dir / name)
    print(f"{lm_dir / LM_ONNX} -> {out_dir / LM_CHECKPOINT}: matches the file to {diff:.4f} in probability")


if __name__ == "__main__":
    if len(sys.argv) != 3:
        raise SystemExit(__doc__)
    main(Path(sys.argv[1]), Path(sys.argv[2]))
