"""Pruned RNN-T loss (the idea of k2's rnnt_loss_pruned, written anew): the full joiner
runs only on a band of S lattice rows per frame, chosen from a cheap first pass.

Shapes: B batch, T frames, U tokens (U+1 lattice rows), V vocab, J joiner dim,
S band width (prune_range; at most U+1).

A training step:
    simple_loss, ranges = simple_loss_and_ranges(am, lm, targets, T_b, U_b, prune_range=5)
    enc_band, dec_band = prune(enc_proj, dec_proj, ranges)       # (B, T, S, J) each
    logits = joiner_output(tanh(enc_band + dec_band))            # (B, T, S, V)
    loss = pruned_rnnt_loss(logits, targets, ranges, T_b, U_b) + scale * simple_loss

1. The "trivial joiner" scores node (t, u) with log_softmax(am[t] + lm[u]); its
   normaliser, log sum_v exp(am[t, v] + lm[u, v]), is one (T, V) x (V, U+1) matmul of
   exponentials per item, so (B, T, U+1, V) is never built.
2. The trivial lattice's node occupancies (gradients of its log-likelihood) tell, for
   every frame, which S consecutive rows hold the most probability: that is the band,
   adjusted so that a path can run through it (see `band_starts`).
3. The full joiner's logits on the band feed the same lattice recursion as the full
   loss (models.losses), with each frame's band offset by its start.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor
import torch.nn.functional as F

from asr.checks import check_dtype, check_shape
from asr.errors import DataError, ShapeError
from models.losses import (
    FLOAT_DTYPES,
    check_reduction,
    check_targets,
    edge_log_probs,
    lattice_log_likelihood,
    lattice_loss,
    row_label_ids,
    working_dtype,
)


class SimpleLossOutput(NamedTuple):
    """What `simple_loss_and_ranges` returns (unpacks as a 2-tuple)."""

    loss: Tensor  # scalar, or (B,) for reduction "none": the trivial-joiner RNN-T loss
    ranges: Tensor  # (B, T, S) int64 lattice rows of each frame's band, for prune / pruned_rnnt_loss


def simple_loss_and_ranges(
    am: Tensor,
    lm: Tensor,
    targets: Tensor,
    logit_lengths: Tensor,
    target_lengths: Tensor,
    prune_range: int,
    blank: int = 0,
    reduction: str = "mean",
) -> SimpleLossOutput:
    """The RNN-T loss of the trivial joiner log_softmax(am[t] + lm[u]), and the band of
    `prune_range` rows per frame where its alignments concentrate.

    am: (B, T, V) encoder output projected to the vocabulary.
    lm: (B, U+1, V) predictor output projected to the vocabulary.
    targets: (B, U) padded label ids; logit_lengths, target_lengths: (B,) T_b and U_b.
    prune_range: band width S >= 2; a batch with U+1 < S gets S = U+1 (nothing pruned).
    Raises DataError where an item has more labels than S-1 per frame can carry.
    """
    check_reduction(reduction)
    check_shape("am", am, ("B", "T", "V"))
    check_dtype("am", am, FLOAT_DTYPES)
    batch, frames, vocab = am.shape
    check_shape("lm", lm, (batch, "U+1", vocab))
    check_dtype("lm", lm, FLOAT_DTYPES)
    check_shape("targets", targets, (batch, lm.shape[1] - 1))
    check_targets(targets, logit_lengths, target_lengths, frames, vocab, blank)
    if prune_range < 2:
        raise DataError(
            f"prune_range={prune_range} leaves no room to emit a label; use 2 or more (k2 recipes use 5)"
        )
    work = working_dtype(am)
    # float32 at least, and autocast off: a half-precision matmul of exponentials would
    # lose the small probabilities this loss is about.
    with torch.autocast(am.device.type, enabled=False):
        blank_lp, label_lp = _trivial_edge_log_probs(am.to(work), lm.to(work), targets, target_lengths, blank)
    loss = lattice_loss(blank_lp, label_lp, None, logit_lengths, target_lengths, reduction)
    occupancy = _node_occupancy(blank_lp, label_lp, logit_lengths, target_lengths)
    width = min(prune_range, lm.shape[1])
    starts = band_starts(occupancy, logit_lengths, target_lengths, width)
    ranges = starts.unsqueeze(-1) + torch.arange(width, device=starts.device)  # (B, T, S)
    return SimpleLossOutput(loss, ranges)


def prune(enc_proj: Tensor, dec_proj: Tensor, ranges: Tensor) -> tuple[Tensor, Tensor]:
    """Encoder and predictor joiner inputs at each band node, to add and feed the joiner.

    enc_proj: (B, T, J); dec_proj: (B, U+1, J); ranges: (B, T, S) rows from simple_loss_and_ranges.
    Returns (B, T, S, J) twice; the encoder one is a broadcast view (no copy).
    """
    check_shape("ranges", ranges, ("B", "T", "S"))
    batch, frames, width = ranges.shape
    check_shape("enc_proj", enc_proj, (batch, frames, "J"))
    check_shape("dec_proj", dec_proj, (batch, "U+1", enc_proj.shape[-1]))
    if int(ranges.min()) < 0 or int(ranges.max()) >= dec_proj.shape[1]:
        raise ShapeError(
            f"ranges hold rows {int(ranges.min())}..{int(ranges.max())} but dec_proj has U+1 = "
            f"{dec_proj.shape[1]}; pass the ranges computed for these targets"
        )
    dim = enc_proj.shape[-1]
    enc_band = enc_proj.unsqueeze(2).expand(batch, frames, width, dim)  # (B, T, S, J)
    rows = ranges.reshape(batch, frames * width, 1).expand(-1, -1, dim)  # (B, T*S, J)
    dec_band = dec_proj.gather(1, rows).view(batch, frames, width, dim)  # (B, T, S, J)
    return enc_band, dec_band


def pruned_rnnt_loss(
    logits: Tensor,
    targets: Tensor,
    ranges: Tensor,
    logit_lengths: Tensor,
    target_lengths: Tensor,
    blank: int = 0,
    reduction: str = "mean",
) -> Tensor:
    """RNN-T loss summed over the alignments that stay inside the band `ranges`.

    logits: (B, T, S, V) raw joiner outputs at the band nodes (see `prune`).
    targets: (B, U); ranges: (B, T, S) from simple_loss_and_ranges; lengths (B,).
    With S = U+1 (ranges all 0..U) it equals models.losses.rnnt_loss exactly.
    reduction: "mean" (over the batch) | "sum" | "none".
    """
    check_reduction(reduction)
    check_shape("logits", logits, ("B", "T", "S", "V"))
    check_dtype("logits", logits, FLOAT_DTYPES)
    batch, frames, width, vocab = logits.shape
    check_shape("ranges", ranges, (batch, frames, width))
    check_dtype("ranges", ranges, ("int64",))
    check_shape("targets", targets, (batch, "U"))
    check_targets(targets, logit_lengths, target_lengths, frames, vocab, blank)
    starts = ranges[..., 0]  # (B, T)
    _check_band(ranges, targets.shape[1], logit_lengths, target_lengths)
    row_labels = row_label_ids(targets, target_lengths, blank)  # (B, U+1)
    label_ids = row_labels.gather(1, ranges.reshape(batch, -1)).view(batch, frames, width)  # (B, T, S)
    blank_lp, label_lp = edge_log_probs(logits, label_ids, blank)
    return lattice_loss(blank_lp, label_lp, starts, logit_lengths, target_lengths, reduction)


def band_starts(occupancy: Tensor, frame_lengths: Tensor, target_lengths: Tensor, width: int) -> Tensor:
    """First row s_t of each frame's band of `width` rows: the window holding the most
    occupancy, then moved as little as needed so that a path fits through the bands.

    occupancy: (B, T, U+1) node posteriors; frame_lengths, target_lengths: (B,).
    Returns (B, T) int64 with s_0 = 0, 0 <= s_{t+1} - s_t <= width-1 (a path leaves frame t
    at most width-1 rows above s_t and must land inside the next band), and the last
    valid frame's band holding row U_b.
    """
    frames, rows = occupancy.shape[1:]
    cum = F.pad(occupancy.cumsum(dim=-1), (1, 0))  # (B, T, U+2)
    window_mass = cum[..., width:] - cum[..., : rows + 1 - width]  # (B, T, U+2-S)
    best = window_mass.argmax(dim=-1)  # (B, T)
    step = width - 1
    last_start = (target_lengths.long() + 1 - width).clamp(min=0)  # (B,) the band that ends at U_b
    too_far = last_start > (frame_lengths.long() - 1) * step
    if too_far.any():
        item = int(too_far.nonzero()[0, 0])
        raise DataError(
            f"item {item}: {int(target_lengths[item])} labels in {int(frame_lengths[item])} frames do not "
            f"fit a band of {width} rows (at most {step} labels per frame); raise prune_range or drop "
            f"utterances with that many labels per frame"
        )
    t = torch.arange(frames, device=occupancy.device)
    frames_left = (frame_lengths.long().unsqueeze(-1) - 1 - t).clamp(min=0)  # (B, T)
    lowest = (last_start.unsqueeze(-1) - frames_left * step).clamp(min=0)  # still able to reach U_b
    highest = torch.minimum(last_start.unsqueeze(-1), t * step)  # reachable from row 0
    starts = torch.maximum(torch.minimum(best, highest), lowest).cummax(dim=1).values
    # A rise of more than `step` from t to t+1 is closed by lifting the earlier frames:
    # s_t = max(s_t, s_{t+1} - step), a reversed running max of s_t - step * t.
    slope = t * step
    return (starts - slope).flip(1).cummax(dim=1).values.flip(1) + slope


def _trivial_edge_log_probs(
    am: Tensor, lm: Tensor, targets: Tensor, target_lengths: Tensor, blank: int
) -> tuple[Tensor, Tensor]:
    """Blank and label log-probs (B, T, U+1) of the trivial joiner log_softmax(am[t] + lm[u]).

    log sum_v exp(am[t, v] + lm[u, v]) = am_max[t] + lm_max[u] + log(exp(am - am_max) @
    exp(lm - lm_max)^T): every exponential is at most 1, and the (B, T, U+1, V) sum is a
    matmul. The product is floored at the smallest normal float so that an underflow
    (am and lm peaking on different tokens by ~80 nats in float32) stays finite.
    """
    batch, frames, _ = am.shape
    rows = lm.shape[1]
    # The normaliser does not depend on the shift, so the maxima need no gradient.
    am_max = am.detach().amax(dim=-1, keepdim=True)  # (B, T, 1)
    lm_max = lm.detach().amax(dim=-1, keepdim=True)  # (B, U+1, 1)
    products = torch.matmul((am - am_max).exp(), (lm - lm_max).exp().transpose(1, 2))  # (B, T, U+1)
    normaliser = products.clamp(min=torch.finfo(am.dtype).tiny).log() + am_max + lm_max.transpose(1, 2)
    row_labels = row_label_ids(targets, target_lengths, blank)  # (B, U+1)
    am_label = am.gather(2, row_labels.unsqueeze(1).expand(batch, frames, rows))  # (B, T, U+1)
    lm_label = lm.gather(2, row_labels.unsqueeze(-1)).transpose(1, 2)  # (B, 1, U+1)
    blank_lp = am[..., blank : blank + 1] + lm[..., blank].unsqueeze(1) - normaliser
    label_lp = am_label + lm_label - normaliser
    return blank_lp, label_lp


def _node_occupancy(
    blank_lp: Tensor, label_lp: Tensor, frame_lengths: Tensor, target_lengths: Tensor
) -> Tensor:
    """(B, T, U+1) posterior probability that an alignment passes through each node: the
    sum of the posteriors of its two outgoing edges, which are the gradients of the
    lattice log-likelihood with respect to the edge log-probs."""
    with torch.enable_grad():
        edges = (blank_lp.detach().requires_grad_(True), label_lp.detach().requires_grad_(True))
        log_likelihood = lattice_log_likelihood(*edges, None, frame_lengths, target_lengths)
        blank_post, label_post = torch.autograd.grad(log_likelihood.sum(), edges)
    return blank_post + label_post


def _check_band(ranges: Tensor, tokens: int, frame_lengths: Tensor, target_lengths: Tensor) -> None:
    """Raise ShapeError unless `ranges` (B, T, S) is a band a path can run through: consecutive
    rows within [0, U], starting at row 0, rising by 0..S-1 per frame, last valid frame
    holding row U_b. simple_loss_and_ranges always returns such bands."""
    batch, _, width = ranges.shape
    starts = ranges[..., 0]  # (B, T)
    rises = starts.diff(dim=1)
    items = torch.arange(batch, device=ranges.device)
    last = starts[items, frame_lengths.long() - 1]
    consecutive = starts.unsqueeze(-1) + torch.arange(width, device=ranges.device)  # (B, T, S)
    problems = {
        "rows are not consecutive": (ranges != consecutive).any(),
        f"rows leave [0, U={tokens}]": ((starts < 0) | (starts + width - 1 > tokens)).any(),
        "the first frame's band does not start at row 0": (starts[:, 0] != 0).any(),
        f"a band rises by less than 0 or more than {width - 1} rows": ((rises < 0) | (rises >= width)).any(),
        "the last frame's band misses row U_b": ((last > target_lengths) | (last + width <= target_lengths)).any(),
    }
    for problem, found in problems.items():
        if found:
            raise ShapeError(
                f"ranges: {problem}; pass the ranges simple_loss_and_ranges returned for these inputs"
            )
