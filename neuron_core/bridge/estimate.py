"""Kept for imports written before the estimates had their own package: see `neuron_core.estimate`."""
from ..estimate.neffs import estimate_neffs, summary_line  # noqa: F401
