"""The RNN-T model: encoder, predictor, joiner and CTC head, built from one TransducerConfig.

Exportable entry points (export/ wraps exactly these):
    encode(x, x_lens) -> (enc (B, T', D), enc_lens)       whole utterances
    stream(window, state) -> (enc (B, n, D), new_state)    one 4n + 3 frame window
    init_state(B) -> encoder state
    predict(tokens (B, context_size), state) -> (projected_dec (B, J), new_state)
    join(projected_enc (.., J), projected_dec (.., J)) -> logits (.., V)
    ctc_log_probs(enc (B, T', D)) -> (B, T', V)
    attention_log_probs(projected_enc (B or 1, T', J), tokens (B, U)) -> (B, U, V)   with the attention head
`forward` (training only) computes the full RNN-T loss or the pruned one (see
`RnntLoss`); the pruned loss's "simple" projections are training-only too.
The encoder side of the joiner projection is `joiner.project_encoder`; export
puts it after `stream` in encoder.onnx.

Shapes: B batch, T feature frames, T' encoder frames, U tokens, D dims, J joiner dim, V vocab.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from asr.checks import check_same_batch, check_shape
from asr.errors import ConfigError
from models.attention_decoder import AttentionDecoder
from models.bilstm_encoder import BiLstmEncoder
from models.config import ATTENTION_KINDS, RNN_KINDS, EncoderConfig, TransducerConfig
from models.conformer import ConformerEncoder
from models.encoder import Encoder
from models.joiner import CtcHead, Joiner
from models.losses import check_targets, ctc_loss, rnnt_loss, sanitized_targets
from models.predictor import build_predictor
from models.pruned_loss import prune, pruned_rnnt_loss, simple_loss_and_ranges
from models.rnn_encoder import RnnEncoder
from models.tcn import TcnEncoder

_ENCODERS: dict[str, type[Encoder]] = {
    **{kind: RnnEncoder for kind in RNN_KINDS},
    **{kind: ConformerEncoder for kind in ATTENTION_KINDS},
    "tcn": TcnEncoder,
    "bilstm": BiLstmEncoder,
}


def build_encoder(config: EncoderConfig) -> Encoder:
    """The encoder config.kind names (kinds are validated by EncoderConfig)."""
    return _ENCODERS[config.kind](config)


@dataclass(frozen=True)
class RnntLoss:
    """Which transducer loss `Transducer.forward` computes, and how its terms are weighted.

    The full loss runs the joiner on all (T', U + 1) lattice nodes: (B, T', U + 1, V)
    logits, the bulk of a small model's step on a CPU. The pruned loss (k2's idea)
    first scores the lattice with a trivial joiner (am[t] + lm[u], never 4-D), then runs
    the real joiner on only `prune_range` rows per frame around the likely alignments.
    Early in training the trivial joiner's bands are poor, so the trainer weights the
    simple loss up and the pruned loss down at first (asr.training.schedule).
    """

    pruned: bool = False  # False: full lattice; True: simple + pruned losses
    prune_range: int = 5  # pruned: S, lattice rows per frame the joiner scores (k2 recipes use 5)
    simple_scale: float = 0.5  # pruned: weight of the trivial-joiner ("simple") loss in the total
    pruned_scale: float = 1.0  # pruned: weight of the pruned loss in the total


FULL_LOSS = RnntLoss()  # the exact RNN-T loss: the default, and what dev loss reports


@dataclass(frozen=True)
class LossOutput:
    """Training losses of one batch, each a scalar averaged over the batch."""

    total: Tensor  # what the optimizer minimises: rnnt (+ simple) + ctc_weight * ctc (+ attention), as weighted
    rnnt: Tensor  # transducer negative log-likelihood: full, or restricted to the pruned band
    ctc: Tensor  # CTC negative log-likelihood (0, not computed, when ctc_weight is 0)
    simple: Tensor  # trivial-joiner RNN-T loss (0, not computed, with the full loss)
    attention: Tensor  # attention decoder negative log-likelihood (0, not computed, without the head)


class Transducer(nn.Module):
    """Streaming RNN-T with an auxiliary CTC head."""

    def __init__(self, config: TransducerConfig) -> None:
        super().__init__()
        self.config = config
        self.encoder = build_encoder(config.encoder)
        self.predictor = build_predictor(config.predictor, config.vocab_size, config.blank_id)
        self.joiner = Joiner(self.encoder.output_dim, self.predictor.output_dim, config.joiner_dim, config.vocab_size)
        self.ctc_head = CtcHead(self.encoder.output_dim, config.vocab_size)
        # Trivial-joiner projections for the pruned loss; not part of any exported graph.
        self.simple_am_proj = nn.Linear(self.encoder.output_dim, config.vocab_size)
        self.simple_lm_proj = nn.Linear(self.predictor.output_dim, config.vocab_size)
        # Attends over the joiner-projected frames: what encoder.onnx outputs, so the runtime has them.
        head = config.attention_decoder
        self.attention_decoder = None if head is None else AttentionDecoder(
            head, config.joiner_dim, config.vocab_size, config.blank_id)

    def encode(self, x: Tensor, x_lens: Tensor) -> tuple[Tensor, Tensor]:
        """Features x (B, T, F), x_lens (B,) -> encoder output (B, T', D), lengths (B,)."""
        return self.encoder(x, x_lens)

    def stream(self, window: Tensor, state: NamedTuple) -> tuple[Tensor, NamedTuple]:
        """One window (B, 4n + 3, F) and the encoder state -> (B, n, D), new state."""
        return self.encoder.stream(window, state)

    def init_state(self, batch_size: int, device: torch.device | str | None = None) -> NamedTuple:
        """The encoder state before a stream's first window."""
        return self.encoder.init_state(batch_size, device)

    def predict(self, tokens: Tensor, state: NamedTuple) -> tuple[Tensor, NamedTuple]:
        """Last tokens (B, context_size) and predictor state -> projected output (B, J), new state."""
        out, new_state = self.predictor.step(tokens, state)
        return self.joiner.project_decoder(out), new_state

    def join(self, projected_enc: Tensor, projected_dec: Tensor) -> Tensor:
        """Projected encoder and predictor outputs (.., J) -> logits (.., V)."""
        return self.joiner.join(projected_enc, projected_dec)

    def ctc_log_probs(self, enc: Tensor) -> Tensor:
        """Encoder output (B, T', D) -> CTC log-probabilities (B, T', V)."""
        return self.ctc_head(enc)

    def attention_log_probs(self, projected_enc: Tensor, tokens: Tensor) -> Tensor:
        """Attention decoder: frames (B or 1, T', J), decoder inputs (B, U) sos first -> log-probs (B, U, V)."""
        if self.attention_decoder is None:
            raise ConfigError("this model has no attention decoder; train one with `asr train --attention-decoder`")
        return self.attention_decoder(projected_enc, tokens)

    def forward(self, x: Tensor, x_lens: Tensor, y: Tensor, y_lens: Tensor, loss: RnntLoss = FULL_LOSS) -> LossOutput:
        """Losses for features x (B, T, F), x_lens (B,), labels y (B, U) padded, y_lens (B,).

        Label ids must be in [0, V) and not blank; positions past y_lens may hold anything.
        `loss` picks the full or the pruned transducer loss and weights its terms.
        """
        check_shape("targets", y, ("B", "U"))
        check_shape("target lengths", y_lens, ("B",))
        check_same_batch(features=x, feature_lengths=x_lens, targets=y, target_lengths=y_lens)
        enc, enc_lens = self.encode(x, x_lens)  # (B, T', D)
        blank = self.config.blank_id
        check_targets(y, enc_lens, y_lens, enc.shape[1], self.config.vocab_size, blank)
        labels = sanitized_targets(y, y_lens, blank)  # (B, U), padding -> blank
        # The predictor sees blank, then each label: row u of the lattice has emitted u labels.
        dec = self.predictor(F.pad(labels, (1, 0), value=blank))  # (B, U + 1, D)
        if loss.pruned:
            simple, rnnt = self._pruned_losses(enc, enc_lens, dec, labels, y_lens, loss.prune_range)
            transducer = loss.simple_scale * simple + loss.pruned_scale * rnnt
        else:
            logits = self.joiner(enc, dec)  # (B, T', U + 1, V)
            rnnt = rnnt_loss(logits, labels, enc_lens, y_lens, blank)
            simple, transducer = rnnt.new_zeros(()), rnnt
        if self.config.ctc_weight == 0:
            ctc = rnnt.new_zeros(())
        else:
            ctc = ctc_loss(self.ctc_log_probs(enc), labels, enc_lens, y_lens, blank)
        total = transducer + self.config.ctc_weight * ctc
        attention = rnnt.new_zeros(())
        if self.attention_decoder is not None:
            attention = self.attention_decoder.loss(self.joiner.project_encoder(enc), enc_lens, labels, y_lens)
            total = total + self.attention_decoder.config.loss_weight * attention
        return LossOutput(total=total, rnnt=rnnt, ctc=ctc, simple=simple, attention=attention)

    def _pruned_losses(
        self, enc: Tensor, enc_lens: Tensor, dec: Tensor, labels: Tensor, label_lens: Tensor, prune_range: int
    ) -> tuple[Tensor, Tensor]:
        """(simple loss, pruned loss) for enc (B, T', D), dec (B, U + 1, D), labels (B, U) (see models.pruned_loss)."""
        blank = self.config.blank_id
        am = self.simple_am_proj(enc)  # (B, T', V)
        lm = self.simple_lm_proj(dec)  # (B, U + 1, V)
        simple, ranges = simple_loss_and_ranges(am, lm, labels, enc_lens, label_lens, prune_range, blank)
        enc_band, dec_band = prune(self.joiner.project_encoder(enc), self.joiner.project_decoder(dec), ranges)
        logits = self.joiner.join(enc_band, dec_band)  # (B, T', S, V)
        return simple, pruned_rnnt_loss(logits, labels, ranges, enc_lens, label_lens, blank)
