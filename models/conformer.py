"""Chunk-wise streaming Conformer and Transformer encoders (kinds "conformer" and "transformer").

    x4 conv front -> layers -> LayerNorm -> Linear(output_dim), each layer:
      x + 1/2 FFN -> x + chunked self-attention -> x + causal conv -> x + 1/2 FFN
The transformer is the same layer without the conv module (config.has_conv False).
Every block normalises its own input (pre-norm); the presets but tiny put the only other
LayerNorm after the last layer (config.final_norm_only), so the residual path runs unnormalised
from the front to the output. Checkpoints from before have a LayerNorm closing every layer.

Attention is chunk-wise causal: a frame in chunk k attends to every frame of
chunks k - left_context_chunks .. k and nothing later. forward builds that
mask over the whole utterance; stream keeps the keys and values of the last
left_context_chunks * chunk_frames frames of every layer as its state, so a
window of n = m * chunk_frames frames sees exactly what forward's mask allows.
Positions are rotary (RoPE) and relative: stream numbers the cached and new
frames from 0 on every call, so angles stay small on hour-long streams and the
query-key products equal forward's. The convolution is causal (left-padded)
with LayerNorm instead of BatchNorm, so it too is the same on chunks and wholes.

Shapes: B batch, T frames, L layers, C cached frames, K conv kernel, D model dim, H heads.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from asr.errors import ShapeError
from models.config import EncoderConfig
from models.encoder import Encoder
from models.subsampling import padding_mask

ROPE_BASE = 10000.0  # RoPE wavelength base (Su et al.)


class ConformerState(NamedTuple):
    """Streaming state of the conformer encoder (with its conv module)."""

    cached_key: Tensor  # (L, B, C, D) keys of the last C frames of each layer, before RoPE
    cached_value: Tensor  # (L, B, C, D) values of the last C frames of each layer
    cached_conv: Tensor  # (L, B, D, K - 1) conv-module inputs of the last K - 1 frames
    processed_frames: Tensor  # (B,) int64 encoder frames seen so far; masks the unfilled cache
    BATCH_AXES = (1, 1, 1, 0)


class TransformerState(NamedTuple):
    """Streaming state of the transformer encoder (and of a conformer with use_conv=False)."""

    cached_key: Tensor  # (L, B, C, D) keys of the last C frames of each layer, before RoPE
    cached_value: Tensor  # (L, B, C, D) values of the last C frames of each layer
    processed_frames: Tensor  # (B,) int64 encoder frames seen so far; masks the unfilled cache
    BATCH_AXES = (1, 1, 0)


class LayerCache(NamedTuple):
    """One layer's context from earlier frames (empty / zeros in forward)."""

    key: Tensor  # (B, C, D) earlier keys, before RoPE
    value: Tensor  # (B, C, D) earlier values
    conv: Tensor | None  # (B, D, K - 1) earlier conv inputs; None without the conv module


def chunk_attention_mask(query_pos: Tensor, key_pos: Tensor, key_valid: Tensor, chunk: int, left_chunks: int) -> Tensor:
    """Which keys each query may attend to: (B, 1, Tq, Tk) bool from absolute frame positions.

    query_pos (B or 1, Tq), key_pos (B or 1, Tk) int64; key_valid (B, Tk) bool.
    """
    query_chunk = torch.div(query_pos, chunk, rounding_mode="floor").unsqueeze(-1)  # (B, Tq, 1)
    key_chunk = torch.div(key_pos, chunk, rounding_mode="floor").unsqueeze(-2)  # (B, 1, Tk)
    allowed = (key_chunk <= query_chunk) & (key_chunk >= query_chunk - left_chunks) & key_valid.unsqueeze(-2)
    return allowed.unsqueeze(1)  # (B, 1, Tq, Tk): one mask for every head


def apply_rope(x: Tensor, positions: Tensor, inv_freq: Tensor) -> Tensor:
    """Rotate feature pairs (i, i + d/2) of x (B, H, T, d) by positions (T,) * inv_freq (d/2,)."""
    angles = positions.to(inv_freq.dtype).unsqueeze(-1) * inv_freq  # (T, d/2)
    cos, sin = angles.cos(), angles.sin()
    first, second = x.chunk(2, dim=-1)
    return torch.cat([first * cos - second * sin, first * sin + second * cos], dim=-1)


class FeedForward(nn.Sequential):
    """Pre-norm position-wise feed-forward block: (B, T, D) -> (B, T, D)."""

    def __init__(self, dim: int, inner_dim: int, dropout: float) -> None:
        super().__init__(
            nn.LayerNorm(dim),
            nn.Linear(dim, inner_dim),
            nn.SiLU(),
            nn.Dropout(dropout),
            nn.Linear(inner_dim, dim),
            nn.Dropout(dropout),
        )

    @property
    def output_layer(self) -> nn.Linear:
        """The Linear that writes the block's result back to the residual path."""
        return self[4]


class ChunkedSelfAttention(nn.Module):
    """Pre-norm multi-head self-attention over [cached frames; new frames] with RoPE."""

    def __init__(self, dim: int, num_heads: int, dropout: float) -> None:
        super().__init__()
        self.num_heads = num_heads
        self.norm = nn.LayerNorm(dim)
        self.qkv = nn.Linear(dim, 3 * dim)
        self.out = nn.Linear(dim, dim)
        self.dropout = nn.Dropout(dropout)
        head_dim = dim // num_heads
        inv_freq = ROPE_BASE ** (-torch.arange(0, head_dim, 2, dtype=torch.float32) / head_dim)
        self.register_buffer("inv_freq", inv_freq, persistent=False)

    def _heads(self, x: Tensor) -> Tensor:
        b, t, d = x.shape
        return x.view(b, t, self.num_heads, d // self.num_heads).transpose(1, 2)  # (B, H, T, d)

    def forward(self, x: Tensor, mask: Tensor, cached_key: Tensor, cached_value: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """x (B, T, D), mask (B, 1, T, C + T) -> (out (B, T, D), keys (B, C + T, D), values (B, C + T, D))."""
        b, t, d = x.shape
        query, key, value = self.qkv(self.norm(x)).chunk(3, dim=-1)  # 3 x (B, T, D)
        keys = torch.cat([cached_key, key], dim=1)  # (B, C + T, D)
        values = torch.cat([cached_value, value], dim=1)  # (B, C + T, D)
        # Number the frames of this call from 0: only differences matter to RoPE.
        cached = cached_key.shape[1]
        key_pos = torch.arange(cached + t, device=x.device)
        q = apply_rope(self._heads(query), key_pos[cached:], self.inv_freq)  # (B, H, T, d)
        k = apply_rope(self._heads(keys), key_pos, self.inv_freq)  # (B, H, C + T, d)
        scores = q @ k.transpose(-2, -1) * (d // self.num_heads) ** -0.5  # (B, H, T, C + T)
        # A finite fill keeps fully masked rows (padding queries) finite instead of NaN.
        scores = scores.masked_fill(~mask, torch.finfo(scores.dtype).min)
        weights = self.dropout(scores.softmax(dim=-1))
        context = (weights @ self._heads(values)).transpose(1, 2).reshape(b, t, d)  # (B, T, D)
        return self.dropout(self.out(context)), keys, values


class CausalConvModule(nn.Module):
    """Pre-norm conformer conv module with a causal depthwise conv and LayerNorm."""

    def __init__(self, dim: int, kernel: int, dropout: float) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(dim)
        self.pointwise_in = nn.Linear(dim, 2 * dim)
        self.depthwise = nn.Conv1d(dim, dim, kernel, groups=dim)
        self.conv_norm = nn.LayerNorm(dim)
        self.pointwise_out = nn.Linear(dim, dim)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: Tensor, cache: Tensor) -> tuple[Tensor, Tensor]:
        """x (B, T, D), cache (B, D, K - 1) -> (out (B, T, D), new cache (B, D, K - 1))."""
        h = F.glu(self.pointwise_in(self.norm(x)), dim=-1).transpose(1, 2)  # (B, D, T)
        h = torch.cat([cache, h], dim=2)  # (B, D, K - 1 + T): the left padding is the past
        new_cache = h[:, :, h.shape[2] - cache.shape[2] :]
        h = self.depthwise(h).transpose(1, 2)  # (B, T, D)
        h = F.silu(self.conv_norm(h))
        return self.dropout(self.pointwise_out(h)), new_cache


class ConformerLayer(nn.Module):
    """Macaron conformer layer; without a conv module it is a pre-norm Transformer layer."""

    def __init__(self, config: EncoderConfig) -> None:
        super().__init__()
        dim = config.hidden_dim
        self.ff_in = FeedForward(dim, config.ff_dim, config.dropout)
        self.attention = ChunkedSelfAttention(dim, config.num_heads, config.dropout)
        self.conv = CausalConvModule(dim, config.conv_kernel, config.dropout) if config.has_conv else None
        self.ff_out = FeedForward(dim, config.ff_dim, config.dropout)
        # With final_norm_only the encoder normalises once after the last layer instead.
        self.norm = nn.Identity() if config.final_norm_only else nn.LayerNorm(dim)

    def branch_outputs(self) -> list[nn.Linear]:
        """The last Linear of each residual branch: what each block adds to x comes out of these."""
        outputs = [self.ff_in.output_layer, self.attention.out, self.ff_out.output_layer]
        return outputs + ([self.conv.pointwise_out] if self.conv is not None else [])

    def forward(self, x: Tensor, mask: Tensor, cache: LayerCache) -> tuple[Tensor, LayerCache]:
        """x (B, T, D) -> (B, T, D), and the context grown by these T frames."""
        x = x + 0.5 * self.ff_in(x)
        attended, keys, values = self.attention(x, mask, cache.key, cache.value)
        x = x + attended
        conv_cache = None
        if self.conv is not None:
            convolved, conv_cache = self.conv(x, cache.conv)
            x = x + convolved
        x = x + 0.5 * self.ff_out(x)
        return self.norm(x), LayerCache(keys, values, conv_cache)


class ConformerEncoder(Encoder):
    """Streaming chunked conformer or transformer; stream() takes windows of n = m * chunk_frames frames."""

    def __init__(self, config: EncoderConfig) -> None:
        super().__init__(config, config.hidden_dim)
        self.dropout = nn.Dropout(config.dropout)
        self.layers = nn.ModuleList(ConformerLayer(config) for _ in range(config.num_layers))
        self.final_norm = nn.LayerNorm(config.hidden_dim) if config.final_norm_only else nn.Identity()
        self.output = nn.Linear(config.hidden_dim, config.output_dim)

    @torch.no_grad()
    def prepare_for_training(self) -> None:
        """Zero every residual branch's output Linear, so that each layer starts as the identity.

        The first steps then train front -> final LayerNorm -> output, a frame classifier that
        learns fast, and each branch grows from zero as its gradient asks: the small conformer's dev
        loss at step 300 fell from 74 to 66 (README "Accuracy"). The weights still get gradients
        (their inputs are not zero), only the layers below them wait one step.
        """
        for layer in self.layers:
            for linear in layer.branch_outputs():
                linear.weight.zero_()
                linear.bias.zero_()

    def init_state(self, batch_size: int, device: torch.device | str | None = None) -> ConformerState | TransformerState:
        device, dtype = self._state_device_dtype(device)
        cfg = self.config
        cache_shape = (cfg.num_layers, batch_size, cfg.left_context_frames, cfg.hidden_dim)
        key = torch.zeros(cache_shape, dtype=dtype, device=device)
        value = torch.zeros(cache_shape, dtype=dtype, device=device)
        processed = torch.zeros(batch_size, dtype=torch.int64, device=device)
        if not cfg.has_conv:
            return TransformerState(key, value, processed)
        conv_shape = (cfg.num_layers, batch_size, cfg.hidden_dim, cfg.conv_kernel - 1)
        return ConformerState(key, value, torch.zeros(conv_shape, dtype=dtype, device=device), processed)

    def _body(self, h: Tensor, mask: Tensor, caches: list[LayerCache]) -> tuple[Tensor, list[LayerCache]]:
        """The layers after the front, shared by forward and stream: (B, T', D) -> (B, T', D_out)."""
        h = self.dropout(h)
        grown = []
        for layer, cache in zip(self.layers, caches):
            h, new_cache = layer(h, mask, cache)
            grown.append(new_cache)
        return self.output(self.dropout(self.final_norm(h))), grown

    def forward(self, x: Tensor, x_lens: Tensor) -> tuple[Tensor, Tensor]:
        """x (B, T, F), x_lens (B,) -> out (B, T', D), out_lens (B,)."""
        out_lens = self._check_utterances(x, x_lens)
        h = self.subsampling(x)  # (B, T', D)
        b, t, d = h.shape
        positions = torch.arange(t, device=x.device).unsqueeze(0)  # (1, T')
        mask = chunk_attention_mask(
            positions, positions, padding_mask(out_lens, t), self.config.chunk_frames, self.config.left_context_chunks
        )
        empty = h.new_zeros(b, 0, d)
        conv = h.new_zeros(b, d, self.config.conv_kernel - 1) if self.config.has_conv else None
        out, _ = self._body(h, mask, [LayerCache(empty, empty, conv)] * len(self.layers))
        return self._zero_padding(out, out_lens), out_lens

    def stream(self, x: Tensor, state: ConformerState | TransformerState) -> tuple[Tensor, ConformerState | TransformerState]:
        """x (B, 4n + 3, F) with n a multiple of chunk_frames, state -> out (B, n, D), new state."""
        n = self._check_window(x, state)
        chunk = self.config.chunk_frames
        if n % chunk:
            raise ShapeError(
                f"conformer stream window gives {n} frames, not a multiple of chunk_frames={chunk}; "
                f"feed {self.window_frames(chunk)} feature frames per window"
            )
        cached = self.config.left_context_frames
        processed = state.processed_frames.unsqueeze(1)  # (B, 1)
        key_pos = processed + torch.arange(-cached, n, device=x.device)  # (B, C + n) absolute frames
        mask = chunk_attention_mask(key_pos[:, cached:], key_pos, key_pos >= 0, chunk, self.config.left_context_chunks)
        conv_caches = state.cached_conv if isinstance(state, ConformerState) else [None] * len(self.layers)
        caches = [LayerCache(*parts) for parts in zip(state.cached_key, state.cached_value, conv_caches)]
        out, grown = self._body(self.subsampling(x), mask, caches)
        keys = torch.stack([c.key[:, -cached:] for c in grown])  # (L, B, C, D)
        values = torch.stack([c.value[:, -cached:] for c in grown])  # (L, B, C, D)
        processed_frames = state.processed_frames + n
        if isinstance(state, ConformerState):
            convs = torch.stack([c.conv for c in grown])  # (L, B, D, K - 1)
            return out, ConformerState(keys, values, convs, processed_frames)
        return out, TransformerState(keys, values, processed_frames)
