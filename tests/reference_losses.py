"""The plain RNN-T loss: the reference the fused one in models.losses is tested against, and
the baseline tests/benchmarks/bench_rnnt_loss.py measures it against.

log_softmax over the whole (B, T, U+1, V) tensor, gather, and autograd through every step of
the alpha recursion: same arguments and result as models.losses.rnnt_loss, at several times
its memory.
"""

from __future__ import annotations

from torch import Tensor

from models.losses import full_lattice_labels, lattice_loss


def naive_rnnt_loss(
    logits: Tensor,
    targets: Tensor,
    logit_lengths: Tensor,
    target_lengths: Tensor,
    blank: int = 0,
    reduction: str = "mean",
) -> Tensor:
    label_ids = full_lattice_labels(logits, targets, logit_lengths, target_lengths, blank, reduction)
    log_probs = logits.log_softmax(dim=-1)  # (B, T, U+1, V): the copy rnnt_loss avoids
    blank_lp = log_probs[..., blank]  # (B, T, U+1)
    label_lp = log_probs.gather(-1, label_ids.unsqueeze(-1)).squeeze(-1)  # (B, T, U+1)
    return lattice_loss(blank_lp, label_lp, None, logit_lengths, target_lengths, reduction, autograd=True)
