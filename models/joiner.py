"""Output layers over encoder frames: the transducer joiner and the CTC head.

The joiner is Linear(tanh(enc_proj(enc) + dec_proj(dec))). The two projections
are applied once per frame and once per token, never inside the (T, U) grid:
export folds enc_proj into encoder.onnx and dec_proj into decoder.onnx (what
sherpa-onnx expects), so the joiner file only adds, squashes and projects.

Shapes: B batch, T frames, U tokens, D input dims, J joiner dim, V vocab.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn


class Joiner(nn.Module):
    """logits = out(tanh(project_encoder(enc) + project_decoder(dec)))."""

    def __init__(self, encoder_dim: int, decoder_dim: int, joiner_dim: int, vocab_size: int) -> None:
        super().__init__()
        self.encoder_proj = nn.Linear(encoder_dim, joiner_dim)
        self.decoder_proj = nn.Linear(decoder_dim, joiner_dim)
        self.out = nn.Linear(joiner_dim, vocab_size)

    def project_encoder(self, enc: Tensor) -> Tensor:
        """(..., D_enc) -> (..., J)."""
        return self.encoder_proj(enc)

    def project_decoder(self, dec: Tensor) -> Tensor:
        """(..., D_dec) -> (..., J)."""
        return self.decoder_proj(dec)

    def join(self, projected_enc: Tensor, projected_dec: Tensor) -> Tensor:
        """Broadcastable (..., J) and (..., J) -> logits (..., V)."""
        return self.out(torch.tanh(projected_enc + projected_dec))

    def forward(self, enc: Tensor, dec: Tensor) -> Tensor:
        """enc (B, T, D_enc), dec (B, U + 1, D_dec) -> logits (B, T, U + 1, V) for the loss."""
        projected_enc = self.project_encoder(enc).unsqueeze(2)  # (B, T, 1, J)
        projected_dec = self.project_decoder(dec).unsqueeze(1)  # (B, 1, U + 1, J)
        return self.join(projected_enc, projected_dec)


class CtcHead(nn.Module):
    """Frame-wise token log-probabilities for the auxiliary CTC loss (blank shared with the transducer)."""

    def __init__(self, encoder_dim: int, vocab_size: int) -> None:
        super().__init__()
        self.out = nn.Linear(encoder_dim, vocab_size)

    def forward(self, enc: Tensor) -> Tensor:
        """(B, T, D_enc) -> log-probabilities (B, T, V)."""
        return self.out(enc).log_softmax(dim=-1)
