"""Training of transducer models (torch): `asr train` and `asr average`.

Modules: config (TrainConfig and the CLI flags, torch-free so building the
`asr` parser never loads torch), tokenizers (char and BPE), batches (tokenized
sets, bucketing sampler, padded batches), spec_augment, schedule (lr_at), ema,
distributed (DDP set-up), corpus (tokenizer, features and batches of one run),
step (one optimizer step), loop (epochs, validation, checkpoints), checkpoints
(saving, keep-last-K and best, averaging, loading for decoding), torch_backend
(the runtime's search over a torch model) and decoding (decode and score a
corpus: dev WER here, `asr eval` in asr.evaluation), dev_wer (the default dev
WER), monitor (progress bar, TensorBoard) and plots (curves PNG), command (the
two sub-commands).
"""
