"""The one measurement of a compiled model's host work: the operations its framework runs between
the Neuron subgraphs, timed on this machine's CPU.

    host_ms = measure_host_ms(lambda: model(*example_inputs))

`run` is timed twice (the first run also loads the NEFFs and warms the framework up) and the best
run counts, less the wall time spent in NeuronCore calls during it; or, where the caller times its
host parts itself (the ONNX host fallback times its onnxruntime sessions), their time.
"""
from __future__ import annotations

import time
from typing import Callable


def measure_host_ms(run: Callable[[], object], neuron_seconds: Callable[[], float] | None = None,
                    runs: int = 2, host_seconds: Callable[[], float] | None = None) -> float:
    """Host work of `run()` in ms: the best of `runs` runs of its wall time minus the growth of
    `neuron_seconds()` over it (default: the seconds every thread of this process spent in the
    plugins' NeuronCore calls, `bridge.neuron_seconds`), or, with `host_seconds`, of the growth
    of `host_seconds()` (a clock of the host parts alone) over it; never below 0."""
    if neuron_seconds is None and host_seconds is None:
        from ..bridge.runner import neuron_seconds
    best = float("inf")
    for _ in range(runs):
        clock = host_seconds or neuron_seconds
        inside = clock()
        started = time.perf_counter()
        run()
        grown = clock() - inside
        best = min(best, grown if host_seconds else time.perf_counter() - started - grown)
    return 1e3 * max(0.0, best)
