"""WindowGeometry (issue 12): one object for the window layout, equal to what the four
copies of its arithmetic (runtime, torch backend, export verification, bench) computed."""

from __future__ import annotations

import itertools

import pytest

from asr.runtime.geometry import EXTRA_TAIL_WINDOWS, WindowGeometry

LAYOUTS = list(itertools.product([1, 2, 4, 6], [1, 2, 8, 16], [0, 3, 7]))  # subsampling, n, pad


def old_tail_padding(num_frames: int, sub: int, n: int, pad: int) -> int:
    """ModelMetadata.tail_padding_frames before the geometry object."""
    if num_frames == 0:
        return 0
    last_window = ((num_frames - 1) // sub) // n + EXTRA_TAIL_WINDOWS
    return (last_window + 1) * (sub * n) + pad - num_frames


def old_window_starts(num_frames: int, window_frames: int, shift_frames: int) -> range:
    """export.verify.window_starts before the geometry object."""
    count = max(0, (num_frames - window_frames - 1) // shift_frames + 1)
    return range(0, count * shift_frames, shift_frames)


@pytest.mark.parametrize("sub,n,pad", LAYOUTS)
def test_geometry_matches_the_former_arithmetic(sub: int, n: int, pad: int) -> None:
    geometry = WindowGeometry(sub, n, pad, frame_shift_ms=10.0)
    assert geometry.shift_frames == sub * n  # decode_chunk_len, shift_frames, step, chunk
    assert geometry.window_frames == sub * n + pad  # T
    assert geometry.chunk_ms == pytest.approx(sub * n * 10.0, abs=1e-9)
    for num_frames in range(0, 5 * sub * n + 2 * pad + 3):
        assert geometry.tail_padding_frames(num_frames) == old_tail_padding(num_frames, sub, n, pad)
        assert geometry.sherpa_window_starts(num_frames) == old_window_starts(num_frames, sub * n + pad, sub * n)
    for encoder_frames in range(0, 4 * n + 2):
        windows = geometry.windows_for_encoder_frames(encoder_frames)
        assert windows == -(-encoder_frames // n)  # the torch backend's ceil
        if windows:  # what the torch backend padded to: num_windows * step + pad_frames
            assert geometry.frames_for_windows(windows) == windows * sub * n + pad
            last = geometry.window_start(windows - 1)
            assert last + geometry.window_frames == geometry.frames_for_windows(windows)


def test_sherpa_runs_a_window_once_a_frame_beyond_it_exists() -> None:
    geometry = WindowGeometry(4, 4, 3)  # T = 19, decode_chunk_len = 16
    assert list(geometry.sherpa_window_starts(19)) == []
    assert list(geometry.sherpa_window_starts(20)) == [0]
    assert list(geometry.sherpa_window_starts(36)) == [0, 16]
    assert list(geometry.sherpa_window_starts(35)) == [0]


def test_tail_padding_lets_every_real_frame_and_one_more_window_run() -> None:
    geometry = WindowGeometry(4, 8, 3)
    for num_frames in range(1, 200):
        total = num_frames + geometry.tail_padding_frames(num_frames)
        windows = (total - geometry.pad_frames) // geometry.shift_frames
        assert geometry.frames_for_windows(windows) == total  # the padded stream ends on a window boundary
        last_encoder_frame = (num_frames - 1) // geometry.subsampling_factor
        assert windows == last_encoder_frame // geometry.chunk_frames + 1 + EXTRA_TAIL_WINDOWS


def test_metadata_keys_keep_sherpa_names(tmp_path) -> None:  # noqa: ANN001
    from asr.runtime.default_model import resolve_model_dir
    from asr.runtime.model_dir import ModelFiles

    model_dir, int8 = resolve_model_dir(None, False)
    meta = ModelFiles.from_dir(model_dir, int8=int8).metadata
    props = meta.to_props()
    assert int(props["T"]) == meta.geometry.window_frames == meta.window_frames
    assert int(props["decode_chunk_len"]) == meta.geometry.shift_frames == meta.shift_frames
    assert meta.geometry.chunk_ms == pytest.approx(float(props["chunk_ms"]), abs=1e-9)


def test_bad_geometry_is_refused() -> None:
    with pytest.raises(ValueError, match="chunk_frames"):
        WindowGeometry(4, 0, 3)
