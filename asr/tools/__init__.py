"""Tools over the whole pipeline: `asr demo` (synthesize, train, export, evaluate, bench), `asr train-lm`, `asr train`'s
entry (reading exported model dirs for --init-from), set-up's disk check."""
