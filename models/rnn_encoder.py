"""Unidirectional recurrent encoders: LSTM (optionally LSTMP), GRU, Elman RNN, peephole LSTM and
echo state network in one module.

    x4 conv front -> dropout -> multi-layer RNN -> dropout -> Linear(output_dim)
                                                              (an ESN: CausalTaps if readout_taps, then
                                                               [Linear -> ReLU (-> CausalTaps if
                                                               readout_hidden_taps)] x readout_layers first)

With `residual` (every preset), the layers are separate single-layer RNNs and each
adds its output to its input, x + dropout(layer(x)): the gradient reaches the front
through the identity path instead of through every layer's gates. A plain stack of
three 384-cell LSTMs needed 500+ steps to leave the CTC blank plateau; the residual
stack leaves it within 100 (README "Accuracy").

The state layout is sherpa-onnx's for LSTM transducers: h (L, B, P or H) and
c (L, B, H), batch on axis 1. Recurrence is causal, so in a padded batch the
valid frames of a short item never see its padding: forward needs no packing.
torch cannot export nn.LSTM with proj_size to ONNX; export/unroll.py swaps it
for an unrolled equivalent on the same weights. The peephole LSTM and the ESN
reservoir are our own layers (models.cells), in residual stacks only; for the ESN
the output layer is the trained readout of its fixed reservoir.

Shapes: B batch, T frames, L layers, H cell size, P projection size, D output dim.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor, nn

from models.cells import CausalTaps, PeepholeLstm, Reservoir
from models.config import LSTM_KINDS, EncoderConfig
from models.encoder import Encoder


class LstmState(NamedTuple):
    """Streaming state of the LSTM and peephole LSTM encoders."""

    h: Tensor  # (L, B, P or H) last output of each layer (P with a projection)
    c: Tensor  # (L, B, H) last cell of each layer
    BATCH_AXES = (1, 1)


class RnnState(NamedTuple):
    """Streaming state of the GRU, Elman RNN and echo state network encoders."""

    h: Tensor  # (L, B, H) last hidden state of each layer
    BATCH_AXES = (1,)


class EsnState(NamedTuple):
    """Streaming state of an echo state network whose readout has causal taps (readout_taps > 0)."""

    h: Tensor  # (L, B, N) last reservoir state of each layer
    # (B, K - 1, S N) the K - 1 frames before the window of each of the readout's S tapped inputs, side by
    # side: the body's output, then (readout_hidden_taps) every hidden layer's
    taps: Tensor
    BATCH_AXES = (1, 0)


RecurrentState = LstmState | RnnState | EsnState


_CELLS: dict[str, type[nn.RNNBase]] = {"lstm": nn.LSTM, "gru": nn.GRU, "rnn": nn.RNN}


def _torch_layer(config: EncoderConfig, input_size: int, num_layers: int = 1) -> nn.RNNBase:
    """torch's batch-first layer of kind config.kind ("lstm", "gru" or "rnn") with `num_layers` layers."""
    options = {"lstm": {"proj_size": config.proj_dim}, "rnn": {"nonlinearity": "tanh"}}.get(config.kind, {})
    return _CELLS[config.kind](
        input_size=input_size, hidden_size=config.hidden_dim, num_layers=num_layers, batch_first=True,
        dropout=config.dropout if num_layers > 1 else 0.0, **options,
    )


def _residual_layer(config: EncoderConfig, input_size: int, index: int) -> nn.Module:
    """Layer `index` of a residual stack: one recurrent module of kind config.kind, called as layer(x, hx)."""
    if config.kind == "peephole":
        return PeepholeLstm(input_size, config.hidden_dim)
    if config.kind == "esn":
        return Reservoir(
            input_size, config.hidden_dim, config.spectral_radius, config.leak_rate, config.input_scaling,
            config.sparsity, seed=config.reservoir_seed + index,
        )
    return _torch_layer(config, input_size)


def _readout(config: EncoderConfig, body_dim: int) -> nn.Module:
    """The output layer: a Linear, after config.readout_layers ReLU layers of body_dim units (an ESN's
    readout: the only trained part after its fixed reservoir, so a nonlinear one learns more per step)."""
    if not config.readout_layers:
        return nn.Linear(body_dim, config.output_dim)
    hidden = [module for _ in range(config.readout_layers) for module in (nn.Linear(body_dim, body_dim), nn.ReLU())]
    return nn.Sequential(*hidden, nn.Linear(body_dim, config.output_dim))


class RnnEncoder(Encoder):
    """Streaming recurrent encoder; config.kind picks the cell (one of RNN_KINDS)."""

    def __init__(self, config: EncoderConfig) -> None:
        body_dim = config.proj_dim or config.hidden_dim
        super().__init__(config, body_dim)
        if config.residual:
            # One module per layer: the residual sum needs each layer's output.
            self.layers = nn.ModuleList(_residual_layer(config, body_dim, i) for i in range(config.num_layers))
        else:  # torch's kinds only (EncoderConfig checks)
            self.rnn = _torch_layer(config, body_dim, config.num_layers)
        self.dropout = nn.Dropout(config.dropout)
        self.output = _readout(config, body_dim)
        self.taps = CausalTaps(body_dim, config.readout_taps) if config.readout_taps else None
        self.hidden_taps = nn.ModuleList(
            CausalTaps(body_dim, config.readout_taps) for _ in range(config.readout_layers)
        ) if config.readout_hidden_taps else None
        if config.kind in LSTM_KINDS:
            self._init_forget_bias()

    def _recurrent_modules(self) -> list[nn.Module]:
        return list(self.layers) if self.config.residual else [self.rnn]

    def _init_forget_bias(self) -> None:
        # Forget-gate bias 1 (Gers et al.) lets gradients flow through time early in training.
        # torch packs the gates as (input, forget, cell, output) and adds bias_ih and bias_hh,
        # so the second quarter of one of them carries it (PeepholeLstm keeps the same order, one bias).
        hidden = self.config.hidden_dim
        with torch.no_grad():
            for module in self._recurrent_modules():
                for name, bias in module.named_parameters():
                    if name.startswith("bias_ih") or name == "bias":
                        bias[hidden : 2 * hidden].fill_(1.0)
                    elif name.startswith("bias_hh"):
                        bias[hidden : 2 * hidden].fill_(0.0)

    def init_state(self, batch_size: int, device: torch.device | str | None = None) -> RecurrentState:
        device, dtype = self._state_device_dtype(device)
        layers, hidden = self.config.num_layers, self.config.hidden_dim
        if self.config.kind in LSTM_KINDS:
            out_dim = self.config.proj_dim or hidden
            return LstmState(
                h=torch.zeros(layers, batch_size, out_dim, dtype=dtype, device=device),
                c=torch.zeros(layers, batch_size, hidden, dtype=dtype, device=device),
            )
        h = torch.zeros(layers, batch_size, hidden, dtype=dtype, device=device)
        if self.taps is None:
            return RnnState(h)
        tapped = hidden * (1 + len(self.hidden_taps or ()))  # every tapped input is hidden wide
        return EsnState(h, torch.zeros(batch_size, self.taps.context_frames, tapped, dtype=dtype, device=device))

    def _body(self, h: Tensor, state: RecurrentState) -> tuple[Tensor, RecurrentState]:
        """The layers after the front, shared by forward and stream: (B, T', body) -> (B, T', D)."""
        if not self.config.residual:
            hx = tuple(state) if isinstance(state, LstmState) else state.h
            y, new_hx = self.rnn(self.dropout(h), hx)
            new_state = LstmState(*new_hx) if isinstance(state, LstmState) else RnnState(new_hx)
            return self.output(self.dropout(y)), new_state
        h = self.dropout(h)
        last: list[tuple[Tensor, ...]] = []
        layer_states = state[:2] if isinstance(state, LstmState) else state[:1]  # the per-layer parts, (L, B, .)
        for index, layer in enumerate(self.layers):
            layer_state = tuple(part[index : index + 1] for part in layer_states)  # (1, B, .) each
            y, new_hx = layer(h, layer_state if isinstance(state, LstmState) else layer_state[0])
            h = h + self.dropout(y)  # (B, T', body)
            last.append(new_hx if isinstance(new_hx, tuple) else (new_hx,))
        stacked = [torch.cat(parts, dim=0) for parts in zip(*last)]  # (L, B, .) each
        if isinstance(state, LstmState):
            return self.output(h), LstmState(*stacked)
        if self.taps is None:
            return self.output(h), RnnState(*stacked)
        out, taps_cache = self._tapped_readout(h, state.taps)
        return out, EsnState(*stacked, taps_cache)

    def _tapped_readout(self, h: Tensor, cache: Tensor) -> tuple[Tensor, Tensor]:
        """An ESN's readout through its taps: h (B, T', N), cache (B, K - 1, S N) -> (B, T', D), new cache."""
        caches = cache.split(h.shape[-1], dim=-1)  # S x (B, K - 1, N): the body's, then each hidden layer's
        h, body_cache = self.taps(h, caches[0])
        if self.hidden_taps is None:
            return self.output(h), body_cache
        new_caches = [body_cache]
        hidden_stages = iter(zip(self.hidden_taps, caches[1:]))
        for module in self.output:  # [Linear, ReLU] x readout_layers, Linear
            h = module(h)
            if isinstance(module, nn.ReLU):  # a hidden layer's output: through its taps
                taps, taps_cache = next(hidden_stages)
                h, taps_cache = taps(h, taps_cache)
                new_caches.append(taps_cache)
        return h, torch.cat(new_caches, dim=-1)

    def forward(self, x: Tensor, x_lens: Tensor) -> tuple[Tensor, Tensor]:
        """x (B, T, F), x_lens (B,) -> out (B, T', D), out_lens (B,)."""
        out_lens = self._check_utterances(x, x_lens)
        out, _ = self._body(self.subsampling(x), self.init_state(x.shape[0], x.device))
        return self._zero_padding(out, out_lens), out_lens

    def stream(self, x: Tensor, state: RecurrentState) -> tuple[Tensor, RecurrentState]:
        """x (B, 4n + 3, F), state -> out (B, n, D), new state."""
        self._check_window(x, state)
        return self._body(self.subsampling(x), state)
