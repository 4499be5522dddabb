"""`mx_neuron.compile`: partition an MXNet Symbol (or a hybridizable Gluon block), compile the
supported regions for the NeuronCore, and return the rewritten symbol and its params."""
from __future__ import annotations

import difflib
import logging
from collections import Counter

import numpy as np

from neuron_core.bridge import compile_plan
from neuron_core.errors import NeuronError
from neuron_core.partition import OPTION_NAMES
from neuron_core.runtime.context import default

from ._mxnet import import_mxnet
from .capture import Captured, capture, to_core
from .estimate import measure_host, summary, with_host_ms
from .graph import rebuild

mx = import_mxnet()
log = logging.getLogger("Neuron")

#: compile_args keywords of the partitioner (no_fuse_ops is spelled excl_node_names here)
_PARTITION_KEYS = tuple(k for k in OPTION_NAMES if k != "no_fuse_ops")
_WORKDIR_KEYS = ("work_dir", "compiler_workdir", "workdir")   # work_dir: mx_neuron 1.8's name
_VALID_KEYS = (("excl_node_names", "flags", "compiler_args") + _WORKDIR_KEYS
               + ("--neuroncore-pipeline-cores", "neuroncore_pipeline_cores") + _PARTITION_KEYS)


def _to_numpy(value) -> np.ndarray:
    return value.asnumpy() if isinstance(value, mx.nd.NDArray) else np.asarray(value)


def _input_specs(inputs) -> tuple[dict, dict]:
    """`inputs` (name -> NDArray, array or shape) -> (shapes, dtypes)."""
    if not isinstance(inputs, dict) or not inputs:
        raise NeuronError(f"inputs must be a non-empty dict of input name -> NDArray or shape, got "
                          f"{type(inputs).__name__}: e.g. inputs={{'data': (1, 3, 224, 224)}}")
    shapes, dtypes = {}, {}
    for name, value in inputs.items():
        if isinstance(value, (tuple, list)) and all(isinstance(d, int) for d in value):
            shapes[name], dtypes[name] = tuple(value), np.float32
        elif hasattr(value, "shape") and hasattr(value, "dtype"):
            shapes[name], dtypes[name] = tuple(value.shape), np.dtype(value.dtype).type
        else:
            raise NeuronError(f"inputs[{name!r}] is a {type(value).__name__}; give an NDArray, a "
                              "numpy array or a shape tuple of ints")
        if not shapes[name] or any(d <= 0 for d in shapes[name]):
            raise NeuronError(f"inputs[{name!r}] has shape {shapes[name]!r}; every dimension must "
                              "be a positive int (MXNet symbols compile for one static shape)")
    return shapes, dtypes


def _compiler_args(opts: dict) -> list:
    flags = opts.pop("flags", None)
    extra = opts.pop("compiler_args", None)
    args: list = []
    for f in (flags, extra):
        if f is None:
            continue
        args += f.split() if isinstance(f, str) else [str(a) for a in f]
    cores = opts.pop("--neuroncore-pipeline-cores", None) or opts.pop("neuroncore_pipeline_cores",
                                                                        None)
    if cores is not None:
        args += ["--neuroncore-pipeline-cores", str(cores)]
    return args


def _excluded(cap: Captured, names) -> tuple:
    if names is None:
        return ()
    names = [names] if isinstance(names, str) else list(names)
    ops = [n.name for n in cap.nodes if not n.is_var]
    for name in names:
        if name not in ops:
            close = difflib.get_close_matches(name, ops, n=3)
            hint = f"; did you mean {', '.join(map(repr, close))}?" if close else ""
            raise NeuronError(f"excl_node_names names {name!r}, which is not an operator node of "
                              f"the symbol{hint}")
    return tuple(names)


def _log_native_counts(cv, plan) -> None:
    """The MXNet operators placed on Neuron and those left on MXNet, with counts."""
    placed = {r["name"]: r["placement"] for r in plan.report.nodes}
    where: dict = {}
    for node in plan.graph.nodes:
        name, op = cv.native_names.get(id(node), (node.name, node.op_type))
        on = placed.get(node.name) == "neuron"
        where[name] = (op, where.get(name, (op, True))[1] and on)
    on = Counter(op for op, ok in where.values() if ok)
    off = Counter(op for op, ok in where.values() if not ok)
    log.info("MXNet operators placed on Neuron: %s",
             ", ".join(f"{op}: {n}" for op, n in on.most_common()) or "none")
    if off:
        log.info("MXNet operators left on MXNet: %s",
                 ", ".join(f"{op}: {n}" for op, n in off.most_common()))


def compile_symbol(sym, args=None, aux=None, inputs=None, *, model_name=None, **compile_args):
    """Compile a Symbol; returns (compiled symbol, args, aux). See `mx_neuron.compile`;
    `model_name` (default: the symbol's name) names the model in its estimates."""
    if not isinstance(sym, mx.sym.Symbol):
        raise NeuronError(f"compile expects an mx.sym.Symbol or a Gluon HybridBlock, got "
                          f"{type(sym).__name__}")
    unknown = sorted(set(compile_args) - set(_VALID_KEYS))
    if unknown:
        raise NeuronError(f"unknown compile option(s) {unknown}; valid: {', '.join(_VALID_KEYS)}")
    args = dict(args or {})
    aux = dict(aux or {})
    shapes, dtypes = _input_specs(inputs)
    mx.nd.waitall()   # MKLDNN may still be reordering weights in place: read them settled
    params = {k: _to_numpy(v) for k, v in {**args, **aux}.items() if k not in shapes}
    missing = sorted(set(sym.list_inputs()) - set(params) - set(shapes))
    known = set(sym.list_inputs())
    stray = sorted(set(shapes) - known)
    if stray:
        raise NeuronError(f"inputs names {stray}, which are not inputs of the symbol; its inputs "
                          f"without params are {missing or 'none'}")
    unbound = [m for m in missing if not m.endswith("label")]   # labels: training inputs
    if unbound:
        raise NeuronError(f"symbol argument(s) {unbound} have no value: give them in `args`/`aux`"
                          f" (params) or in `inputs` (data)")
    cap = capture(sym, shapes, dtypes, {k: v.shape for k, v in params.items()},
                  {k: v.dtype.type for k, v in params.items()})
    opts = dict(compile_args)
    compiler_args = _compiler_args(opts)
    excluded = _excluded(cap, opts.pop("excl_node_names", None))
    given = [opts.pop(k) for k in _WORKDIR_KEYS if opts.get(k) is not None]
    if len(set(given)) > 1:
        raise NeuronError(f"compile got different work directories {given}; give one, as work_dir")
    workdir = given[0] if given else None
    cv = to_core(cap, params)
    plan = compile_plan(cv, compiler_args=compiler_args, workdir=workdir, no_fuse_ops=excluded,
                        **opts)
    _log_native_counts(cv, plan)
    graph_json, neffs = rebuild(cap, plan, params)
    out = mx.sym.load_json(graph_json)
    arg_names, aux_names = set(out.list_arguments()), set(out.list_auxiliary_states())
    new_args = {k: v for k, v in args.items() if k in arg_names}
    new_args.update({k: mx.nd.array(v, dtype=np.uint8) for k, v in neffs.items()})
    new_aux = {k: v for k, v in aux.items() if k in aux_names}
    new_args = {k: v if isinstance(v, mx.nd.NDArray) else mx.nd.array(v) for k, v in
                new_args.items()}
    new_aux = {k: v if isinstance(v, mx.nd.NDArray) else mx.nd.array(v) for k, v in
               new_aux.items()}
    out = with_host_ms(graph_json, measure_host(out, new_args, new_aux, inputs, shapes, dtypes),
                       model_name or sym.name or "model")
    log.info(summary(out, new_args))
    default().last_plans["mx_neuron"] = plan
    return out, new_args, new_aux


def last_plan():
    """The compile plan (report, sub-graphs, compile time) of this process's latest compile."""
    plan = default().last_plans.get("mx_neuron")
    if plan is None:
        raise NeuronError("nothing was compiled in this process yet; call mx_neuron.compile first")
    return plan


def analyze_symbol(sym, args=None, aux=None, inputs=None, **options) -> dict:
    """Which MXNet operators can run on Neuron, without compiling (keys as torch-neuron's
    analyze_model: percent_supported, percent_supported_arithmetic, unsupported_operators, ...)."""
    from neuron_core.bridge import analyze
    shapes, dtypes = _input_specs(inputs)
    mx.nd.waitall()   # see compile_symbol
    params = {k: _to_numpy(v) for k, v in {**(args or {}), **(aux or {})}.items()
              if k not in shapes}
    cap = capture(sym, shapes, dtypes, {k: v.shape for k, v in params.items()},
                  {k: v.dtype.type for k, v in params.items()})
    return analyze(to_core(cap, params), **options)
