"""Checkpoint -> ONNX / TensorRT export (needs the `export` extra: torch)."""
