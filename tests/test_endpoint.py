"""The three endpoint rules (sherpa-onnx's defaults), each on its own, and their options."""

from __future__ import annotations

import pytest

from asr.errors import ConfigError
from asr.runtime.endpoint import EndpointConfig, EndpointRule, is_endpoint

FRAME = 0.04  # seconds per encoder frame: 4 feature frames of 10 ms
NEVER = EndpointRule(True, 1e9)  # a rule that cannot fire, to test the others alone


def frames(seconds: float) -> int:
    return round(seconds / FRAME)


def fires(config: EndpointConfig, decoded: float, trailing: float) -> bool:
    return is_endpoint(config, frames(decoded), frames(trailing), FRAME)


def test_defaults_are_sherpa_onnx_s() -> None:
    config = EndpointConfig()
    assert config.rule1 == EndpointRule(must_contain_nonsilence=False, min_trailing_silence=2.4, min_utterance_length=0.0)
    assert config.rule2 == EndpointRule(must_contain_nonsilence=True, min_trailing_silence=1.2, min_utterance_length=0.0)
    assert config.rule3 == EndpointRule(must_contain_nonsilence=False, min_trailing_silence=0.0, min_utterance_length=20.0)


def test_rule1_silence_without_speech() -> None:
    config = EndpointConfig(rule2=NEVER, rule3=NEVER)
    assert not fires(config, decoded=2.36, trailing=2.36)  # nothing recognised, not yet 2.4 s
    assert fires(config, decoded=2.4, trailing=2.4)  # nothing recognised: rule 1 needs no speech
    assert fires(config, decoded=5.0, trailing=2.4)  # after speech too
    assert not fires(config, decoded=5.0, trailing=1.3)


def test_rule2_silence_after_speech() -> None:
    config = EndpointConfig(rule1=NEVER, rule3=NEVER)
    assert fires(config, decoded=3.0, trailing=1.2)
    assert not fires(config, decoded=3.0, trailing=1.16)
    assert not fires(config, decoded=1.6, trailing=1.6)  # all silence: it must contain speech


def test_rule3_utterance_length() -> None:
    config = EndpointConfig(rule1=NEVER, rule2=NEVER)
    assert fires(config, decoded=20.0, trailing=0.0)  # mid-speech: no silence needed
    assert not fires(config, decoded=19.96, trailing=0.0)
    assert fires(config, decoded=25.0, trailing=25.0)


def test_any_rule_is_enough_and_endpointing_can_be_disabled() -> None:
    assert fires(EndpointConfig(), decoded=3.0, trailing=1.2)  # rule 2 only
    assert fires(EndpointConfig(), decoded=2.4, trailing=2.4)  # rule 1 only
    assert not fires(EndpointConfig(), decoded=3.0, trailing=1.0)
    assert not fires(EndpointConfig(enabled=False), decoded=30.0, trailing=30.0)


def test_frame_shift_scales_the_durations() -> None:
    config = EndpointConfig(rule1=NEVER, rule3=NEVER)
    assert not is_endpoint(config, 100, 12, 0.04)  # 0.48 s of silence
    assert is_endpoint(config, 100, 12, 0.1)  # the same frames, 1.2 s


def test_negative_durations_are_rejected() -> None:
    with pytest.raises(ConfigError, match=">= 0 seconds"):
        EndpointRule(False, -1.0)
    with pytest.raises(ConfigError, match="min_utterance_length=-2"):
        EndpointRule(False, 0.0, -2.0)
