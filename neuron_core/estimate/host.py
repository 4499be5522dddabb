"""The one measurement of a compiled model's host work: the operations its framework runs between
the Neuron subgraphs, timed on this machine's CPU.

    host_ms = measure_host_ms(lambda: model(*example_inputs))

`run` is timed twice (the first run also loads the NEFFs and warms the framework up) and the best
run counts, less the wall time spent in NeuronCore calls during it.
"""
from __future__ import annotations

import time
from typing import Callable


def measure_host_ms(run: Callable[[], object], neuron_seconds: Callable[[], float] | None = None,
                    runs: int = 2) -> float:
    """Host work of `run()` in ms: the best of `runs` runs of its wall time minus the growth of
    `neuron_seconds()` over it (default: the seconds every thread of this process spent in the
    plugins' NeuronCore calls, `bridge.neuron_seconds`); never below 0."""
    if neuron_seconds is None:
        from ..bridge.runner import neuron_seconds
    best = float("inf")
    for _ in range(runs):
        inside = neuron_seconds()
        started = time.perf_counter()
        run()
        best = min(best, time.perf_counter() - started - (neuron_seconds() - inside))
    return 1e3 * max(0.0, best)
