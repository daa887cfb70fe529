"""RNN-T, pruned RNN-T and CTC losses against independent references: brute-force
enumeration of every alignment (or every one inside the band), a numpy alpha-beta
gradient, torch.autograd.gradcheck, and the plain log_softmax + autograd formulation."""

from __future__ import annotations

import itertools
import math
import re

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from asr.errors import DataError, ShapeError
from models import losses
from models.losses import ctc_loss, rnnt_loss
from reference_losses import naive_rnnt_loss
from models.pruned_loss import prune, pruned_rnnt_loss, simple_loss_and_ranges


def _np_log_softmax(logits: np.ndarray) -> np.ndarray:
    top = logits.max(axis=-1, keepdims=True)
    return logits - top - np.log(np.exp(logits - top).sum(axis=-1, keepdims=True))


def _alignments(frames: int, labels: int) -> list[tuple[str, ...]]:
    """Every RNN-T alignment as a move string: 'l' emits the next label at this frame,
    'b' (blank) moves to the next frame; exactly `frames` blanks, the last one final."""
    def extend(t: int, u: int) -> list[tuple[str, ...]]:
        paths: list[tuple[str, ...]] = []
        if u < labels:
            paths += [("l",) + rest for rest in extend(t, u + 1)]
        if t == frames - 1 and u == labels:
            paths.append(("b",))
        elif t < frames - 1:
            paths += [("b",) + rest for rest in extend(t + 1, u)]
        return paths

    return extend(0, 0)


def _brute_force_loss(logits: np.ndarray, labels: list[int], blank: int) -> float:
    """-log of the summed probability of every alignment; logits (T_b, U_b+1, V) float64."""
    log_probs = _np_log_softmax(logits)
    path_scores = []
    for path in _alignments(logits.shape[0], len(labels)):
        t = u = 0
        score = 0.0
        for move in path:
            if move == "l":
                score += log_probs[t, u, labels[u]]
                u += 1
            else:
                score += log_probs[t, u, blank]
                t += 1
        path_scores.append(score)
    top = max(path_scores)
    return -(top + math.log(sum(math.exp(s - top) for s in path_scores)))


def _alpha_beta_gradient(
    logits: np.ndarray, labels: list[int], frames: int, blank: int
) -> tuple[float, np.ndarray]:
    """Loss and d loss / d logits by the textbook node-by-node alpha-beta recursions.

    logits: (T, U+1, V) float64, of which the first `frames` frames and len(labels)+1 rows count.
    """
    n_labels = len(labels)
    lp = _np_log_softmax(logits)
    alpha = np.full((frames, n_labels + 1), -np.inf)
    for t, u in itertools.product(range(frames), range(n_labels + 1)):
        terms = [0.0] if t == u == 0 else []
        if t > 0:
            terms.append(alpha[t - 1, u] + lp[t - 1, u, blank])
        if u > 0:
            terms.append(alpha[t, u - 1] + lp[t, u - 1, labels[u - 1]])
        alpha[t, u] = np.logaddexp.reduce(terms)
    beta = np.full((frames, n_labels + 1), -np.inf)
    for t, u in reversed(list(itertools.product(range(frames), range(n_labels + 1)))):
        terms = [lp[t, u, blank]] if (t, u) == (frames - 1, n_labels) else []
        if t < frames - 1:
            terms.append(beta[t + 1, u] + lp[t, u, blank])
        if u < n_labels:
            terms.append(beta[t, u + 1] + lp[t, u, labels[u]])
        beta[t, u] = np.logaddexp.reduce(terms) if terms else -np.inf
    log_p = beta[0, 0]
    grad = np.zeros_like(logits)
    for t, u in itertools.product(range(frames), range(n_labels + 1)):
        node = np.exp(alpha[t, u] + beta[t, u] - log_p)
        grad[t, u] = np.exp(lp[t, u]) * node
        if t < frames - 1 or u == n_labels:
            after = beta[t + 1, u] if t < frames - 1 else 0.0
            grad[t, u, blank] -= np.exp(alpha[t, u] + lp[t, u, blank] + after - log_p)
        if u < n_labels:
            grad[t, u, labels[u]] -= np.exp(alpha[t, u] + lp[t, u, labels[u]] + beta[t, u + 1] - log_p)
    return -log_p, grad


def _random_batch(
    seed: int, batch: int, frames: int, tokens: int, vocab: int, blank: int = 0,
    dtype: torch.dtype = torch.float64,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Random logits (B, T, U+1, V), targets avoiding blank with -1 padding, and lengths
    that include the extremes (T_b = T, U_b = U, U_b = 0)."""
    gen = torch.Generator().manual_seed(seed)
    logits = torch.randn(batch, frames, tokens + 1, vocab, generator=gen, dtype=dtype) * 2
    labels = torch.randint(1, vocab, (batch, tokens), generator=gen)
    targets = (labels + blank) % vocab  # shifts the label range so that no label equals blank
    logit_lengths = torch.randint(1, frames + 1, (batch,), generator=gen)
    target_lengths = torch.randint(0, tokens + 1, (batch,), generator=gen)
    logit_lengths[0], target_lengths[0] = frames, tokens
    target_lengths[-1] = 0
    targets[losses.sanitized_targets(targets, target_lengths, -2) == -2] = -1
    return logits, targets, logit_lengths, target_lengths


def _item(logits: torch.Tensor, targets: torch.Tensor, frames: int, n_labels: int) -> tuple[np.ndarray, list[int]]:
    return logits[:frames, : n_labels + 1].detach().numpy(), targets[:n_labels].tolist()


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("blank", [0, 2])
def test_loss_equals_brute_force_over_all_alignments(seed: int, blank: int) -> None:
    logits, targets, logit_lengths, target_lengths = _random_batch(seed, 5, 4, 3, 5, blank)
    got = rnnt_loss(logits, targets, logit_lengths, target_lengths, blank, reduction="none")
    for b in range(len(logits)):
        item_logits, labels = _item(logits[b], targets[b], int(logit_lengths[b]), int(target_lengths[b]))
        assert got[b].item() == pytest.approx(_brute_force_loss(item_logits, labels, blank), abs=1e-6)


def test_brute_force_enumerates_the_binomial_number_of_alignments() -> None:
    # An RNN-T alignment interleaves U labels with T-1 non-final blanks.
    assert len(_alignments(4, 3)) == math.comb(3 + 3, 3)
    assert len(_alignments(1, 0)) == 1


@pytest.mark.parametrize("seed", range(3))
def test_gradient_matches_numpy_alpha_beta(seed: int) -> None:
    logits, targets, logit_lengths, target_lengths = _random_batch(seed, 4, 4, 3, 5)
    logits.requires_grad_(True)
    per_item = rnnt_loss(logits, targets, logit_lengths, target_lengths, reduction="none")
    (grad,) = torch.autograd.grad(per_item.sum(), logits)
    for b in range(len(logits)):
        n_labels = int(target_lengths[b])
        want_loss, want_grad = _alpha_beta_gradient(
            logits[b].detach().numpy(), targets[b, :n_labels].tolist(), int(logit_lengths[b]), blank=0
        )
        assert per_item[b].item() == pytest.approx(want_loss, abs=1e-6)
        np.testing.assert_allclose(grad[b].numpy(), want_grad, rtol=0, atol=1e-6)


def test_gradcheck_float64() -> None:
    logits, targets, logit_lengths, target_lengths = _random_batch(7, 3, 3, 2, 4, blank=1)
    logits.requires_grad_(True)

    def loss_fn(x: torch.Tensor) -> torch.Tensor:
        return rnnt_loss(x, targets, logit_lengths, target_lengths, blank=1, reduction="none")

    assert torch.autograd.gradcheck(loss_fn, (logits,))


def test_fused_path_matches_plain_autograd_formulation() -> None:
    logits, targets, logit_lengths, target_lengths = _random_batch(3, 3, 12, 6, 9)
    logits.requires_grad_(True)
    fused = rnnt_loss(logits, targets, logit_lengths, target_lengths, reduction="none")
    plain = naive_rnnt_loss(logits, targets, logit_lengths, target_lengths, reduction="none")
    weights = torch.tensor([0.5, 1.0, 2.0], dtype=torch.float64)
    (fused_grad,) = torch.autograd.grad((fused * weights).sum(), logits)
    (plain_grad,) = torch.autograd.grad((plain * weights).sum(), logits)
    torch.testing.assert_close(fused, plain, rtol=0, atol=1e-10)
    torch.testing.assert_close(fused_grad, plain_grad, rtol=0, atol=1e-10)


def test_chunked_logsumexp_gives_the_same_result(monkeypatch: pytest.MonkeyPatch) -> None:
    logits, targets, logit_lengths, target_lengths = _random_batch(4, 2, 7, 3, 6)
    logits.requires_grad_(True)
    whole = rnnt_loss(logits, targets, logit_lengths, target_lengths)
    (whole_grad,) = torch.autograd.grad(whole, logits)
    monkeypatch.setattr(losses, "_CHUNK_ELEMENTS", 50)  # a few frames per chunk
    chunked = rnnt_loss(logits, targets, logit_lengths, target_lengths)
    (chunked_grad,) = torch.autograd.grad(chunked, logits)
    torch.testing.assert_close(chunked, whole, rtol=0, atol=1e-12)
    torch.testing.assert_close(chunked_grad, whole_grad, rtol=0, atol=1e-12)


@pytest.mark.parametrize("scale", [1.0, 30.0])
def test_float32_agrees_with_float64(scale: float) -> None:
    logits, targets, logit_lengths, target_lengths = _random_batch(5, 3, 60, 20, 32)
    logits = logits * scale  # 30: peaky, trained-like distributions
    results = {}
    for dtype in (torch.float32, torch.float64):
        x = logits.to(dtype).requires_grad_(True)
        loss = rnnt_loss(x, targets, logit_lengths, target_lengths, reduction="none")
        (grad,) = torch.autograd.grad(loss.sum(), x)
        assert loss.dtype == grad.dtype == dtype
        results[dtype] = (loss.double(), grad.double())
    torch.testing.assert_close(results[torch.float32][0], results[torch.float64][0], rtol=1e-5, atol=1e-4)
    torch.testing.assert_close(results[torch.float32][1], results[torch.float64][1], rtol=0, atol=1e-5)


def test_reductions() -> None:
    logits, targets, logit_lengths, target_lengths = _random_batch(6, 4, 5, 3, 6)
    per_item = rnnt_loss(logits, targets, logit_lengths, target_lengths, reduction="none")
    assert per_item.shape == (4,)
    assert (per_item > 0).all()
    mean = rnnt_loss(logits, targets, logit_lengths, target_lengths)
    total = rnnt_loss(logits, targets, logit_lengths, target_lengths, reduction="sum")
    torch.testing.assert_close(mean, per_item.mean())
    torch.testing.assert_close(total, per_item.sum())


def test_single_frame_empty_target_is_minus_log_blank() -> None:
    logits = torch.randn(1, 1, 1, 5, dtype=torch.float64)
    loss = rnnt_loss(logits, torch.zeros(1, 0, dtype=torch.long), torch.tensor([1]), torch.tensor([0]))
    torch.testing.assert_close(loss, -logits[0, 0, 0].log_softmax(-1)[0])


def _good_inputs() -> dict[str, object]:
    logits, targets, logit_lengths, target_lengths = _random_batch(0, 2, 4, 3, 5)
    return dict(logits=logits, targets=targets, logit_lengths=logit_lengths, target_lengths=target_lengths)


def _with(**changes: object) -> dict[str, object]:
    return {**_good_inputs(), **changes}


BAD_RNNT_INPUTS = {
    "logits 3-D": (_with(logits=torch.randn(2, 4, 5)), ShapeError, "expected 4 dims"),
    "logits int": (_with(logits=torch.zeros(2, 4, 4, 5, dtype=torch.long)), ShapeError, "dtype"),
    "targets 1-D": (_with(targets=torch.ones(3, dtype=torch.long)), ShapeError, "targets"),
    "targets float": (_with(targets=torch.ones(2, 3)), ShapeError, "targets: expected dtype"),
    "U+1 mismatch": (_with(targets=torch.ones(2, 4, dtype=torch.long)), ShapeError, "targets: expected shape"),
    "T too small": (_with(logit_lengths=torch.tensor([5, 2])), ShapeError, "frame length of item 0 is 5"),
    "U too small": (_with(target_lengths=torch.tensor([1, 4])), ShapeError, "target length of item 1 is 4"),
    "negative target length": (_with(target_lengths=torch.tensor([-1, 2])), DataError, "below 0"),
    "zero frames": (_with(logit_lengths=torch.tensor([4, 0])), DataError, "below 1"),
    "label >= V": (_with(targets=torch.tensor([[1, 5, 2], [1, 1, 1]])), DataError, "targets[0, 1] = 5"),
    "negative label": (_with(targets=torch.tensor([[1, -1, 3], [1, 1, 1]])), DataError, "targets[0, 1] = -1"),
    "label is blank": (_with(targets=torch.tensor([[1, 2, 3], [1, 0, 1]]), target_lengths=torch.tensor([3, 2])), DataError, "differ from blank"),
    "batch mismatch": (_with(target_lengths=torch.tensor([1, 1, 1])), ShapeError, "batch sizes differ"),
    "lengths 2-D": (_with(logit_lengths=torch.ones(2, 1, dtype=torch.long)), ShapeError, "expected 1 dims"),
}


@pytest.mark.parametrize("case", BAD_RNNT_INPUTS, ids=list(BAD_RNNT_INPUTS))
def test_bad_rnnt_inputs_raise_clear_errors(case: str) -> None:
    kwargs, error, fragment = BAD_RNNT_INPUTS[case]
    with pytest.raises(error, match=re.escape(fragment)):
        rnnt_loss(**kwargs)  # type: ignore[arg-type]


def test_bad_blank_and_reduction_raise() -> None:
    with pytest.raises(DataError, match="blank id 5 is outside"):
        rnnt_loss(**_good_inputs(), blank=5)  # type: ignore[arg-type]
    with pytest.raises(DataError, match="reduction='avg' is unknown"):
        rnnt_loss(**_good_inputs(), reduction="avg")  # type: ignore[arg-type]


def test_padding_beyond_lengths_is_ignored() -> None:
    inputs = _good_inputs()
    targets = inputs["targets"].clone()  # type: ignore[union-attr]
    targets[1, int(inputs["target_lengths"][1]):] = 99  # type: ignore[index]
    reference = rnnt_loss(**inputs, reduction="none")  # type: ignore[arg-type]
    torch.testing.assert_close(rnnt_loss(**{**inputs, "targets": targets}, reduction="none"), reference)  # type: ignore[arg-type]


def _ctc_batch() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(0)
    log_probs = torch.randn(3, 8, 6, generator=gen, dtype=torch.float64).log_softmax(-1)
    targets = torch.tensor([[1, 1, 2, 3], [4, 5, 0, 0], [2, 2, 2, 0]])
    input_lengths = torch.tensor([8, 5, 5])  # item 2: 3 labels + 2 repeats = 5 frames exactly
    target_lengths = torch.tensor([4, 2, 3])
    return log_probs, targets, input_lengths, target_lengths


def test_ctc_matches_torch_per_item_and_reduces_over_the_batch() -> None:
    log_probs, targets, input_lengths, target_lengths = _ctc_batch()
    per_item = ctc_loss(log_probs, targets, input_lengths, target_lengths, reduction="none")
    want = F.ctc_loss(log_probs.transpose(0, 1), targets, input_lengths, target_lengths, reduction="none")
    torch.testing.assert_close(per_item, want)
    assert torch.isfinite(per_item).all()
    torch.testing.assert_close(ctc_loss(log_probs, targets, input_lengths, target_lengths), per_item.mean())
    torch.testing.assert_close(ctc_loss(log_probs, targets, input_lengths, target_lengths, reduction="sum"), per_item.sum())


def test_ctc_too_few_frames_for_repeats_raises() -> None:
    log_probs, targets, input_lengths, target_lengths = _ctc_batch()
    with pytest.raises(DataError, match="item 2: 3 labels with 2 adjacent repeats need 5 frames but only 4"):
        ctc_loss(log_probs, targets, torch.tensor([8, 5, 4]), target_lengths)


def test_ctc_bad_labels_and_lengths_raise() -> None:
    log_probs, targets, input_lengths, target_lengths = _ctc_batch()
    with pytest.raises(DataError, match="differ from blank"):
        ctc_loss(log_probs, targets, input_lengths, torch.tensor([4, 3, 3]))
    with pytest.raises(ShapeError, match="frame length of item 1 is 9"):
        ctc_loss(log_probs, targets, torch.tensor([8, 9, 5]), target_lengths)
    with pytest.raises(ShapeError, match="expected 3 dims"):
        ctc_loss(log_probs[0], targets, input_lengths, target_lengths)


# ---- pruned RNN-T loss ----


def _am_lm(seed: int, batch: int, frames: int, tokens: int, vocab: int) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    am = torch.randn(batch, frames, vocab, generator=gen, dtype=torch.float64)
    lm = torch.randn(batch, tokens + 1, vocab, generator=gen, dtype=torch.float64)
    return am, lm


def _band_logits(full_logits: torch.Tensor, ranges: torch.Tensor) -> torch.Tensor:
    """(B, T, U+1, V) -> (B, T, S, V): the logits of the band nodes."""
    vocab = full_logits.shape[-1]
    return full_logits.gather(2, ranges.unsqueeze(-1).expand(-1, -1, -1, vocab))


def test_trivial_joiner_loss_equals_full_loss_of_am_plus_lm() -> None:
    logits, targets, logit_lengths, target_lengths = _random_batch(1, 3, 6, 3, 7)
    am, lm = _am_lm(1, 3, 6, 3, 7)
    simple, _ = simple_loss_and_ranges(am, lm, targets, logit_lengths, target_lengths, prune_range=2, reduction="none")
    full = rnnt_loss(am[:, :, None] + lm[:, None], targets, logit_lengths, target_lengths, reduction="none")
    torch.testing.assert_close(simple, full, rtol=0, atol=1e-10)


def test_pruned_loss_with_the_whole_lattice_as_band_equals_full_loss() -> None:
    logits, targets, logit_lengths, target_lengths = _random_batch(2, 3, 7, 4, 6)
    am, lm = _am_lm(2, 3, 7, 4, 6)
    _, ranges = simple_loss_and_ranges(am, lm, targets, logit_lengths, target_lengths, prune_range=5)
    assert ranges.shape == (3, 7, 5) and (ranges == torch.arange(5)).all()
    logits.requires_grad_(True)
    pruned = pruned_rnnt_loss(_band_logits(logits, ranges), targets, ranges, logit_lengths, target_lengths, reduction="none")
    full = rnnt_loss(logits, targets, logit_lengths, target_lengths, reduction="none")
    torch.testing.assert_close(pruned, full, rtol=0, atol=0)
    pruned_grad, full_grad = (torch.autograd.grad(loss.sum(), logits)[0] for loss in (pruned, full))
    torch.testing.assert_close(pruned_grad, full_grad, rtol=0, atol=0)


def _in_band(path: tuple[str, ...], starts: list[int], width: int) -> bool:
    t = u = 0
    for move in path:
        if not starts[t] <= u < starts[t] + width:
            return False
        t, u = (t, u + 1) if move == "l" else (t + 1, u)
    return True


@pytest.mark.parametrize("seed", range(3))
@pytest.mark.parametrize("width", [2, 3])
def test_pruned_loss_equals_brute_force_over_alignments_inside_the_band(seed: int, width: int) -> None:
    logits, targets, logit_lengths, target_lengths = _random_batch(seed, 4, 4, 3, 5)
    logit_lengths = torch.maximum(logit_lengths, target_lengths)  # S = 2 carries 1 label per frame
    am, lm = _am_lm(seed, 4, 4, 3, 5)
    _, ranges = simple_loss_and_ranges(am, lm, targets, logit_lengths, target_lengths, prune_range=width)
    band = _band_logits(logits, ranges)
    got = pruned_rnnt_loss(band, targets, ranges, logit_lengths, target_lengths, reduction="none")
    for b in range(len(logits)):
        frames, n_labels = int(logit_lengths[b]), int(target_lengths[b])
        starts = ranges[b, :, 0].tolist()
        log_probs = _np_log_softmax(logits[b].numpy())
        scores = []
        for path in filter(lambda p: _in_band(p, starts, width), _alignments(frames, n_labels)):
            t = u = 0
            score = 0.0
            for move in path:
                score += log_probs[t, u, targets[b, u] if move == "l" else 0]
                t, u = (t, u + 1) if move == "l" else (t + 1, u)
            scores.append(score)
        assert got[b].item() == pytest.approx(-float(np.logaddexp.reduce(scores)), abs=1e-6)


def test_band_starts_let_a_path_through() -> None:
    for seed, width in itertools.product(range(5), [2, 3, 4]):
        logits, targets, logit_lengths, target_lengths = _random_batch(seed, 6, 9, 7, 8)
        logit_lengths = torch.maximum(logit_lengths, target_lengths)  # S = 2 carries 1 label per frame
        am, lm = _am_lm(seed, 6, 9, 7, 8)
        am[..., 0] -= 3.0 * (seed % 2)  # odd seeds: rarer blanks, bands that climb fast
        _, ranges = simple_loss_and_ranges(am, lm, targets, logit_lengths, target_lengths, prune_range=width)
        starts = ranges[..., 0]
        rises = starts.diff(dim=1)
        last = starts[torch.arange(6), logit_lengths - 1]
        assert (ranges == starts.unsqueeze(-1) + torch.arange(width)).all()
        assert (starts[:, 0] == 0).all() and (rises >= 0).all() and (rises <= width - 1).all()
        assert (last <= target_lengths).all() and (target_lengths <= last + width - 1).all()
        assert (starts + width - 1 <= 7).all()


def _peaky_case() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """A trained-like case: each label is emitted at a known frame, blank elsewhere, by a
    clear margin; the full joiner is the trivial one plus noise."""
    targets = torch.tensor([[3, 5, 2, 7], [4, 1, 6, 6]])
    target_lengths, logit_lengths = torch.tensor([4, 3]), torch.tensor([16, 11])
    am = torch.zeros(2, 16, 8, dtype=torch.float64)
    lm = torch.zeros(2, 5, 8, dtype=torch.float64)
    am[..., 0] = 8.0
    for b, k in itertools.product(range(2), range(4)):
        if k < target_lengths[b]:
            am[b, 2 + 3 * k, 0], am[b, 2 + 3 * k, targets[b, k]] = 0.0, 8.0
            lm[b, k, targets[b, k]] = 1.0
    noise = torch.randn(2, 16, 5, 8, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    full_logits = am[:, :, None] + lm[:, None] + 0.5 * noise
    return am, lm, full_logits, targets, logit_lengths, target_lengths


@pytest.mark.parametrize("width", [2, 3])
def test_pruned_loss_is_close_to_full_loss_on_a_peaky_case(width: int) -> None:
    am, lm, full_logits, targets, logit_lengths, target_lengths = _peaky_case()
    _, ranges = simple_loss_and_ranges(am, lm, targets, logit_lengths, target_lengths, prune_range=width)
    pruned = pruned_rnnt_loss(_band_logits(full_logits, ranges), targets, ranges, logit_lengths, target_lengths, reduction="none")
    full = rnnt_loss(full_logits, targets, logit_lengths, target_lengths, reduction="none")
    assert (pruned >= full).all()  # the band keeps a subset of the alignments
    torch.testing.assert_close(pruned, full, rtol=1e-2, atol=0)


def test_gradcheck_through_prune_joiner_and_both_losses() -> None:
    _, targets, logit_lengths, target_lengths = _random_batch(8, 2, 4, 3, 5)
    gen = torch.Generator().manual_seed(8)
    enc = torch.randn(2, 4, 6, generator=gen, dtype=torch.float64, requires_grad=True)
    dec = torch.randn(2, 4, 6, generator=gen, dtype=torch.float64, requires_grad=True)
    weight = torch.randn(5, 6, generator=gen, dtype=torch.float64)

    def losses_of(enc: torch.Tensor, dec: torch.Tensor) -> torch.Tensor:
        am, lm = enc @ weight.T, dec @ weight.T  # (B, T, V), (B, U+1, V)
        simple, ranges = simple_loss_and_ranges(am, lm, targets, logit_lengths, target_lengths, prune_range=2)
        assert ranges[0, -1, 0] > 0  # the band does move
        enc_band, dec_band = prune(enc, dec, ranges)
        logits = torch.tanh(enc_band + dec_band) @ weight.T  # (B, T, S, V)
        pruned = pruned_rnnt_loss(logits, targets, ranges, logit_lengths, target_lengths)
        return torch.stack([simple, pruned])

    assert torch.autograd.gradcheck(losses_of, (enc, dec))


def test_pruning_bad_inputs_raise() -> None:
    _, targets, logit_lengths, target_lengths = _random_batch(0, 2, 4, 3, 5)
    am, lm = _am_lm(0, 2, 4, 3, 5)
    with pytest.raises(DataError, match="prune_range=1 leaves no room"):
        simple_loss_and_ranges(am, lm, targets, logit_lengths, target_lengths, prune_range=1)
    with pytest.raises(DataError, match="item 0: 3 labels in 1 frames do not fit a band of 2 rows"):
        simple_loss_and_ranges(am, lm, targets, torch.tensor([1, 4]), target_lengths, prune_range=2)
    with pytest.raises(ShapeError, match="lm: expected shape"):
        simple_loss_and_ranges(am, lm[..., :4], targets, logit_lengths, target_lengths, prune_range=2)
    _, ranges = simple_loss_and_ranges(am, lm, targets, logit_lengths, target_lengths, prune_range=2)
    with pytest.raises(ShapeError, match="ranges hold rows 0..4"):
        prune(torch.zeros(2, 4, 3), torch.zeros(2, 4, 3), ranges + torch.tensor([0, 1]))
    band = torch.zeros(2, 4, 2, 5)

    def band_of(starts: list[int]) -> torch.Tensor:
        return torch.tensor(starts)[None, :, None].expand(2, 4, 1) + torch.arange(2)

    bad_ranges = {
        "rows are not consecutive": ranges.flip(-1),
        "rows leave [0, U=3]": band_of([0, 1, 2, 3]),
        "does not start at row 0": band_of([1, 1, 2, 2]),
        "rises by less than 0 or more than 1": band_of([0, 2, 2, 2]),
        "misses row U_b": band_of([0, 0, 0, 0]),
    }
    for problem, wrong in bad_ranges.items():
        with pytest.raises(ShapeError, match=re.escape(problem)):
            pruned_rnnt_loss(band, targets, wrong, logit_lengths, target_lengths)


def test_simple_loss_stays_finite_when_am_and_lm_disagree_strongly() -> None:
    # am and lm peak on different tokens by 100 nats: every product in the normaliser's
    # matmul underflows float32, and the floor must keep the loss and gradients finite.
    _, targets, logit_lengths, target_lengths = _random_batch(0, 2, 4, 3, 5)
    am = torch.zeros(2, 4, 5)
    lm = torch.zeros(2, 4, 5)
    am[..., 1], lm[..., 2] = 100.0, 100.0
    am.requires_grad_(True)
    simple, ranges = simple_loss_and_ranges(am, lm, targets, logit_lengths, target_lengths, prune_range=2)
    (grad,) = torch.autograd.grad(simple, am)
    assert torch.isfinite(simple) and torch.isfinite(grad).all()
    assert ranges.shape == (2, 4, 2)


def test_half_precision_logits_are_summed_in_float32() -> None:
    logits, targets, logit_lengths, target_lengths = _random_batch(9, 3, 8, 4, 16, dtype=torch.float32)
    half = logits.bfloat16().requires_grad_(True)
    upcast = half.detach().float().requires_grad_(True)
    half_loss = rnnt_loss(half, targets, logit_lengths, target_lengths)
    upcast_loss = rnnt_loss(upcast, targets, logit_lengths, target_lengths)
    assert half_loss.dtype == torch.float32
    torch.testing.assert_close(half_loss, upcast_loss, rtol=1e-6, atol=1e-6)
    (half_grad,) = torch.autograd.grad(half_loss, half)
    (upcast_grad,) = torch.autograd.grad(upcast_loss, upcast)
    assert half_grad.dtype == torch.bfloat16
    torch.testing.assert_close(half_grad.float(), upcast_grad, rtol=1e-2, atol=1e-3)


def test_simple_loss_ignores_autocast() -> None:
    _, targets, logit_lengths, target_lengths = _random_batch(10, 3, 6, 3, 8)
    am, lm = (x.float() * 4 for x in _am_lm(10, 3, 6, 3, 8))
    plain = simple_loss_and_ranges(am, lm, targets, logit_lengths, target_lengths, prune_range=3)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        mixed = simple_loss_and_ranges(am, lm, targets, logit_lengths, target_lengths, prune_range=3)
    torch.testing.assert_close(mixed.loss, plain.loss, rtol=1e-6, atol=1e-6)
    assert torch.equal(mixed.ranges, plain.ranges)
