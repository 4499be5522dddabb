"""The NEFF container: a compiled model as a versioned, hashed file of JSON sections and raw arrays."""
from .format import FORMAT_VERSION, MAGIC, Neff, Section, format_info, read_neff, to_bytes, write_neff

__all__ = ["FORMAT_VERSION", "MAGIC", "Neff", "Section", "format_info", "read_neff", "to_bytes", "write_neff"]
