"""Model construction, shapes, configs, presets, input checks and a one-batch overfit.

Shapes: B batch, T feature frames, T' encoder frames, U tokens, D dims, J joiner dim, V vocab.
"""

from __future__ import annotations

import dataclasses
import json

import pytest
import torch

from asr.errors import AsrError, ConfigError, DataError, ModelFilesError, ShapeError
from models.config import (
    ATTENTION_KINDS, ENCODER_KINDS, OFFLINE_KINDS, PREDICTOR_KINDS, EncoderConfig, PredictorConfig, TransducerConfig,
)
from models.presets import PRESETS, build_config, format_parameter_table, parameter_table, print_parameter_table, tiny
from models.rnn_encoder import EsnState, RnnState
from models.subsampling import Conv2dSubsampling
from models.transducer import FULL_LOSS, LossOutput, RnntLoss, Transducer

VOCAB = 10  # small vocabulary: fast joiner, quick overfit
PRUNED = RnntLoss(pruned=True, prune_range=3)  # narrower than U + 1 = 5 rows, so the band really prunes
LOSSES = {"full": FULL_LOSS, "pruned": PRUNED}
SIMPLE_PROJECTIONS = ("simple_am_proj.", "simple_lm_proj.")  # trained by the pruned loss only
FEATURES = 80  # fbank bins the presets expect

# torch notes once that LSTMP runs without oneDNN; that is expected on CPU.
pytestmark = pytest.mark.filterwarnings("ignore:LSTM with projections is not supported with oneDNN")


def make_model(encoder: str, predictor: str = "stateless", seed: int = 0) -> Transducer:
    torch.manual_seed(seed)
    return Transducer(tiny(encoder, VOCAB, predictor)).eval()


def make_batch(seed: int = 0) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Two utterances of 60 and 43 frames with 4 and 2 labels (padding marked -1)."""
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(2, 60, FEATURES, generator=gen)
    y = torch.randint(1, VOCAB, (2, 4), generator=gen)
    y[1, 2:] = -1
    return x, torch.tensor([60, 43]), y, torch.tensor([4, 2])


# --- shapes ---


@pytest.mark.parametrize("predictor", PREDICTOR_KINDS)
@pytest.mark.parametrize("encoder", ENCODER_KINDS)
def test_entry_point_shapes(encoder: str, predictor: str) -> None:
    model = make_model(encoder, predictor)
    x, x_lens, y, y_lens = make_batch()
    dim, joiner_dim = model.encoder.output_dim, model.config.joiner_dim

    enc, enc_lens = model.encode(x, x_lens)
    assert enc.shape == (2, (60 - 3) // 4, dim)
    assert enc_lens.tolist() == [(60 - 3) // 4, (43 - 3) // 4]

    n = model.encoder.chunk_frames
    state = model.init_state(2)
    if encoder in OFFLINE_KINDS:
        with pytest.raises(ConfigError, match=f"the {encoder} encoder cannot stream.*asr transcribe --offline"):
            model.stream(x[:, : model.encoder.window_frames(n)], state)
    else:
        out, new_state = model.stream(x[:, : model.encoder.window_frames(n)], state)
        assert out.shape == (2, n, dim)
        assert type(new_state) is type(state)
        assert {k: tuple(t.shape) for k, t in zip(new_state._fields, new_state)} == dict(model.encoder.state_shapes(2))

    tokens = torch.zeros(2, model.predictor.context_size, dtype=torch.int64)
    dec, _ = model.predict(tokens, model.predictor.init_state(2))
    assert dec.shape == (2, joiner_dim)
    logits = model.join(model.joiner.project_encoder(enc).unsqueeze(2), dec[:, None, None])
    assert logits.shape == (2, enc.shape[1], 1, VOCAB)
    assert model.ctc_log_probs(enc).shape == (2, enc.shape[1], VOCAB)


@pytest.mark.parametrize("loss", LOSSES)
@pytest.mark.parametrize("encoder", ENCODER_KINDS)
def test_forward_losses_and_every_parameter_gets_a_gradient(encoder: str, loss: str) -> None:
    model = make_model(encoder).train()
    options = LOSSES[loss]
    losses = model(*make_batch(), options)
    assert isinstance(losses, LossOutput)
    for value in (losses.total, losses.rnnt, losses.ctc, losses.simple):
        assert value.shape == () and torch.isfinite(value)
    weight = model.config.ctc_weight
    if options.pruned:
        transducer = options.simple_scale * losses.simple + options.pruned_scale * losses.rnnt
        assert losses.simple > 0
    else:
        transducer = losses.rnnt
        assert losses.simple == 0
    assert torch.allclose(losses.total, transducer + weight * losses.ctc)
    losses.total.backward()
    missing = [name for name, p in model.named_parameters() if p.grad is None or not p.grad.abs().sum() > 0]
    expected = [] if options.pruned else [n for n, _ in model.named_parameters() if n.startswith(SIMPLE_PROJECTIONS)]
    assert missing == expected, f"parameters without gradient: {missing}"


def test_pruned_loss_with_a_band_covering_every_row_equals_the_full_loss() -> None:
    """prune_range >= U + 1 keeps the whole lattice: the pruned term is then the full loss exactly."""
    model = make_model("lstm").eval()
    batch = make_batch()
    with torch.no_grad():
        full = model(*batch).rnnt
        unpruned = model(*batch, RnntLoss(pruned=True, prune_range=batch[2].shape[1] + 1)).rnnt
    assert torch.allclose(full, unpruned, rtol=1e-5)


def test_streaming_geometry_and_output_lengths() -> None:
    encoder = make_model("lstm").encoder
    assert (encoder.subsampling_factor, encoder.pad_frames, encoder.lookahead_ms) == (4, 3, 30.0)
    assert encoder.window_frames(8) == 35
    front = Conv2dSubsampling(FEATURES, channels=2, out_dim=3)
    for frames in range(7, 24):
        expected = (frames - 3) // 4
        assert front(torch.zeros(1, frames, FEATURES)).shape[1] == expected
        assert int(front.output_lengths(torch.tensor([frames]))) == expected
    assert front.output_lengths(torch.arange(7)).tolist() == [0] * 7


def test_padded_frames_of_the_output_are_zero() -> None:
    model = make_model("conformer")
    x, x_lens, _, _ = make_batch()
    enc, enc_lens = model.encode(x, x_lens)
    assert enc[1, int(enc_lens[1]) :].abs().max() == 0


@pytest.mark.parametrize("encoder", ENCODER_KINDS)
def test_padding_does_not_leak_into_shorter_items(encoder: str) -> None:
    model = make_model(encoder)
    x, x_lens, _, _ = make_batch()
    with torch.no_grad():
        batched, lens = model.encode(x, x_lens)
        alone, alone_lens = model.encode(x[1:, :43], x_lens[1:])
    assert lens[1] == alone_lens[0]
    torch.testing.assert_close(batched[1, : int(lens[1])], alone[0], atol=1e-5, rtol=1e-5)


def test_predictor_reads_negative_ids_as_blank() -> None:
    model = make_model("lstm")
    state = model.predictor.init_state(1)
    sherpa_start, _ = model.predict(torch.tensor([[-1, 0]]), state)
    blank_start, _ = model.predict(torch.tensor([[0, 0]]), state)
    torch.testing.assert_close(sherpa_start, blank_start)


# --- configs and presets ---


@pytest.mark.parametrize("predictor", PREDICTOR_KINDS)
@pytest.mark.parametrize("encoder", ENCODER_KINDS)
def test_config_round_trips_through_json(encoder: str, predictor: str) -> None:
    config = build_config("small", encoder, vocab_size=321, predictor=predictor)
    rebuilt = TransducerConfig.from_dict(json.loads(json.dumps(config.to_dict())))
    assert rebuilt == config


def test_checkpoint_style_rebuild_loads_the_state_dict() -> None:
    model = make_model("conformer", "lstm")
    rebuilt = Transducer(TransducerConfig.from_dict(model.config.to_dict()))
    rebuilt.load_state_dict(model.state_dict())  # strict: same modules, same shapes


def test_from_dict_names_unknown_mistyped_and_missing_keys() -> None:
    data = tiny("gru").to_dict()
    with pytest.raises(ModelFilesError, match="unknown keys.*'heads'"):
        TransducerConfig.from_dict({**data, "encoder": {**data["encoder"], "heads": 4}})
    with pytest.raises(ModelFilesError, match="'hidden_dim' should be int"):
        TransducerConfig.from_dict({**data, "encoder": {**data["encoder"], "hidden_dim": "32"}})
    with pytest.raises(ModelFilesError, match="no 'predictor' section"):
        TransducerConfig.from_dict({k: v for k, v in data.items() if k != "predictor"})
    with pytest.raises(ModelFilesError, match="must be a dict"):
        TransducerConfig.from_dict(["not", "a", "dict"])  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: EncoderConfig(kind="mamba"), "encoder kind 'mamba'"),
        (lambda: EncoderConfig(kind="gru", proj_dim=16), "proj_dim 16 needs kind 'lstm'"),
        (lambda: EncoderConfig(kind="conformer", hidden_dim=36, num_heads=4), "heads of even size"),
        (lambda: EncoderConfig(kind="conformer", left_context_chunks=0), "left_context_chunks"),
        (lambda: EncoderConfig(dropout=1.0), "dropout"),
        (lambda: EncoderConfig(kind="conformer", residual=True), "residual is for the recurrent kinds"),
        (lambda: EncoderConfig(kind="tcn", residual=True), "residual is for the recurrent kinds"),
        (lambda: EncoderConfig(kind="lstm", final_norm_only=True), "final_norm_only is for the attention kinds"),
        (lambda: EncoderConfig(kind="bilstm"), "encoder kind 'bilstm' needs residual=True"),
        (lambda: EncoderConfig(kind="lstm", readout_layers=1), "readout_layers is for the esn"),
        (lambda: EncoderConfig(kind="esn", residual=True, readout_layers=-1), "readout_layers must be >= 0"),
        (lambda: EncoderConfig(kind="gru", readout_taps=4), "readout_taps is for the esn"),
        (lambda: EncoderConfig(kind="esn", residual=True, readout_taps=-1), "readout_taps must be >= 0"),
        (lambda: EncoderConfig(kind="esn", residual=True, readout_layers=1, readout_hidden_taps=True),
         "readout_hidden_taps .* needs readout_taps > 0"),
        (lambda: EncoderConfig(kind="esn", residual=True, readout_taps=4, readout_hidden_taps=True),
         "readout_hidden_taps .* and readout_layers > 0"),
        (lambda: PredictorConfig(kind="transformer"), "predictor kind"),
        (lambda: TransducerConfig(EncoderConfig(), PredictorConfig(), vocab_size=10, blank_id=10), "blank_id"),
    ],
)
def test_invalid_config_values_are_named(make, message: str) -> None:  # noqa: ANN001 (a config factory)
    with pytest.raises(AsrError, match=message):
        make()


def test_configs_written_before_residual_stacks_load_as_plain_stacks() -> None:
    data = build_config("small", "lstm").to_dict()
    assert data["encoder"]["residual"] is True  # every preset's recurrent stack is residual
    del data["encoder"]["residual"]  # what a checkpoint from before the option holds
    old = Transducer(TransducerConfig.from_dict(data))
    assert old.config.encoder.residual is False and hasattr(old.encoder, "rnn")


def test_esn_configs_written_before_readout_layers_load_with_a_linear_readout() -> None:
    data = build_config("small", "esn").to_dict()
    readout = Transducer(TransducerConfig.from_dict(data)).encoder.output
    assert [type(m) for m in readout] == [torch.nn.Linear, torch.nn.ReLU, torch.nn.Linear]  # the preset's
    assert readout[0].weight.shape == (1120, 1120) and readout[2].weight.shape == (256, 1120)
    for later in ("readout_layers", "readout_hidden_taps"):  # what a checkpoint from before the options holds
        del data["encoder"][later]
    old = Transducer(TransducerConfig.from_dict(data))
    assert isinstance(old.encoder.output, torch.nn.Linear) and old.encoder.output.weight.shape == (256, 1120)


def test_esn_configs_written_before_readout_taps_load_without_taps_and_stream_the_old_state() -> None:
    data = build_config("small", "esn").to_dict()
    assert data["encoder"]["readout_taps"] > 0  # the preset's
    assert isinstance(Transducer(TransducerConfig.from_dict(data)).encoder.init_state(1), EsnState)
    for later in ("readout_taps", "readout_hidden_taps"):  # what a checkpoint from before the options holds
        del data["encoder"][later]
    old = Transducer(TransducerConfig.from_dict(data)).encoder
    assert old.taps is None and isinstance(old.init_state(1), RnnState)


def test_esn_configs_written_before_readout_hidden_taps_load_with_taps_before_the_readout_only() -> None:
    data = build_config("small", "esn").to_dict()
    new = Transducer(TransducerConfig.from_dict(data)).encoder
    assert data["encoder"]["readout_hidden_taps"] is True  # the preset's
    frames = new.taps.context_frames
    assert new.init_state(1).taps.shape == (1, frames, 2 * 1120)  # the body's frames and the hidden layer's
    del data["encoder"]["readout_hidden_taps"]  # what a checkpoint from before the option holds
    old = Transducer(TransducerConfig.from_dict(data)).encoder
    assert old.hidden_taps is None and old.init_state(1).taps.shape == (1, frames, 1120)
    assert sorted(name for name, _ in old.named_parameters() if "taps" in name) == ["taps.weight"]


@pytest.mark.parametrize("kind", ATTENTION_KINDS)
def test_attention_configs_written_before_final_norm_only_load_with_a_norm_closing_every_layer(kind: str) -> None:
    data = build_config("small", kind).to_dict()
    new = Transducer(TransducerConfig.from_dict(data))
    assert data["encoder"]["final_norm_only"] is True  # every preset's attention stack is pure pre-norm
    assert all(isinstance(layer.norm, torch.nn.Identity) for layer in new.encoder.layers)
    assert isinstance(new.encoder.final_norm, torch.nn.LayerNorm)
    del data["encoder"]["final_norm_only"]  # what a checkpoint from before the option holds
    old = Transducer(TransducerConfig.from_dict(data))
    assert all(isinstance(layer.norm, torch.nn.LayerNorm) for layer in old.encoder.layers)
    assert isinstance(old.encoder.final_norm, torch.nn.Identity)
    # Identity holds no weights, so each layout's checkpoint names exactly its own norms.
    assert {k for k in old.state_dict() if "norm" in k} != {k for k in new.state_dict() if "norm" in k}


@pytest.mark.parametrize("kind", ATTENTION_KINDS)
def test_attention_layers_prepared_for_training_start_as_the_identity(kind: str) -> None:
    torch.manual_seed(0)
    config = tiny(kind)  # in the layout of the trained presets, one LayerNorm after the last layer
    config = dataclasses.replace(config, encoder=dataclasses.replace(config.encoder, final_norm_only=True))
    encoder = Transducer(config).encoder.eval()
    x, x_lens = torch.randn(2, 40, 80), torch.tensor([40, 31])
    before, _ = encoder(x, x_lens)
    encoder.prepare_for_training()
    after, out_lens = encoder(x, x_lens)

    expected = encoder.output(encoder.final_norm(encoder.subsampling(x)))  # front -> final norm -> output
    expected = expected * (torch.arange(after.shape[1])[None, :, None] < out_lens[:, None, None])
    torch.testing.assert_close(after, expected, atol=1e-5, rtol=1e-5)
    assert not torch.allclose(before, after, atol=1e-3)  # a fresh build's layers do change the signal


@pytest.mark.parametrize("kind", [kind for kind in ENCODER_KINDS if kind not in ATTENTION_KINDS])
def test_other_encoders_need_no_preparation_for_training(kind: str) -> None:
    encoder = Transducer(tiny(kind)).encoder
    before = {name: value.clone() for name, value in encoder.state_dict().items()}
    encoder.prepare_for_training()
    assert all(torch.equal(before[name], value) for name, value in encoder.state_dict().items())


def test_build_config_names_the_choices() -> None:
    with pytest.raises(AsrError, match="unknown model preset 'huge'.*tiny, small, base, large"):
        build_config("huge", "lstm")
    with pytest.raises(AsrError, match="unknown encoder 'lstmp'.*conformer"):
        build_config("small", "lstmp")
    with pytest.raises(AsrError, match="unknown predictor 'rnn'"):
        build_config("small", "lstm", predictor="rnn")


# Parameter targets per preset, in millions (vocab 500, stateless predictor).
TARGETS = {"tiny": (0.01, 0.12), "small": (4.0, 6.5), "base": (20.0, 30.0), "large": (72.0, 88.0)}


@pytest.fixture(scope="module")
def table() -> list:
    return parameter_table()


def test_parameter_table_covers_every_preset_and_kind_within_targets(table: list) -> None:
    assert [(r.preset, r.encoder) for r in table] == [(p, e) for p in PRESETS for e in ENCODER_KINDS]
    for row in table:
        low, high = TARGETS[row.preset]
        assert low <= (row.total_params + row.fixed_params) / 1e6 <= high, row  # an ESN's reservoir counts
        assert row.total_params == row.encoder_params + row.other_params


def test_parameter_counts_match_a_real_build() -> None:
    torch.manual_seed(0)
    real = Transducer(build_config("tiny", "conformer"))
    row = next(r for r in parameter_table() if (r.preset, r.encoder) == ("tiny", "conformer"))
    assert row.total_params == sum(p.numel() for p in real.parameters())


def test_print_parameter_table(table: list, capsys: pytest.CaptureFixture[str]) -> None:
    print_parameter_table(markdown=True)
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 2 + len(PRESETS) * len(ENCODER_KINDS)
    assert lines[0].startswith("| preset |") and "| small | lstm |" in "\n".join(lines)
    text = format_parameter_table(table).splitlines()
    assert len({len(line) for line in text}) == 1  # aligned columns


# --- bad inputs ---


def test_label_ids_out_of_range_or_blank_are_rejected() -> None:
    model = make_model("gru")
    x, x_lens, y, y_lens = make_batch()
    for bad in (VOCAB, 0, -3):
        labels = y.clone()
        labels[0, 1] = bad
        with pytest.raises(DataError, match=r"targets\[0, 1\]"):
            model(x, x_lens, labels, y_lens)


def test_negative_lengths_are_rejected() -> None:
    model = make_model("rnn")
    x, x_lens, y, y_lens = make_batch()
    with pytest.raises(DataError, match="feature lengths"):
        model(x, torch.tensor([60, -1]), y, y_lens)
    with pytest.raises(DataError, match="target length of item 1"):
        model(x, x_lens, y, torch.tensor([4, -2]))


def test_mismatched_batch_sizes_and_shapes_are_rejected() -> None:
    model = make_model("lstm")
    x, x_lens, y, y_lens = make_batch()
    with pytest.raises(ShapeError, match="batch sizes differ"):
        model(x, x_lens, torch.cat([y, y]), torch.cat([y_lens, y_lens]))
    with pytest.raises(ShapeError, match="features"):
        model.encode(x[..., :40], x_lens)
    with pytest.raises(ShapeError, match="below the 7 the x4 front needs"):
        model.encode(x[:, :6], torch.tensor([6, 6]))


def test_bad_stream_windows_and_states_are_rejected() -> None:
    model = make_model("conformer")
    x, _, _, _ = make_batch()
    state = model.init_state(2)
    with pytest.raises(ShapeError, match="not 4 \\* n \\+ 3"):
        model.stream(x[:, :18], state)
    with pytest.raises(ShapeError, match="not a multiple of chunk_frames=4"):
        model.stream(x[:, : model.encoder.window_frames(3)], state)
    with pytest.raises(ShapeError, match="cached_key.*another batch size"):
        model.stream(x[:, : model.encoder.window_frames(4)], model.init_state(3))
    with pytest.raises(ShapeError, match="expected a ConformerState"):
        model.stream(x[:, : model.encoder.window_frames(4)], make_model("lstm").init_state(2))
    with pytest.raises(ShapeError, match="predictor context"):
        model.predict(torch.zeros(2, 3, dtype=torch.int64), model.predictor.init_state(2))


# --- learning ---


@pytest.mark.parametrize("loss", LOSSES)
@pytest.mark.parametrize("encoder", ENCODER_KINDS)
def test_one_batch_overfit(encoder: str, loss: str) -> None:
    """The whole model learns: the loss on one fixed batch falls 10x in <= 200 Adam steps.

    10x, not 5x: about 5x comes from learning to emit blank alone; the rest needs the labels.
    """
    model = make_model(encoder, seed=2).train()
    batch = make_batch(seed=2)
    options = LOSSES[loss]
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    with torch.no_grad():
        first = last = float(model(*batch, options).total)
    for _ in range(200):
        optimizer.zero_grad()
        losses = model(*batch, options)
        losses.total.backward()
        optimizer.step()
        last = float(losses.total.detach())
        if last < first / 10:
            break
    assert last < first / 10, f"{encoder} ({loss}): loss {first:.2f} -> {last:.2f}"


def test_feature_stats_normalise_the_input_and_reject_wrong_shapes() -> None:
    torch.manual_seed(0)
    front = Conv2dSubsampling(feature_dim=8, channels=2, out_dim=4)
    x = torch.randn(1, 11, 8) * 3.0 - 6.0  # (B, T, F)
    mean, std = x.mean(dim=(0, 1)), x.std(dim=(0, 1))
    expected = front((x - mean) / std)
    front.set_feature_stats(mean, std)
    assert torch.allclose(front(x), expected, atol=1e-5)
    assert set(front.state_dict()) >= {"feature_mean", "feature_inv_std"}  # travel in checkpoints
    with pytest.raises(ShapeError, match="feature mean"):
        front.set_feature_stats(torch.zeros(7), torch.ones(8))
