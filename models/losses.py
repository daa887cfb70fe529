"""Transducer (RNN-T) and CTC losses, written for memory: the joiner output and, in the
backward pass, its gradient are the only (B, T, U+1, V) tensors (plus chunks of at most
_CHUNK_ELEMENTS values); the lattice recursion runs on (B, T, U+1) tensors.

Shapes: B batch, T frames, U tokens (U+1 lattice rows: 0..U tokens emitted), V vocab,
S band width (the pruned loss in models.pruned_loss; S = U+1 for the full loss).

How the RNN-T loss is computed:
1. `edge_log_probs` turns logits into two (B, T, S) tensors: log p(blank) and
   log p(next label) at every lattice node. It is one custom autograd Function that
   takes logsumexp over V in chunks and gathers two logits, so log_softmax over the
   whole 4-D tensor is never built; its backward writes softmax * occupancy - one-hot
   terms straight into the single gradient buffer.
2. `lattice_log_likelihood` runs the forward (alpha) recursion in float64 on those
   small tensors, looping over frames with a log-space cumulative sum over tokens;
   its backward runs the mirror beta recursion and returns the edge occupancies.
The plain formulation (log_softmax of the whole tensor, autograd everywhere) lives with the
tests (tests/reference_losses.py): their reference and the benchmark's baseline.

Reductions: "none" gives the (B,) per-item negative log-likelihoods, "sum" their sum,
"mean" their mean over the batch (torchaudio / k2 semantics; not divided by frames
or tokens).
"""

from __future__ import annotations

import torch
from torch import Tensor
from torch.autograd.function import FunctionCtx, once_differentiable
import torch.nn.functional as F

from asr.checks import check_dtype, check_same_batch, check_shape
from asr.errors import DataError, ShapeError

REDUCTIONS = ("mean", "sum", "none")

# logsumexp over V makes a temporary as big as its input; doing it this many
# elements at a time bounds that temporary instead of doubling peak memory.
_CHUNK_ELEMENTS = 1 << 22

# Half-precision logits (a mixed-precision joiner) are accepted; every reduction over them
# runs in float32, and the lattice in float64.
FLOAT_DTYPES = ("float16", "bfloat16", "float32", "float64")
_INT_DTYPES = ("int64", "int32")


def rnnt_loss(
    logits: Tensor,
    targets: Tensor,
    logit_lengths: Tensor,
    target_lengths: Tensor,
    blank: int = 0,
    reduction: str = "mean",
) -> Tensor:
    """Negative log-likelihood of `targets` under the RNN-T lattice of `logits`.

    logits: (B, T, U+1, V) raw joiner outputs (not log-softmaxed); float16 / bfloat16 /
    float32 / float64 (half is summed in float32 and gives a float32 loss).
    targets: (B, U) int64 label ids, padded; only the first target_lengths[b] are read.
    logit_lengths: (B,) valid frames per item, 1 <= T_b <= T.
    target_lengths: (B,) valid labels per item, 0 <= U_b <= U.
    blank: the blank id, in [0, V).
    reduction: "mean" (over the batch) | "sum" | "none" (a (B,) tensor).
    Returns a scalar (or (B,)) in the dtype of `logits`, at least float32.
    """
    label_ids = full_lattice_labels(logits, targets, logit_lengths, target_lengths, blank, reduction)
    blank_lp, label_lp = edge_log_probs(logits, label_ids, blank)
    return lattice_loss(blank_lp, label_lp, None, logit_lengths, target_lengths, reduction)


def ctc_loss(
    log_probs: Tensor,
    targets: Tensor,
    input_lengths: Tensor,
    target_lengths: Tensor,
    blank: int = 0,
    reduction: str = "mean",
) -> Tensor:
    """torch's CTC loss behind the same checks and reductions as `rnnt_loss`.

    log_probs: (B, T, V) log-softmaxed outputs (batch first, unlike torch's (T, B, V)).
    targets: (B, U) label ids, padded; input_lengths: (B,) in [0, T];
    target_lengths: (B,) in [0, U]. A label sequence needs U_b + (adjacent repeats)
    <= T_b frames; longer ones raise DataError here (torch would return inf).
    reduction: "mean" (over the batch, NOT torch's per-target-length mean) | "sum" | "none".
    """
    check_reduction(reduction)
    check_shape("log_probs", log_probs, ("B", "T", "V"))
    check_dtype("log_probs", log_probs, FLOAT_DTYPES)
    batch, frames, vocab = log_probs.shape
    check_shape("targets", targets, (batch, "U"))
    check_targets(targets, input_lengths, target_lengths, frames, vocab, blank, min_frames=0)
    check_ctc_feasible(targets, input_lengths, target_lengths)
    per_item = F.ctc_loss(
        log_probs.to(working_dtype(log_probs)).transpose(0, 1),  # (T, B, V) as torch wants
        sanitized_targets(targets, target_lengths, blank),
        input_lengths.long(),
        target_lengths.long(),
        blank=blank,
        reduction="none",
    )
    return reduce_loss(per_item, reduction)


def full_lattice_labels(
    logits: Tensor, targets: Tensor, logit_lengths: Tensor, target_lengths: Tensor, blank: int, reduction: str
) -> Tensor:
    """The checks of `rnnt_loss` on its arguments, then the (B, T, U+1) label id of each lattice node's
    label edge (blank past a row's last label). Shared with the plain reference formulation in tests."""
    check_reduction(reduction)
    check_shape("logits", logits, ("B", "T", "U+1", "V"))
    check_dtype("logits", logits, FLOAT_DTYPES)
    batch, frames, rows, vocab = logits.shape
    check_shape("targets", targets, (batch, rows - 1))
    check_targets(targets, logit_lengths, target_lengths, frames, vocab, blank)
    label_ids = row_label_ids(targets, target_lengths, blank)
    return label_ids[:, None, :].expand(batch, frames, rows)  # (B, T, U+1)


def edge_log_probs(logits: Tensor, label_ids: Tensor, blank: int) -> tuple[Tensor, Tensor]:
    """log_softmax(logits)[..., blank] and log_softmax(logits)[..., label_ids], without
    building log_softmax.

    logits: (B, T, S, V) float; label_ids: (B, T, S) int64 in [0, V) (may be an expand()ed view).
    Returns (blank_lp, label_lp), each (B, T, S) in working_dtype(logits).
    """
    return _EdgeLogProbs.apply(logits, label_ids, blank)


class _EdgeLogProbs(torch.autograd.Function):
    """Fused log-softmax + gather of two entries per row, with an in-place analytic backward.

    With g_b, g_l the incoming gradients of the blank and label entries of a row and p its
    softmax, d/dlogits = g_b * onehot(blank) + g_l * onehot(label) - (g_b + g_l) * p.
    """

    @staticmethod
    def forward(  # type: ignore[override]
        ctx: FunctionCtx, logits: Tensor, label_ids: Tensor, blank: int
    ) -> tuple[Tensor, Tensor]:
        work = working_dtype(logits)
        lse = torch.empty(logits.shape[:-1], dtype=work, device=logits.device)
        step = _frames_per_chunk(logits)
        for part, out in zip(logits.split(step, 1), lse.split(step, 1)):
            torch.logsumexp(part.to(work), dim=-1, out=out)
        blank_lp = logits[..., blank].to(work) - lse
        label_lp = logits.gather(-1, label_ids.unsqueeze(-1)).squeeze(-1).to(work) - lse
        ctx.save_for_backward(logits, label_ids, lse)
        ctx.blank = blank  # type: ignore[attr-defined]
        return blank_lp, label_lp

    @staticmethod
    @once_differentiable
    def backward(  # type: ignore[override]
        ctx: FunctionCtx, grad_blank: Tensor, grad_label: Tensor
    ) -> tuple[Tensor, None, None]:
        logits, label_ids, lse = ctx.saved_tensors  # type: ignore[attr-defined]
        occupancy = grad_blank + grad_label
        grad = torch.empty_like(logits)
        step = _frames_per_chunk(logits)
        for part, out, part_lse, part_occ in zip(
            logits.split(step, 1), grad.split(step, 1), lse.split(step, 1), occupancy.split(step, 1)
        ):
            # In place in the gradient buffer, unless half logits need a float32 chunk first.
            same = out.dtype == lse.dtype
            softmax = out if same else torch.empty(part.shape, dtype=lse.dtype, device=part.device)
            torch.sub(part, part_lse.unsqueeze(-1), out=softmax)
            softmax.exp_().mul_(-part_occ.unsqueeze(-1))  # -(g_b + g_l) * softmax
            if not same:
                out.copy_(softmax)
        grad[..., ctx.blank] += grad_blank.to(grad.dtype)  # type: ignore[attr-defined]
        grad.scatter_add_(-1, label_ids.unsqueeze(-1), grad_label.to(grad.dtype).unsqueeze(-1))
        return grad, None, None


def _frames_per_chunk(logits: Tensor) -> int:
    """How many frames of (B, T, S, V) `logits` make a chunk of about _CHUNK_ELEMENTS values."""
    per_frame = max(1, logits[:, :1].numel())
    return max(1, _CHUNK_ELEMENTS // per_frame)


def lattice_loss(
    blank_lp: Tensor,
    label_lp: Tensor,
    starts: Tensor | None,
    frame_lengths: Tensor,
    target_lengths: Tensor,
    reduction: str,
    autograd: bool = False,
) -> Tensor:
    """-lattice_log_likelihood(...) reduced by `reduction`, in the dtype of `blank_lp`."""
    log_likelihood = lattice_log_likelihood(
        blank_lp, label_lp, starts, frame_lengths, target_lengths, autograd=autograd
    )
    return reduce_loss(-log_likelihood.to(blank_lp.dtype), reduction)


def lattice_log_likelihood(
    blank_lp: Tensor,
    label_lp: Tensor,
    starts: Tensor | None,
    frame_lengths: Tensor,
    target_lengths: Tensor,
    autograd: bool = False,
) -> Tensor:
    """log P(targets) summed over all paths of a (possibly banded) RNN-T lattice, in float64.

    blank_lp, label_lp: (B, T, S) log-probabilities of the blank edge (t, u) -> (t+1, u) and
    the label edge (t, u) -> (t, u+1), at lattice node u = starts[b, t] + s. The label edge
    of the band's last position leaves the band and is never read.
    starts: (B, T) int64 first lattice row of each frame's band, non-decreasing by at most
    S-1 per frame, starts[:, 0] == 0; None means all zero (the full lattice, S = U+1).
    frame_lengths, target_lengths: (B,) T_b and U_b; the path ends with the blank leaving
    node (T_b - 1, U_b), which must lie inside the band.
    autograd: differentiate by autograd through the alpha recursion (the plain formulation,
    kept as the tests' reference) instead of the analytic alpha-beta backward.
    Returns (B,) float64; its gradient with respect to an edge's log-prob is that edge's
    posterior occupancy.
    """
    batch = blank_lp.shape[0]
    shifts = None if starts is None else starts.diff(dim=1)  # (B, T-1)
    items = torch.arange(batch, device=blank_lp.device)
    last_frame = frame_lengths.long() - 1
    last_pos = target_lengths.long()
    if starts is not None:
        last_pos = last_pos - starts[items, last_frame]
    # float64 keeps the prefix-sum scans exact enough even for long utterances: they cancel
    # sums of hundreds of log-probs. Only (B, T, S) tensors, so it is cheap.
    blank64, label64 = blank_lp.double(), label_lp.double()
    if autograd:
        alpha = _forward_variables(blank64, label64, shifts)
        return alpha[items, last_frame, last_pos] + blank64[items, last_frame, last_pos]
    return _LatticeLogLikelihood.apply(blank64, label64, shifts, last_frame, last_pos)


class _LatticeLogLikelihood(torch.autograd.Function):
    """The lattice log-likelihood with the analytic backward: edge occupancy
    exp(alpha(from) + edge + beta(to) - log P). Autograd through the alpha loop would
    replay T logcumsumexp backwards, several times slower than one beta pass."""

    @staticmethod
    def forward(  # type: ignore[override]
        ctx: FunctionCtx,
        blank: Tensor,
        label: Tensor,
        shifts: Tensor | None,
        last_frame: Tensor,
        last_pos: Tensor,
    ) -> Tensor:
        alpha = _forward_variables(blank, label, shifts)
        items = torch.arange(blank.shape[0], device=blank.device)
        log_likelihood = alpha[items, last_frame, last_pos] + blank[items, last_frame, last_pos]
        ctx.save_for_backward(blank, label, shifts, last_frame, last_pos, alpha, log_likelihood)
        return log_likelihood

    @staticmethod
    @once_differentiable
    def backward(  # type: ignore[override]
        ctx: FunctionCtx, grad: Tensor
    ) -> tuple[Tensor, Tensor, None, None, None]:
        saved = ctx.saved_tensors  # type: ignore[attr-defined]
        blank, label, shifts, last_frame, last_pos, alpha, log_likelihood = saved
        beta, onward = _backward_variables(blank, label, shifts, last_frame, last_pos)
        # (B, T, S) log of alpha / P at each node, then times each outgoing edge and beta.
        alpha_share = alpha - log_likelihood[:, None, None]
        blank_occupancy = (alpha_share + blank + onward).exp()
        label_occupancy = (alpha_share[..., :-1] + label[..., :-1] + beta[..., 1:]).exp()
        label_occupancy = F.pad(label_occupancy, (0, 1))  # the band's last label edge leaves it
        scale = grad[:, None, None]
        return scale * blank_occupancy, scale * label_occupancy, None, None, None


def _label_prefix_sums(label: Tensor) -> Tensor:
    """(B, T, S) log-prob of emitting the labels from band position 0 up to s at frame t."""
    return F.pad(label[..., :-1].cumsum(dim=-1), (1, 0))


def _shift_band(x: Tensor, offsets: Tensor) -> Tensor:
    """(B, S) -> (B, S): out[b, s] = x[b, s + offsets[b]], -inf where that leaves [0, S).
    Moves values between the bands of neighbouring frames."""
    width = x.shape[-1]
    positions = torch.arange(width, device=x.device)
    index = (positions + offsets.unsqueeze(-1) + 1).clamp(0, width + 1)  # (B, S) into the padded x
    return F.pad(x, (1, 1), value=float("-inf")).gather(1, index)


def _forward_variables(blank: Tensor, label: Tensor, shifts: Tensor | None) -> Tensor:
    """alpha (B, T, S): log-prob of reaching each band node from (0, 0).

    Within a frame, alpha(t, s) = log sum over s' <= s of arrive(s') * prod of the labels
    s'..s-1, which a prefix sum and logcumsumexp evaluate for all s at once: a loop over
    frames only. `shifts` (B, T-1) is starts[t] - starts[t-1] (None: all zero).
    """
    frames = blank.shape[1]
    cum = _label_prefix_sums(label)  # (B, T, S)
    alphas = [cum[:, 0]]
    for t in range(1, frames):
        arrive = alphas[-1] + blank[:, t - 1]  # (B, S) in the band of frame t-1
        if shifts is not None:
            arrive = _shift_band(arrive, shifts[:, t - 1])
        # The band's first node is always reachable by a blank, so logcumsumexp never
        # starts on -inf (whose autograd gradient is NaN).
        alphas.append(cum[:, t] + torch.logcumsumexp(arrive - cum[:, t], dim=-1))
    return torch.stack(alphas, dim=1)


def _backward_variables(
    blank: Tensor, label: Tensor, shifts: Tensor | None, last_frame: Tensor, last_pos: Tensor
) -> tuple[Tensor, Tensor]:
    """beta (B, T, S): log-prob of finishing from each band node, and onward (B, T, S):
    the beta of the node that the blank edge leaving each node reaches (0 for the final
    blank, -inf where that blank leads nowhere). The mirror image of _forward_variables."""
    batch, frames, width = blank.shape
    cum = _label_prefix_sums(label)  # (B, T, S)
    positions = torch.arange(width, device=blank.device)
    final = torch.zeros(batch, width, dtype=blank.dtype, device=blank.device)
    final.masked_fill_(positions != last_pos.unsqueeze(-1), float("-inf"))  # (B, S)
    after = torch.full_like(final, float("-inf"))  # beta of frame t+1, in frame t's band
    betas: list[Tensor] = []
    onwards: list[Tensor] = []
    for t in reversed(range(frames)):
        onward = torch.where((last_frame == t).unsqueeze(-1), final, after)
        depart = cum[:, t] + blank[:, t] + onward
        beta = depart.flip(-1).logcumsumexp(dim=-1).flip(-1) - cum[:, t]
        betas.append(beta)
        onwards.append(onward)
        if t > 0:
            after = beta if shifts is None else _shift_band(beta, -shifts[:, t - 1])
    return torch.stack(betas[::-1], dim=1), torch.stack(onwards[::-1], dim=1)


def working_dtype(x: Tensor) -> torch.dtype:
    """float32 for half-precision `x`, else its own dtype: the dtype to sum it in."""
    return torch.promote_types(x.dtype, torch.float32)


def reduce_loss(per_item: Tensor, reduction: str) -> Tensor:
    """Apply "mean" (over the batch) | "sum" | "none" to (B,) per-item losses."""
    if reduction == "mean":
        return per_item.mean()
    if reduction == "sum":
        return per_item.sum()
    return per_item


def check_reduction(reduction: str) -> None:
    """Raise DataError unless `reduction` is one this module knows."""
    if reduction not in REDUCTIONS:
        raise DataError(f"reduction={reduction!r} is unknown; use one of {', '.join(REDUCTIONS)}")


def check_targets(
    targets: Tensor,
    frame_lengths: Tensor,
    target_lengths: Tensor,
    frames: int,
    vocab: int,
    blank: int,
    min_frames: int = 1,
) -> None:
    """Check the label ids and lengths every loss here shares.

    targets: (B, U) integer; frame_lengths, target_lengths: (B,) integer.
    Raises ShapeError for wrong dims, dtypes, batch sizes, or lengths longer than the
    tensors; DataError for negative lengths, bad label ids or a bad blank id.
    """
    check_dtype("targets", targets, _INT_DTYPES)
    for name, lengths in (("logit/input lengths", frame_lengths), ("target_lengths", target_lengths)):
        check_shape(name, lengths, ("B",))
        check_dtype(name, lengths, _INT_DTYPES)
    check_same_batch(targets=targets, frame_lengths=frame_lengths, target_lengths=target_lengths)
    if not 0 <= blank < vocab:
        raise DataError(
            f"blank id {blank} is outside the vocabulary [0, {vocab}); pass the blank id the model was built with"
        )
    _check_lengths("frame", frame_lengths, min_frames, frames, "logits/log_probs have T")
    _check_lengths("target", target_lengths, 0, targets.shape[1], "targets have U")
    valid = _valid_mask(targets, target_lengths)
    bad = valid & ((targets < 0) | (targets >= vocab) | (targets == blank))
    if bad.any():
        item, pos = (int(i) for i in bad.nonzero()[0])
        raise DataError(
            f"targets[{item}, {pos}] = {int(targets[item, pos])} is not a label id: labels must "
            f"be in [0, {vocab}) and differ from blank ({blank}); fix the tokenization or vocab size"
        )


def _check_lengths(kind: str, lengths: Tensor, low: int, high: int, holder: str) -> None:
    """Raise DataError for lengths below `low`, ShapeError for lengths above `high`."""
    if (lengths < low).any():
        item = int((lengths < low).nonzero()[0, 0])
        raise DataError(
            f"{kind} length of item {item} is {int(lengths[item])}, below {low}; "
            f"drop that item or fix how its lengths are computed"
        )
    if (lengths > high).any():
        item = int((lengths > high).nonzero()[0, 0])
        raise ShapeError(
            f"{kind} length of item {item} is {int(lengths[item])} but the {holder} = {high}; "
            f"pad the tensor to the longest item or fix the lengths"
        )


def check_ctc_feasible(targets: Tensor, input_lengths: Tensor, target_lengths: Tensor) -> None:
    """Raise DataError where a label sequence needs more frames than it has: CTC puts a blank
    between equal neighbours, so U_b labels with r adjacent repeats need U_b + r frames."""
    valid = _valid_mask(targets, target_lengths)
    repeats = (targets[:, 1:] == targets[:, :-1]) & valid[:, 1:]  # (B, U-1)
    needed = target_lengths + repeats.sum(dim=1)
    short = needed > input_lengths
    if short.any():
        item = int(short.nonzero()[0, 0])
        raise DataError(
            f"item {item}: {int(target_lengths[item])} labels with {int(needed[item] - target_lengths[item])} "
            f"adjacent repeats need {int(needed[item])} frames but only {int(input_lengths[item])} are given; "
            f"use less subsampling or drop utterances this short"
        )


def _valid_mask(targets: Tensor, target_lengths: Tensor) -> Tensor:
    """(B, U) bool: True at the first target_lengths[b] positions of each row."""
    positions = torch.arange(targets.shape[1], device=targets.device)
    return positions < target_lengths.unsqueeze(1)


def row_label_ids(targets: Tensor, target_lengths: Tensor, blank: int) -> Tensor:
    """(B, U+1) int64: the label emitted when leaving each lattice row. Row U (and padding)
    has none; blank stands in there, and the lattice never reads those label edges."""
    return F.pad(sanitized_targets(targets, target_lengths, blank), (0, 1), value=blank)


def sanitized_targets(targets: Tensor, target_lengths: Tensor, blank: int) -> Tensor:
    """(B, U) int64 copy of `targets` with padding replaced by `blank`, safe to gather with."""
    return targets.long().masked_fill(~_valid_mask(targets, target_lengths), blank)

