"""Endpoint detection: when has the speaker finished an utterance?

The rules are Kaldi's OnlineEndpointRule as sherpa-onnx uses them, over the
search's output alone (no separate voice activity detector): "silence" is the
run of encoder frames since the best hypothesis last emitted a token, and an
utterance "contains speech" when it is longer than that run. An endpoint is
detected when any rule holds. The defaults are sherpa-onnx's:

    rule 1  2.4 s of silence, even if nothing was recognised (the speaker never started)
    rule 2  1.2 s of silence after something was recognised (the speaker stopped)
    rule 3  20 s of utterance, whatever it holds (a bound on segment length)
"""

from __future__ import annotations

from dataclasses import dataclass, field

from asr.errors import ConfigError


@dataclass(frozen=True)
class EndpointRule:
    """One rule: it holds when all three of its conditions do."""

    must_contain_nonsilence: bool  # the utterance must hold a token before the trailing silence
    min_trailing_silence: float  # seconds of trailing silence needed (0: no condition)
    min_utterance_length: float = 0.0  # seconds of utterance needed (0: no condition)

    def __post_init__(self) -> None:
        if self.min_trailing_silence < 0 or self.min_utterance_length < 0:
            raise ConfigError(
                f"endpoint rule durations must be >= 0 seconds, got min_trailing_silence="
                f"{self.min_trailing_silence} and min_utterance_length={self.min_utterance_length}"
            )

    def holds(self, trailing_silence: float, utterance_length: float) -> bool:
        """Whether the rule fires for these durations, in seconds."""
        contains_nonsilence = utterance_length > trailing_silence
        return (
            (contains_nonsilence or not self.must_contain_nonsilence)
            and trailing_silence >= self.min_trailing_silence
            and utterance_length >= self.min_utterance_length
        )


@dataclass(frozen=True)
class EndpointConfig:
    """The endpoint rules; an endpoint is detected when any of them holds."""

    # Silence with nothing recognised: the stream has been quiet since its (segment) start.
    rule1: EndpointRule = field(default_factory=lambda: EndpointRule(False, 2.4))
    # Silence after speech: the speaker has stopped.
    rule2: EndpointRule = field(default_factory=lambda: EndpointRule(True, 1.2))
    # Length: no segment grows past 20 s.
    rule3: EndpointRule = field(default_factory=lambda: EndpointRule(False, 0.0, 20.0))
    enabled: bool = True  # False: is_endpoint never fires (whole-stream decoding)

    @property
    def rules(self) -> tuple[EndpointRule, ...]:
        return self.rule1, self.rule2, self.rule3


def is_endpoint(
    config: EndpointConfig, num_frames_decoded: int, trailing_blank_frames: int, frame_shift_seconds: float
) -> bool:
    """Whether a segment has ended.

    num_frames_decoded: frames decoded since the segment started; trailing_blank_frames:
    frames since its last token (all of them when it has none); frame_shift_seconds: the
    duration of one such frame (an encoder frame: subsampling_factor feature shifts).
    """
    if not config.enabled:
        return False
    utterance_length = num_frames_decoded * frame_shift_seconds
    trailing_silence = trailing_blank_frames * frame_shift_seconds
    return any(rule.holds(trailing_silence, utterance_length) for rule in config.rules)
