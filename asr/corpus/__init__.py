"""Corpora and data preparation, torch-free: LibriSpeech-layout subsets and their manifests
(manifest, librispeech), noise and reverberation (acoustics) and the fbank feature cache
(feature_cache). Used by synth, training and evaluation; the runtime does not need it.
"""
