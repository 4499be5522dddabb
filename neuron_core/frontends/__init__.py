"""Frontends: native model formats -> core IR (`onnx_import`; the framework plugins bring theirs)."""
