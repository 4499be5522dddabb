"""Kept for imports written before the importer was named apart from `neuron_core.onnx` (the
host-fallback models): see `neuron_core.frontends.onnx_import`."""
from .onnx_import import from_onnx, load_model, match_name  # noqa: F401
