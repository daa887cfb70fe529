"""The project's exception types: each message names the problem and the fix.

The CLI catches `AsrError`, prints its message and exits non-zero, so raise
these (never `assert`) for anything a user can cause.
"""


class AsrError(Exception):
    """Base class for every error a user can act on."""


class AudioError(AsrError):
    """An audio file or buffer that cannot be used (missing, corrupt, empty, non-finite...)."""


class DataError(AsrError):
    """A corpus, manifest or transcript that is missing or inconsistent."""


class TokenError(AsrError):
    """Text the tokenizer cannot encode, or a broken tokens.txt."""


class ModelFilesError(AsrError):
    """A model dir or checkpoint that is missing, corrupt or mismatched."""


class ShapeError(AsrError, ValueError):
    """An array or tensor whose shape or dtype is not what a function expects."""


class DeviceError(AsrError):
    """An audio device that is missing, unknown or gone."""


class ConfigError(AsrError, ValueError):
    """A model, training or decoding option with an invalid value."""


class ServerError(AsrError):
    """An `asr serve` server that cannot be reached, refuses a client or fails mid-stream."""
