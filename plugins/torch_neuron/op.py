"""The `neuron::forward_v1` operator: one per compiled subgraph in a traced ScriptModule.

Its arguments are the subgraph's input tensors, the NEFF as a uint8 tensor (a buffer of the
`NeuronSubgraph` module, so `torch.jit.save` stores it with the weights) and a short JSON config.
`import torch_neuron` registers it; a process that loads a saved model without that import gets
TorchScript's "Unknown builtin op: neuron::forward_v1", and the config string shown next to it in
that error says to import torch_neuron.
"""
from __future__ import annotations

import functools
import json
import threading

import numpy as np
import torch

from neuron_core.bridge import run_neff
from neuron_core.bridge.plugin import parse_node_config
from neuron_core.errors import NeuronError

OP = "forward_v1"
HINT = "import torch_neuron before torch.jit.load"

_LIB = torch.library.Library("neuron", "DEF")
_LIB.define(f"{OP}(Tensor[] inputs, Tensor neff, str config) -> Tensor[]")


#: per thread, the last NeuronError an operator raised (TorchScript re-raises it as a
#: RuntimeError carrying its text; `neuron_error` gives the original back)
_LAST = threading.local()


@functools.lru_cache(maxsize=256)
def _config(text: str) -> dict:
    return parse_node_config(text, f"the config string of a {OP} operator",
                             "the saved model is damaged, trace it again")


def neuron_error(exc: BaseException) -> NeuronError | None:
    """The NeuronError behind `exc`: `exc` itself, or the one a Neuron operator raised on this
    thread when `exc` is the RuntimeError TorchScript made of it (its message carries the
    original's class name and text); else None.

    Example:
        >>> try:
        ...     traced(torch.zeros(3, 3))                       # doctest: +SKIP
        ... except RuntimeError as e:
        ...     err = torch_neuron.neuron_error(e)              # a BadInputError, status EXEC_BAD_INPUT
    """
    if isinstance(exc, NeuronError):
        return exc
    last = getattr(_LAST, "error", None)
    if last is not None and f"{type(last).__name__}: {last}" in str(exc):
        return last
    return None


def _numpy(t: torch.Tensor) -> np.ndarray:
    t = t.detach()
    if t.dtype == torch.bfloat16:
        t = t.float()
    return t.contiguous().numpy()


def _forward(inputs, neff, config):
    try:
        cfg = _config(config)
        outs = run_neff(neff.detach().numpy(), [_numpy(t) for t in inputs],
                        dynamic_batch=bool(cfg.get("dynamic_batch")),
                        name=f"neuron subgraph {cfg.get('index', '?')}")
    except NeuronError as exc:
        _LAST.error = exc
        raise
    return [torch.from_numpy(o) for o in outs]


_LIB.impl(OP, _forward, "CPU")


class NeuronSubgraph(torch.nn.Module):
    """Holds one compiled subgraph's NEFF; calling it runs the NEFF on the simulated NeuronCore."""

    def __init__(self, neff: bytes, index: int, dynamic_batch: bool):
        super().__init__()
        self.register_buffer("neff", torch.frombuffer(bytearray(neff), dtype=torch.uint8))
        self.config = json.dumps({"note": HINT, "index": index, "dynamic_batch": dynamic_batch})

    def forward(self, *inputs):
        return torch.ops.neuron.forward_v1(list(inputs), self.neff, self.config)
