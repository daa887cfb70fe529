"""Synthetic speech corpus in LibriSpeech layout: sentences read by espeak-ng, flite and festival voices.

`generate_corpus` is the library entry point and `run_synth_command` the
`asr synth` sub-command; see asr.synth.corpus for the layout and guarantees.
"""

from asr.synth.corpus import generate_corpus, run_synth_command

__all__ = ["generate_corpus", "run_synth_command"]
