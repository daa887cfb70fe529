"""`asr bench`: the torch-free runtime's speed, latency and memory, optionally against sherpa-onnx."""
