"""Kept for imports written before the estimates had their own package: see `neuron_core.estimate`."""
from ..estimate.program import (Estimate, InstanceEstimate, compiled_batch,  # noqa: F401
                                estimate_program, split_stages, stage_cost_model)
