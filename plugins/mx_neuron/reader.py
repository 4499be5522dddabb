"""`neuron-cc compile NAME-symbol.json NAME-0000.params --framework MXNET --io-config ...`: an MXNet
checkpoint read into one core IR graph, through the same capture and conversion table as
`mx_neuron.compile`.

Input shapes come from --io-config, else from the shapes the symbol's variables carry
(`mx.sym.var("data", shape=(1, 1, 28, 28))`), as in the reference's example without --io-config.
Reading runs nothing from the files: the symbol is MXNet's graph JSON and the params file MXNet's
array format (no pickle). neuron-cc compiles the whole model for the NeuronCore, so every operator
must have a Neuron conversion; `mx_neuron.compile` is the way to leave some on MXNet.

    graph = read_checkpoint(["lenet-symbol.json", "lenet-0001.params"],
                            {"inputs": {"data": [[1, 1, 28, 28], "float32"]}})
"""
from __future__ import annotations

import re

import numpy as np

from neuron_core.errors import FrontendError, UnsupportedOpError
from neuron_core.ops.registry import has_op

from ._mxnet import import_mxnet
from .capture import capture, to_core

mx = import_mxnet()

_EXAMPLE = ("neuron-cc compile lenet-symbol.json lenet-0001.params --framework MXNET "
            "--io-config '{\"inputs\": {\"data\": [[1,1,28,28], \"float32\"]}}'")


def _files(paths: list[str]) -> tuple[str, str]:
    symbols = [p for p in paths if p.endswith(".json")]
    params = [p for p in paths if p.endswith(".params")]
    if len(symbols) != 1 or len(params) != 1 or len(paths) != 2:
        raise FrontendError(f"--framework MXNET takes a symbol file (.json) and a params file "
                            f"(.params), got {' '.join(paths)}; e.g. {_EXAMPLE}")
    return symbols[0], params[0]


def _load(symbol_file: str, params_file: str):
    try:
        sym = mx.sym.load(symbol_file)
        saved = mx.nd.load(params_file)
    except (mx.base.MXNetError, OSError) as exc:
        first = str(exc).strip().splitlines()[-1]
        raise FrontendError(f"cannot read the MXNet checkpoint {symbol_file} + {params_file}: "
                            f"{first}") from None
    if not isinstance(saved, dict):
        raise FrontendError(f"{params_file} holds an unnamed list of arrays; a checkpoint's params "
                            "file maps 'arg:NAME' / 'aux:NAME' to arrays (mx.model.save_checkpoint)")
    params = {k.split(":", 1)[1] if k.startswith(("arg:", "aux:")) else k: v.asnumpy()
              for k, v in saved.items()}
    return sym, params


def _declared(sym, free: list) -> dict:
    """The shapes (and dtypes) the symbol's free variables were declared with, as io-config
    entries; variables declared without a shape are left out."""
    attrs = sym.attr_dict()
    found = {}
    for name in free:
        shape = attrs.get(name, {}).get("__shape__")
        if shape and "0" not in re.findall(r"-?\d+", shape):
            dtype = mx.ndarray.ndarray._DTYPE_MX_TO_NP.get(int(attrs[name].get("__dtype__", 0)))
            found[name] = [[int(d) for d in re.findall(r"-?\d+", shape)],
                           np.dtype(dtype or np.float32).name]
    return found


def _inputs(sym, params: dict, io_config: dict | None) -> tuple[dict, dict]:
    free = [n for n in sym.list_inputs() if n not in params]
    given = dict((io_config or {}).get("inputs") or {}) or _declared(sym, free)
    if not given:
        raise FrontendError(f"the MXNet symbol's inputs carry no shapes: give them with "
                            f"--io-config (the symbol's inputs without params: {free}); e.g. "
                            f"{_EXAMPLE}")
    stray = sorted(set(given) - set(free))
    if stray:
        raise FrontendError(f"--io-config names input(s) {stray}, which the symbol does not take "
                            f"(or which are params); its inputs without params are {free}")
    shapes, dtypes = {}, {}
    for name, spec in given.items():
        try:
            shape, dtype = spec
            shapes[name], dtypes[name] = tuple(int(d) for d in shape), np.dtype(dtype).type
        except (TypeError, ValueError) as exc:
            raise FrontendError(f"--io-config entry for input {name!r} must be [shape, dtype] like "
                                f"[[1,1,28,28], \"float32\"], got {spec!r} ({exc})") from None
    unbound = [n for n in free if n not in shapes and not n.endswith("label")]
    if unbound:
        raise FrontendError(f"symbol input(s) {unbound} have no params and no --io-config entry; "
                            "give their shapes in --io-config")
    return shapes, dtypes


def _outputs(sym, names):
    if not names:
        return sym
    outs = sym.list_outputs()
    missing = [n for n in names if n not in outs]
    if missing:
        raise FrontendError(f"--io-config asks for output(s) {missing}, which the symbol does not "
                            f"compute; its outputs are {outs}")
    return mx.sym.Group([sym[outs.index(n)] for n in names]) if len(names) > 1 \
        else sym[outs.index(names[0])]


def read_checkpoint(paths: list[str], io_config: dict | None):
    """The MXNet checkpoint in `paths` (symbol .json and .params) as one core IR graph."""
    symbol_file, params_file = _files(paths)
    sym, params = _load(symbol_file, params_file)
    sym = _outputs(sym, (io_config or {}).get("outputs"))
    shapes, dtypes = _inputs(sym, params, io_config)
    used = set(sym.list_inputs())
    params = {k: v for k, v in params.items() if k in used}
    cap = capture(sym, shapes, dtypes, {k: v.shape for k, v in params.items()},
                  {k: v.dtype.type for k, v in params.items()})
    cv = to_core(cap, params, graph_name=sym.name or "mxnet")
    graph = cv.finish()
    # a label MXNet inferred a shape for is an input of the converted graph that nothing reads
    graph.inputs = [v for v in graph.inputs if v.name in shapes or v.users]
    unsupported = [(cv.native_names.get(id(n), (n.name, n.op_type)), n.attrs.get("reason", ""))
                   for n in graph.nodes if not has_op(n.op_type)]
    if unsupported:
        listed = "; ".join(f"{op} (node {name!r}): {why}" for (name, op), why in unsupported[:10])
        raise UnsupportedOpError(f"neuron-cc compiles the whole model for the NeuronCore, and "
                                 f"{len(unsupported)} MXNet operator(s) have no Neuron conversion: "
                                 f"{listed}. Compile from Python with mx_neuron.compile(sym, args, "
                                 "aux, inputs) to leave them on MXNet; supported operators: "
                                 "neuron-cc list-operators --framework MXNET")
    return graph
