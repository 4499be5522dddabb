"""`_neuron_subgraph_op`: the MXNet custom operator each compiled region becomes.

Its inputs are the region's data inputs, then the data variables the region reads but its NEFF
does not (`ignored_inputs`: a SoftmaxOutput's label, kept so the compiled symbol takes the
original's inputs), then one uint8 parameter holding the NEFF (so the NEFF travels in the params
file written by `mx.nd.save`, not in the symbol JSON); its small JSON `config` attribute names the
inputs and outputs with their shapes and dtypes. It runs on the NeuronCore its context names:
`mx.neuron(i)` is `cpu(0)` to MXNet's engine, so binding with it records core i in the bound copy
of the symbol (context.py), and the operator reads it from there. Registered by `import mx_neuron`.
"""
from __future__ import annotations

import logging

import numpy as np

from neuron_core.bridge import run_neff
from neuron_core.bridge.plugin import parse_node_config
from neuron_core.errors import NeffFormatError, NeuronError
from neuron_core.neff import NEFF_BYTES, key_from

from ._mxnet import import_mxnet

mx = import_mxnet()

log = logging.getLogger("Neuron")
OP_TYPE = "_neuron_subgraph_op"


def _header_key(arr) -> bytes:
    """The NEFF's identity, read from its header alone (a few bytes, not the whole NEFF)."""
    try:
        return key_from(lambda start, stop: arr[start:stop].asnumpy().tobytes(), arr.shape[0])
    except NeffFormatError:
        raise NeuronError(f"{OP_TYPE}: the NEFF parameter ({arr.shape[0]} bytes) does not start "
                          "with a NEFF header; were the compiled params loaded with the symbol?"
                          ) from None


class NeuronSubgraphOp(mx.operator.CustomOp):
    """Runs one compiled region on the simulated NeuronCore."""

    def __init__(self, config: dict, name: str):
        super().__init__()
        self.config = config
        self.name = name
        self.core = config.get("core")
        self.used = len(config["inputs"])

    def _neff(self, arr) -> np.ndarray:
        return NEFF_BYTES.get(_header_key(arr), arr.asnumpy,
                              f"{self.name}: NEFF parameter is inconsistent")

    def forward(self, is_train, req, in_data, out_data, aux):
        neff = self._neff(in_data[-1])
        outs = run_neff(neff, [x.asnumpy() for x in in_data[:self.used]], name=self.name,
                        core=self.core)
        for dst, r, y in zip(out_data, req, outs):
            if r == "null":
                continue
            if r == "add":
                dst[:] = dst.asnumpy() + y
            else:
                dst[:] = y

    def backward(self, req, out_grad, in_data, out_data, in_grad, aux):
        raise NeuronError(f"{self.name}: compiled Neuron sub-graphs are inference only; train the "
                          "original symbol and compile it again")


def parse_config(text: str) -> tuple[dict, str | None]:
    """(config, None) for a well-formed `config` attribute, else ({}, what is wrong with it)."""
    try:
        config = parse_node_config(text, f"{OP_TYPE}: malformed config attribute "
                                   f"{str(text)[:60]!r}", "compile the model again with mx_neuron")
    except NeffFormatError as exc:
        return {}, str(exc)
    io = ("inputs", "outputs", "ignored_inputs")
    if not (isinstance(config, dict) and isinstance(config.get("neff_bytes"), int)
            and all(isinstance(config.get(k, []), list) for k in io)
            and all(isinstance(e, list) and len(e) == 3 for k in io for e in config.get(k, []))):
        return {}, (f"{OP_TYPE}: malformed config attribute {text[:60]!r} (expected an object "
                    "with inputs, outputs and neff_bytes); compile the model again with mx_neuron")
    return config, None


@mx.operator.register(OP_TYPE)
class NeuronSubgraphProp(mx.operator.CustomOpProp):
    """Shapes and dtypes of a compiled region, from its JSON config."""

    def __init__(self, config: str = "", **extra):
        # MXNet calls this from its creator callback, where an exception is not caught and
        # crashes the process: a bad config is kept and raised from `list_arguments`, whose
        # callback MXNet turns into an MXNetError
        super().__init__(need_top_grad=False)
        self.config, self.error = parse_config(config)
        self.label = f"neuron sub-graph {self.config.get('index', '?')}"
        self.ignored = self.config.get("ignored_inputs", [])

    def list_arguments(self):
        if self.error:
            raise NeuronError(self.error)
        return ([f"in{i}" for i in range(len(self.config["inputs"]))]
                + [f"ignored{i}" for i in range(len(self.ignored))] + ["neff"])

    def list_outputs(self):
        return [f"out{i}" for i in range(len(self.config["outputs"]))]

    def infer_shape(self, in_shape):
        want = [tuple(s) for _, s, _ in self.config["inputs"]]
        for (name, _, _), got, exp in zip(self.config["inputs"], in_shape, want):
            if got and tuple(got) != exp:
                # MXNet reports only its own "Shape inconsistent" for a custom op's infer_shape,
                # so say it here; returning the compiled shapes makes MXNet name both shapes
                log.error("%s: input %r has shape %s, compiled for %s; compile again with these "
                          "input shapes", self.label, name, tuple(got), exp)
        outs = [tuple(s) for _, s, _ in self.config["outputs"]]
        ignored = [tuple(got) if got else tuple(s) for (_, s, _), got in
                   zip(self.ignored, in_shape[len(want):])]
        return want + ignored + [(self.config["neff_bytes"],)], outs, []

    def infer_type(self, in_type):
        ins = [np.dtype(d).type for _, _, d in self.config["inputs"]]
        outs = [np.dtype(d).type for _, _, d in self.config["outputs"]]
        ignored = [np.dtype(d).type for _, _, d in self.ignored]
        return ins + ignored + [np.uint8], outs, []

    def create_operator(self, ctx, shapes, dtypes):
        return NeuronSubgraphOp(self.config, self.label)
