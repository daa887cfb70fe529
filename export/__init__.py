"""ONNX export wrappers, metadata, int8 quantization and verification against torch."""
