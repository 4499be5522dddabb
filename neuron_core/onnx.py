"""ONNX models with host fallback: supported parts on the simulated NeuronCore, the rest on
onnxruntime.

    compiled = neuron_core.onnx.compile("model.onnx")
    print(compiled.report)
    y, = compiled.run({"input": x})
    compiled.save("model.neuron.onnx")
    again = neuron_core.onnx.load("model.neuron.onnx")     # in any process

The saved file is an ONNX model in which every compiled subgraph is one `NeuronOp` node (domain
`ai.neuron`) carrying its NEFF as bytes; loading parses protobuf and verifies each NEFF, and never
executes code from the file.
"""
from __future__ import annotations

import json
import logging
import os
import threading
import time

import numpy as np
import onnx as _onnx
from onnx import helper, numpy_helper

from .compiler import parse_compiler_args
from .errors import BadInputError, FrontendError, NeffFormatError, NeuronError, RuntimeStatusError
from .fileio import atomic_write, check_destination
from .estimate import estimate_neffs, measure_host_ms, summary_line
from .frontends.onnx_import import from_onnx, load_model
from .partition import PartitionReport, Subgraph, partition
from .runtime.profile import ENV_PROFILE, build_trace, request_trace, write_profile

log = logging.getLogger("Neuron")

DOMAIN = "ai.neuron"
NEURON_OP = "NeuronOp"
FORMAT = "neuron-sim-onnx-1"


def _damaged(what: str) -> NeffFormatError:
    return NeffFormatError(f"the compiled ONNX model is damaged: {what}; compile it again")


def _dtype_of(vi) -> np.dtype:
    from . import dtypes
    elem = vi.type.tensor_type.elem_type
    if elem not in dtypes.ONNX_DTYPES:
        raise _damaged(f"value {vi.name!r} has ONNX element type {elem}, which is not one of "
                       f"{sorted(dtypes.ONNX_DTYPES)}")
    return dtypes.to_numpy(dtypes.ONNX_DTYPES[elem])


def _shape_of(vi) -> tuple:
    """The value's shape, None for a symbolic dimension (only the onnxruntime part has those)."""
    dims = vi.type.tensor_type.shape.dim
    if any(d.HasField("dim_value") and d.dim_value < 0 for d in dims):
        raise _damaged(f"value {vi.name!r} has shape {[d.dim_param or d.dim_value for d in dims]}")
    return tuple(d.dim_value if d.HasField("dim_value") else None for d in dims)


def _fits(shape: tuple, declared: tuple) -> bool:
    return len(shape) == len(declared) and all(d is None or d == n
                                               for n, d in zip(shape, declared))


def _neff_of(node) -> bytes:
    found = [a for a in node.attribute if a.name == "neff"]
    if len(found) != 1 or found[0].type != _onnx.AttributeProto.STRING:
        raise _damaged(f"node {node.name!r} ({NEURON_OP}) has no 'neff' string attribute")
    return found[0].s


def _check_graph(proto) -> dict:
    """The structure of a saved model, before anything is loaded from it: a valid ONNX graph
    (topologically sorted, every value defined), a known element type and static shape for every
    graph input and typed value, and a JSON report; returns the partition report's dict."""
    from onnx.checker import ValidationError
    try:
        _onnx.checker.check_model(proto)
    except ValidationError as exc:
        raise _damaged(" ".join(str(exc).split())[:300]) from None
    except UnicodeDecodeError as exc:
        raise _damaged(f"a string in it is not UTF-8 ({exc})") from None
    g = proto.graph
    for vi in list(g.input) + list(g.output) + list(g.value_info):
        _dtype_of(vi), _shape_of(vi)
    text = {p.key: p.value for p in proto.metadata_props}.get("neuron.report", "{}")
    try:
        report = json.loads(text)
    except (ValueError, RecursionError) as exc:
        raise _damaged(f"its neuron.report is not JSON ({exc})") from None
    if not isinstance(report, dict):
        raise _damaged("its neuron.report is not a JSON object")
    return report


def _check_neuron_node(node, model, types: dict) -> None:
    """A NeuronOp node's inputs and outputs are its NEFF's, in number, dtype and shape."""
    for side, names, declared in (("inputs", node.input, model.inputs),
                                  ("outputs", node.output, model.outputs)):
        if len(names) != len(declared):
            raise _damaged(f"node {node.name!r} has {len(names)} {side}, its NEFF {len(declared)}")
        for name, (_, shape, dtype) in zip(names, declared):
            vi = types.get(name)
            if vi is None:
                raise _damaged(f"value {name!r} of node {node.name!r} has no type")
            if (_shape_of(vi), _dtype_of(vi).name) != (tuple(shape), dtype):
                raise _damaged(f"value {name!r} is {_dtype_of(vi).name}{list(_shape_of(vi))} but "
                               f"node {node.name!r}'s NEFF has {dtype}{list(shape)}")


class CompiledModel:
    """An ONNX model split between the NeuronCore and onnxruntime. Call `run(feed)`."""

    def __init__(self, proto: _onnx.ModelProto, precision: str | None = None):
        import onnxruntime as ort
        from . import runtime
        self.proto = proto
        try:
            meta = {p.key: p.value for p in proto.metadata_props}
        except UnicodeDecodeError as exc:
            raise _damaged(f"a string in its metadata is not UTF-8 ({exc})") from None
        if meta.get("neuron.format") != FORMAT:
            raise NeuronError("this ONNX file was not written by neuron_core.onnx.compile(...).save"
                              f" (neuron.format is {meta.get('neuron.format')!r}); compile it first")
        self._report = _check_graph(proto)
        g = proto.graph
        inits = {t.name: t for t in g.initializer}
        self.inputs = [(vi.name, _shape_of(vi), _dtype_of(vi)) for vi in g.input
                       if vi.name not in inits]
        self.output_names = [o.name for o in g.output]
        types = {vi.name: vi for vi in list(g.value_info) + list(g.input) + list(g.output)}
        opsets = [o for o in proto.opset_import if o.domain != DOMAIN]
        self.steps = []
        self.neffs: list[bytes] = []
        self.last_host_ms: float | None = None   # onnxruntime time of the last run
        self._host_seconds = 0.0   # onnxruntime time of every run, summed
        self._lock = threading.Lock()
        run: list = []

        def flush():
            if run:
                self.steps.append(("host", _host_session(run, inits, types, opsets, ort), run[:]))
                run.clear()
        try:
            for node in g.node:
                if node.domain == DOMAIN and node.op_type == NEURON_OP:
                    flush()
                    neff = _neff_of(node)
                    self.neffs.append(neff)
                    self.steps.append(("neuron", runtime.load(neff, precision=precision), node))
                    _check_neuron_node(node, self.steps[-1][1], types)
                else:
                    run.append(node)
            flush()
        except BaseException:
            self.unload()       # a failed load gives back what it had loaded
            raise

    @property
    def report(self) -> PartitionReport:
        """The partition report recorded at compile time: print it, or .to_json(), .to_dot()."""
        return PartitionReport.from_dict(self._report)

    def run(self, feed) -> list:
        """`feed`: one array, a list in declared order, or a name -> array dict. Returns outputs."""
        names = [n for n, _, _ in self.inputs]
        if isinstance(feed, np.ndarray):
            feed = [feed]
        if not isinstance(feed, dict):
            feed = list(feed)
            if len(feed) != len(names):
                raise BadInputError(f"model takes {len(names)} inputs ({', '.join(names)}), got "
                                    f"{len(feed)}")
            feed = dict(zip(names, feed))
        missing = [n for n in names if n not in feed]
        unknown = [k for k in feed if k not in names]
        if missing or unknown:
            raise BadInputError(f"inputs by name do not match the model: missing {missing}, "
                                f"unknown {unknown}; the model's inputs are {names}")
        for name, shape, dtype in self.inputs:
            arr = feed[name]
            if not isinstance(arr, np.ndarray) or not _fits(arr.shape, shape) or \
                    arr.dtype != dtype:
                got = (f"{arr.dtype.name}{list(arr.shape)}" if isinstance(arr, np.ndarray)
                       else type(arr).__name__)
                want = [d if d is not None else "?" for d in shape]
                raise BadInputError(f"input {name!r} must be a {dtype.name}{want} array, "
                                    f"got {got}")
        env = dict(feed)
        host = 0.0
        profile_dir = os.environ.get(ENV_PROFILE)
        parts: list = []
        for kind, engine, node in self.steps:
            if kind == "neuron":
                outs = engine.run([env[i] for i in node.input])
                env.update(zip(node.output, outs))
                if profile_dir:
                    parts.append(build_trace(engine.program, engine.timeline(),
                                             model=engine.name, core=engine.core))
            else:
                sess, wanted = engine
                feeds = {i.name: env[i.name] for i in sess.get_inputs()}
                started = time.perf_counter()
                env.update(zip(wanted, _run_host(sess, wanted, feeds, node)))
                seconds = time.perf_counter() - started
                host += seconds
                if profile_dir:
                    parts.append(("host", _node_names(node),
                                  "+".join(dict.fromkeys(n.op_type for n in node)), seconds))
        self.last_host_ms = 1e3 * host
        with self._lock:
            self._host_seconds += host
        if profile_dir:
            self._write_request_profile(profile_dir, parts)
        return [env[n] for n in self.output_names]

    def _write_request_profile(self, directory: str, parts: list) -> None:
        name = f"{self.proto.graph.name or 'model'}-request"
        try:
            write_profile(directory, request_trace(parts, model=name), name)
        except OSError as exc:
            raise NeuronError(f"{ENV_PROFILE}={directory!r}: cannot write the profile: {exc}; "
                              "point it at a writable directory or unset it") from None

    def estimate(self, instance: str | None = None, cores: int | None = None,
                 batch_size: int | None = None, host_ms: float | None = None):
        """Latency P50 and throughput on Inf1 sizes: the Neuron subgraphs from the timing model,
        the onnxruntime parts from their measured time (of the last run; else of runs on zeros,
        see `neuron_core.estimate.measure_host_ms`), shown apart. See
        `neuron_core.estimate.estimate_neffs`."""
        if host_ms is None:
            host_ms = self._measured_host_ms()
        name = self.proto.graph.name or "model"
        return estimate_neffs(self.neffs, host_ms=host_ms, name=name, instance=instance,
                              cores=cores, batch_size=batch_size)

    def _measured_host_ms(self) -> float:
        if not any(kind == "host" for kind, _, _ in self.steps):
            return 0.0
        if self.last_host_ms is None:
            zeros = {n: np.zeros([x or 1 for x in s], d) for n, s, d in self.inputs}
            try:
                with np.errstate(all="ignore"):
                    measured = measure_host_ms(lambda: self.run(zeros),
                                               host_seconds=lambda: self._host_seconds)
            except Exception as exc:  # only the estimate's host part is at stake
                log.warning("could not time the onnxruntime part on zero inputs (%s: %s); the "
                            "estimate counts no host time until the model has run once",
                            type(exc).__name__, str(exc).splitlines()[0] if str(exc) else "")
                self.last_host_ms = None
                return 0.0
            self.last_host_ms = measured
        return self.last_host_ms

    def save(self, path, *, overwrite: bool = False) -> None:
        """Write the compiled model (an ONNX file with embedded NEFFs) to `path`, atomically. An
        existing file is replaced only if it is a model saved here, or with overwrite=True."""
        check_destination(path, _is_saved_model, overwrite=overwrite,
                          what="a compiled model saved by neuron_core.onnx")
        atomic_write(path, self.proto.SerializeToString())

    def unload(self) -> None:
        for kind, engine, _ in self.steps:
            if kind == "neuron":
                engine.unload()


def _node_names(nodes) -> str:
    """The nodes' names (or op types) for a message; a damaged file may hold non-UTF-8 bytes."""
    return ", ".join(str(n.name or n.op_type) for n in nodes)


def _run_host(sess, wanted: list, feeds: dict, nodes) -> list:
    try:
        return sess.run(wanted, feeds)
    except Exception as exc:   # onnxruntime's own error types
        raise RuntimeStatusError(f"the onnxruntime part ({_node_names(nodes)}) failed: "
                                 f"{str(exc).strip()[:500]}") from None


def _host_session(nodes, inits, types, opsets, ort):
    """One onnxruntime session for a run of consecutive host nodes (NeffFormatError when the
    file's nodes do not make one)."""
    produced = {o for n in nodes for o in n.output}
    needed, used_inits = [], []
    for n in nodes:
        for i in n.input:
            if not i or i in produced or i in needed or i in used_inits:
                continue
            (used_inits if i in inits else needed).append(i)
    outputs = [o for n in nodes for o in n.output if o]
    untyped = [i for i in needed if i not in types]
    if untyped:
        raise _damaged(f"values {untyped} read by its onnxruntime part have no type")
    graph = helper.make_graph(list(nodes), "host", [types[i] for i in needed],
                              [types.get(o) or _onnx.ValueInfoProto(name=o) for o in outputs],
                              [inits[i] for i in used_inits])
    model = helper.make_model(graph, opset_imports=opsets)
    model.ir_version = min(model.ir_version, 10)
    try:
        sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    except Exception as exc:   # onnxruntime's own error types
        raise _damaged(f"its onnxruntime part ({_node_names(nodes)}) does not load: "
                       f"{str(exc).strip()[:500]}") from None
    return sess, outputs


def _value_info(v):
    return helper.make_tensor_value_info(v.name, helper.np_dtype_to_tensor_dtype(
        np.dtype(v.type.dtype)), list(v.type.shape))


def compile(model, io_config: dict | None = None, *, compiler_args=None,
            precision: str | None = None, **options) -> CompiledModel:
    """Partition an ONNX model, compile its supported subgraphs, keep the rest for onnxruntime.

    Args:
        model: path, bytes or onnx.ModelProto.
        io_config: {"inputs": {name: [shape, dtype]}, "outputs": [...]} to fix dynamic shapes.
        compiler_args: neuron-cc options, e.g. ["--fast-math", "fp32-cast-matmult"].
        precision: "hardware" (default) or "fp32" for the simulated NeuronCore.
        **options: PartitionOptions fields (minimum_segment_size, no_fuse_ops, force_fuse_ops,
            subgraph_builder_function, single_fusion_ratio_threshold, fallback, cost_aware, and
            costs: a TransferCosts).

    Example:
        >>> compiled = compile("model.onnx", minimum_segment_size=3)   # doctest: +SKIP
    """
    from .bridge.plan import compile_subgraphs, partition_options
    from .runtime.executor import resolve_precision
    precision = resolve_precision(precision)     # checked now, not at the first subgraph's load
    proto = load_model(model)
    costs = options.pop("costs", None)   # the cost-aware filter's constants, a TransferCosts
    popts = partition_options(options)
    if costs is not None:
        popts.costs = costs
    copts = parse_compiler_args(compiler_args)
    graph = from_onnx(proto, io_config)
    part = partition(graph, popts)
    neffs = {sub.index: compiled.to_bytes()
             for sub, _, compiled in compile_subgraphs(part, copts, "ONNX")}
    inits = {t.name: t for t in proto.graph.initializer}
    nodes, extra_inits, crossing = [], {}, {}
    for unit in part.units:
        if isinstance(unit, Subgraph):
            nodes.append(helper.make_node(
                NEURON_OP, [v.name for v in unit.inputs], [v.name for v in unit.outputs],
                name=f"neuron_subgraph_{unit.index}", domain=DOMAIN, neff=neffs[unit.index]))
            for v in unit.inputs + unit.outputs:
                crossing[v.name] = v
            continue
        if unit.native is None:
            raise FrontendError(f"node %{unit.name} ({unit.op_type}) must run on the host but has "
                                "no ONNX form; report this model")
        nodes.append(unit.native)
        for name in unit.native.input:
            v = graph.values.get(name)
            if name and name not in inits and v is not None and v.is_const:
                extra_inits[name] = numpy_helper.from_array(np.asarray(v.const), name)
            elif v is not None and v.type is not None and not v.is_const:
                crossing[name] = v
        for name in unit.native.output:
            v = graph.values.get(name)
            if v is not None and v.type is not None:
                crossing[name] = v
    used = {i for n in nodes for i in n.input}
    g = proto.graph
    inputs = [_value_info(v) for v in graph.inputs]
    outputs = [_value_info(v) for v in graph.outputs]
    value_info = [_value_info(v) for name, v in crossing.items()
                  if v not in graph.inputs and v not in graph.outputs]
    initializers = [t for t in g.initializer if t.name in used] + list(extra_inits.values())
    new_graph = helper.make_graph(nodes, g.name or "main", inputs, outputs, initializers,
                                  value_info=value_info)
    opsets = [o for o in proto.opset_import if o.domain != DOMAIN]
    new = helper.make_model(new_graph, opset_imports=opsets + [helper.make_opsetid(DOMAIN, 1)])
    new.ir_version = proto.ir_version
    helper.set_model_props(new, {"neuron.format": FORMAT,
                                 "neuron.report": json.dumps(part.report.to_dict())})
    compiled = CompiledModel(new, precision)
    log.info(summary_line(compiled.estimate(instance="inf1.xlarge"), "compiled.estimate()",
                          host="onnxruntime"))
    return compiled


def _is_saved_model(path) -> bool:
    """Whether `path` parses fully as a model written by `CompiledModel.save`: ONNX with our
    format mark, every embedded NEFF readable."""
    from .neff import read_neff
    proto = load_model(os.fspath(path))
    for node in proto.graph.node:
        if node.domain == DOMAIN:
            read_neff(_neff_of(node))
    return {p.key: p.value for p in proto.metadata_props}.get("neuron.format") == FORMAT


def load(path, precision: str | None = None) -> CompiledModel:
    """Load a model saved by `CompiledModel.save`, in any process."""
    return CompiledModel(load_model(path), precision)
