"""Latency and throughput estimates on Inf1 instance sizes, from the timing model (no execution).

`program`: one compiled program (data parallel or a NeuronCore pipeline); `neffs`: a partitioned
model, its NEFFs one after another plus the host work between them, and the `Compiled` record a
plugin fills with where its NEFFs and measured host time live; `host`: the one measurement of that
host work.

    est = estimate_program(program, metadata, instance="inf1.xlarge")
    est = estimate_compiled(Compiled(neffs, host_ms=0.8, name="resnet50"))
    print(est.format())
"""
from .host import measure_host_ms
from .neffs import (Compiled, estimate_compiled, estimate_neffs, read_program, summary,
                    summary_line)
from .program import (Estimate, InstanceEstimate, check_host_ms, compiled_batch, estimate_program,
                      split_stages, stage_cost_model)

__all__ = ["Estimate", "InstanceEstimate", "Compiled", "estimate_program", "estimate_neffs",
           "estimate_compiled", "summary", "summary_line", "measure_host_ms", "read_program",
           "compiled_batch", "check_host_ms", "split_stages", "stage_cost_model"]
