"""`asr bench`: speed, latency and memory of the torch-free runtime, optionally against sherpa-onnx.

    asr bench --model MODEL_DIR FILE... [--compare sherpa-onnx] [--int8] [--num-threads 1]
              [--rounds 3] [--streams N | --max-streams] [--format text|json]

Every measurement runs in a child process (`python -m asr.bench --worker RUNTIME
...`) so that each runtime's peak memory is its own; with --compare the
children alternate (ours, sherpa-onnx, ours, ...) so that machine load hits both
alike. A child plays the files to N streams in lockstep, one model chunk
(decode_chunk_len feature frames of audio) per stream per step, decoding every
ready stream in one batched call, as a server would; stream i plays the files
in order starting from file i mod F, a fresh stream per file. Both runtimes use
greedy search, the same files, the same chunks and the same threads. Measured:

    rtf              compute seconds / audio seconds of one stream (below 1: real time for N streams)
    chunk latency    wall time of one step: feeding a chunk to every stream, then the
                     decode calls it made possible (both count: sherpa-onnx computes
                     features as audio is fed, ours when a window is decoded);
                     p50 / p95 / p99 in milliseconds
    algorithmic      chunk_ms + lookahead_ms from the model's metadata: audio a window
                     must wait for before it can be decoded at all
    first partial    for each file, the delay from the emission time of the first token
                     (its timestamp, in audio seconds) to the moment the first non-empty
                     partial result exists when audio arrives in real time: audio fed
                     when the step producing it starts (fed seconds), plus that step's
                     wall time up to the end of the decode call, minus the token's
                     timestamp. It holds the algorithmic delay and the compute delay;
                     median over files and rounds.
    peak RSS         the child's maximum resident memory (baseline: before the model loads)
    ort overhead     (ours only) total compute / time inside onnxruntime's run calls,
                     measured by wrapping InferenceSession's run methods in the child:
                     1.0 would mean the runtime costs nothing beyond onnxruntime.

sherpa-onnx runs only model_type "lstm" exports (an LSTM encoder with the
stateless predictor); --compare with any other model is a ConfigError.
--max-streams tries N = 1, 2, 4, ... until the RTF reaches 1 and reports the
largest N that stayed real-time on this machine.

Modules: runtimes (ours and sherpa-onnx behind one interface), worker (what a
child process measures; `python -m asr.bench` runs it), report (rounds
summarised, compared, formatted as text or JSON) and command (the options,
spawning the children, `asr bench` itself).
"""
