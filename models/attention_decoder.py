"""The attention decoder: a seq2seq head over the encoder frames, trained beside the transducer, used to rescore.

    s_u = LSTM(embed(y_{u-1}), s_{u-1})                  the decoder state after the previous token
    a_u = softmax_t(score(s_u, m_t))                     attention over the encoder frames m_t
    c_u = sum_t a_{u,t} m_t                              the context vector
    log p(y_u | y_<u, x) = log_softmax(W_o tanh(W_c [s_u; c_u]))

score is additive, v . tanh(W_q s + W_k m) (Bahdanau, Cho & Bengio 2014), or
multiplicative, s . W m (Luong, Pham & Manning 2015, their "general" score). The
layout is Luong's global attention without input feeding: the recurrence does
not read the context, so a whole teacher-forced hypothesis is scored in one
pass (one LSTM over U, attention for all U at once), and rescoring an n-best list
at an endpoint is one ONNX call rather than one per token. Bahdanau's decoder
also feeds the context back into its recurrence; only his score is used here.

The memory m is the joiner-projected encoder output (B, T', J): what encoder.onnx
already returns, so the runtime rescores from the frames it has decoded and
encoder.onnx stays the file sherpa-onnx reads.

sos and eos are the blank id: blank never occurs inside a label sequence, so it
marks both ends without a vocabulary entry of its own.

Shapes: B batch (or H hypotheses), T' encoder frames, U tokens, J memory dim
(the joiner dim), E embedding dim, S decoder state dim, A attention dim, V vocab.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from models.config import AttentionDecoderConfig


class AdditiveScore(nn.Module):
    """Bahdanau's score: v . tanh(W_q s_u + W_k m_t)."""

    def __init__(self, query_dim: int, memory_dim: int, attention_dim: int) -> None:
        super().__init__()
        self.query = nn.Linear(query_dim, attention_dim, bias=False)
        self.key = nn.Linear(memory_dim, attention_dim)
        self.v = nn.Linear(attention_dim, 1, bias=False)

    def forward(self, queries: Tensor, memory: Tensor) -> Tensor:
        """queries (B, U, S), memory (B or 1, T', J) -> scores (B, U, T')."""
        q = self.query(queries).unsqueeze(2)  # (B, U, 1, A)
        k = self.key(memory).unsqueeze(1)  # (B or 1, 1, T', A)
        return self.v(torch.tanh(q + k)).squeeze(-1)


class MultiplicativeScore(nn.Module):
    """Luong's "general" score: s_u . W m_t, computed as (W^T s_u) . m_t (the query side is the smaller)."""

    def __init__(self, query_dim: int, memory_dim: int) -> None:
        super().__init__()
        self.weight = nn.Linear(query_dim, memory_dim, bias=False)

    def forward(self, queries: Tensor, memory: Tensor) -> Tensor:
        """queries (B, U, S), memory (B or 1, T', J) -> scores (B, U, T')."""
        return self.weight(queries) @ memory.transpose(1, 2)  # (B, U, J) @ (B or 1, J, T')


class AttentionDecoder(nn.Module):
    """An LSTM decoder attending over encoder frames; teacher-forced log-probabilities of whole sequences."""

    def __init__(self, config: AttentionDecoderConfig, memory_dim: int, vocab_size: int, sos_eos: int) -> None:
        super().__init__()
        self.config = config
        self.sos_eos = sos_eos
        self.embed = nn.Embedding(vocab_size, config.embed_dim)
        self.rnn = nn.LSTM(config.embed_dim, config.hidden_dim, batch_first=True)
        self.score: nn.Module = (
            AdditiveScore(config.hidden_dim, memory_dim, config.attention_dim)
            if config.score == "additive"
            else MultiplicativeScore(config.hidden_dim, memory_dim)
        )
        self.combine = nn.Linear(config.hidden_dim + memory_dim, config.hidden_dim)
        self.out = nn.Linear(config.hidden_dim, vocab_size)
        self.dropout = nn.Dropout(config.dropout)

    def forward(self, memory: Tensor, tokens: Tensor, memory_mask: Tensor | None = None) -> Tensor:
        """Log-probabilities (B, U, V) of the token after each of `tokens`.

        memory: (B or 1, T', J) encoder frames (1: shared by every row, as when rescoring
        one segment's hypotheses); tokens: (B, U) int64 decoder inputs, sos first;
        memory_mask: (B or 1, T') True at real frames, None when all are. Rows past a
        sequence's end may hold anything: the LSTM is causal, so they change nothing before.
        """
        states, _ = self.rnn(self.dropout(self.embed(tokens)))  # (B, U, S)
        scores = self.score(states, memory)  # (B, U, T')
        if memory_mask is not None:
            scores = scores.masked_fill(~memory_mask.unsqueeze(1), float("-inf"))
        context = scores.softmax(dim=-1) @ memory  # (B, U, J)
        attended = torch.tanh(self.combine(torch.cat([states, context], dim=-1)))  # (B, U, S)
        return self.out(self.dropout(attended)).log_softmax(dim=-1)

    def loss(self, memory: Tensor, memory_lens: Tensor, labels: Tensor, label_lens: Tensor) -> Tensor:
        """Teacher-forced negative log-likelihood of `labels` followed by eos, mean over the batch.

        memory (B, T', J), memory_lens (B,), labels (B, U) without sos/eos (padding: any
        id), label_lens (B,). Summed over each sequence's tokens, as the RNN-T and CTC
        losses are, so their weights compare.
        """
        inputs = F.pad(labels, (1, 0), value=self.sos_eos)  # (B, U + 1): sos y_1 .. y_U
        positions = torch.arange(inputs.shape[1], device=labels.device)  # (U + 1,)
        targets = F.pad(labels, (0, 1), value=self.sos_eos)  # (B, U + 1)
        targets = targets.masked_fill(positions == label_lens.unsqueeze(1), self.sos_eos)  # eos after the last label
        valid = positions <= label_lens.unsqueeze(1)  # (B, U + 1): the labels and their eos
        frames = torch.arange(memory.shape[1], device=memory.device)
        log_probs = self(memory, inputs, frames < memory_lens.unsqueeze(1))  # (B, U + 1, V)
        picked = log_probs.gather(-1, targets.masked_fill(~valid, 0).unsqueeze(-1)).squeeze(-1)  # (B, U + 1)
        return -(picked * valid).sum(dim=1).mean()
