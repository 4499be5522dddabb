"""The NEFF container: a compiled model as a versioned, hashed file of JSON sections and raw arrays
(`format`), its description for people (`info`), and its identity and the per-process cache of
NEFF bytes (`cache`)."""
from .format import FORMAT_VERSION, MAGIC, Neff, Section, read_neff, to_bytes, write_neff
from .info import format_info
from .cache import NEFF_BYTES, NeffBytes, key_from, neff_key

__all__ = ["FORMAT_VERSION", "MAGIC", "Neff", "Section", "format_info", "read_neff", "to_bytes",
           "write_neff", "neff_key", "key_from", "NeffBytes", "NEFF_BYTES"]
