"""The ONNX importer: ModelProto -> core IR, with every initializer-computable value folded.
(`neuron_core.onnx` is another thing: ONNX models compiled with host fallback.)

    graph = from_onnx("model.onnx", io_config={"inputs": {"x": [[1, 3, 224, 224], "float32"]}})

Older opsets are rewritten into the latest form (onnx_upgrade). Shapes come from the op registry;
nodes the host must run (ops the registry does not know, shape parameters computed at run time)
are typed by ONNX shape inference on their inputs' types, and folded when their inputs are all
constants (onnx_host).
"""
from __future__ import annotations

import json
import logging
import os
from pathlib import Path

import numpy as np
import onnx
from onnx import helper, numpy_helper

from ..compiler.fold import add_folded
from ..errors import FrontendError, NeuronError, ShapeInferenceError
from ..ir import Graph, TensorType, format_node, verify
from ..ops import has_op, infer_node, shape_params_at_run_time
from .onnx_host import evaluate, inferred_types, onnx_type
from .onnx_upgrade import upgrade

log = logging.getLogger("Neuron")


def load_model(model) -> onnx.ModelProto:
    """A ModelProto from a path, bytes or a ModelProto; a clear FrontendError otherwise."""
    if isinstance(model, onnx.ModelProto):
        return model
    if isinstance(model, (bytes, bytearray)):
        try:
            return onnx.load_from_string(bytes(model))
        except Exception as exc:
            raise FrontendError(f"bytes given are not an ONNX model: {exc}") from None
    path = Path(os.fspath(model))
    if path.is_dir():
        raise FrontendError(f"model file {str(path)!r} is a directory; give the .onnx file in it")
    if not path.is_file():
        raise FrontendError(f"model file {str(path)!r} does not exist")
    try:
        proto = onnx.load(str(path))
    except Exception as exc:  # protobuf raises DecodeError and friends
        raise FrontendError(f"{str(path)!r} is not a readable ONNX model "
                            f"({type(exc).__name__}: {exc})") from None
    if not proto.graph.node and not proto.graph.output:
        raise FrontendError(f"{str(path)!r} holds no ONNX graph (empty or not an ONNX file)")
    return proto


def _attr(a):
    value = helper.get_attribute_value(a)
    if a.type == onnx.AttributeProto.TENSOR:
        return numpy_helper.to_array(value)
    if a.type in (onnx.AttributeProto.GRAPH, onnx.AttributeProto.GRAPHS):
        return "<subgraph>"
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    if isinstance(value, list):
        return [v.decode() if isinstance(v, bytes) else v for v in value]
    return value


def match_name(name: str, table: dict):
    """Look `name` up in `table` allowing TensorFlow-style ':0' suffixes on either side."""
    for key in (name, f"{name}:0", name[:-2] if name.endswith(":0") else None):
        if key is not None and key in table:
            return table[key]
    return None


def _io_type(name: str, spec) -> TensorType:
    try:
        shape, dtype = spec
        if isinstance(shape, (str, bytes)) or not all(
                isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in shape):
            raise ValueError("the shape must be a list of non-negative integers")
        return TensorType(tuple(shape), dtype)
    except (TypeError, ValueError, NeuronError) as exc:
        raise FrontendError(f"io-config entry for input {name!r} must be [shape, dtype] like "
                            f"[[1,3,224,224], \"float32\"], got {spec!r} ({exc})") from None


class _ModelFacts:
    """What converting a node needs to know of the whole model: its opsets, and (computed on
    first use: inference copies the whole model, weights included) the types ONNX shape
    inference gives its values."""

    def __init__(self, proto):
        self.proto = proto
        self.opsets = list(proto.opset_import)
        self.opset = next((imp.version for imp in self.opsets if imp.domain in ("", "ai.onnx")),
                          1)
        self._types = None

    def whole_model_types(self) -> dict:
        if self._types is None:
            self._types = _onnx_inferred_types(self.proto)
        return self._types


def _onnx_inferred_types(proto) -> dict:
    """Types from ONNX shape inference of the whole model."""
    try:
        inferred = onnx.shape_inference.infer_shapes(proto)
    except Exception:  # inference is best effort: the registry's own inference comes first
        inferred = proto
    types = {}
    for vi in list(inferred.graph.value_info) + list(inferred.graph.output):
        t = onnx_type(vi.type, vi.name)
        if t is not None:
            types[vi.name] = t
    return types


def _toposorted(nodes, available: set):
    """ONNX nodes in an order where every input is defined first (exporters do not always sort)."""
    pending, order = list(nodes), []
    while pending:
        rest = []
        for n in pending:
            if all(i == "" or i in available for i in n.input):
                order.append(n)
                available.update(n.output)
            else:
                rest.append(n)
        if len(rest) == len(pending):
            missing = sorted({i for n in rest for i in n.input if i and i not in available})
            raise FrontendError(f"ONNX graph has nodes whose inputs are never defined: "
                                f"{missing[:10]} (or the graph has a cycle)")
        pending = rest
    return order


def from_onnx(model, io_config: dict | None = None, *, fold: bool = True) -> Graph:
    """Convert an ONNX model (path, bytes or ModelProto) to the core IR."""
    proto = load_model(model)
    facts = _ModelFacts(proto)
    opset = facts.opset
    if opset < 9:
        log.warning("ONNX opset %d predates the supported opsets (9 to current); ops whose "
                    "semantics changed since may be read wrongly. Convert it with "
                    "onnx.version_converter.convert_version(model, 13)", opset)
    io_inputs = dict((io_config or {}).get("inputs", {}))

    g = Graph(proto.graph.name or "main")
    env = {}
    for init in proto.graph.initializer:
        env[init.name] = g.add_const(init.name, numpy_helper.to_array(init))
    for vi in proto.graph.input:
        if vi.name in env:
            continue
        spec = match_name(vi.name, io_inputs)
        t = _io_type(vi.name, spec) if spec is not None else onnx_type(vi.type, vi.name)
        if t is None:
            raise FrontendError(f"graph input {vi.name!r} has no tensor type; give it in io-config: "
                                f"{{\"inputs\": {{\"{vi.name}\": [[1, 3, 224, 224], \"float32\"]}}}}")
        env[vi.name] = g.add_input(vi.name, t)
    unknown = [k for k in io_inputs if match_name(k, {v.name: 1 for v in g.inputs}) is None]
    if unknown:
        raise FrontendError(f"io-config names inputs {unknown} that the model does not have; its "
                            f"inputs are {[v.name for v in g.inputs]}")

    for n in _toposorted(proto.graph.node, set(env)):
        _convert_node(g, env, n, facts, fold)

    wanted = (io_config or {}).get("outputs")
    out_names = [o.name for o in proto.graph.output]
    if wanted:
        missing = [w for w in wanted if match_name(w, env) is None]
        if missing:
            raise FrontendError(f"io-config asks for outputs {missing} that the model does not "
                                f"compute; its outputs are {out_names}")
        out_names = wanted
    g.outputs = [match_name(name, env) for name in out_names]
    g.prune()
    verify(g)
    return g


def _convert_node(g: Graph, env: dict, n, model: _ModelFacts, fold: bool) -> None:
    if n.domain not in ("", "ai.onnx"):
        op_type = f"{n.domain}::{n.op_type}"
    else:
        op_type = n.op_type
    attrs = {a.name: _attr(a) for a in n.attribute}
    native_inputs = [env[i] if i else None for i in n.input]
    op_type, inputs, attrs = upgrade(op_type, attrs, list(native_inputs), model.opset, g)
    coerce = attrs.pop("_coerce_2d", False)
    name = n.name or f"{n.op_type.lower()}"
    if not has_op(op_type) or shape_params_at_run_time(op_type, inputs):
        return _host_node(g, env, n, (op_type, inputs, attrs, name), native_inputs, model, fold)
    if coerce:
        inputs = _expand_coerce_2d(g, op_type, inputs, attrs, name)
        if inputs is None:  # the expansion produced the node already
            return _bind(env, n, g.nodes[-1].outputs)
    try:
        add_folded(g, op_type, inputs, attrs, fold=fold, name=name, outputs=list(n.output),
                   native=n)
    except ShapeInferenceError as exc:
        raise FrontendError(f"ONNX node {n.name!r}: {exc}{_pin_hint(g)}") from None
    _bind(env, n, [g.values[o] for o in n.output if o in g.values])


def _pin_hint(g: Graph) -> str:
    """What to do when shapes fail to follow from dynamic input dims: pin them."""
    dynamic = [f"%{v.name}: {v.type}" for v in g.inputs if not v.type.is_static]
    if not dynamic:
        return ""
    example = {"inputs": {v.name: [[d if isinstance(d, int) else 1 for d in v.type.shape],
                                   str(v.type.dtype)] for v in g.inputs}}
    return (f"; the model's inputs have dynamic dims ({', '.join(dynamic)}): pin them with "
            f"io-config, e.g. neuron-cc --io-config '{json.dumps(example)}' (your sizes for the 1s)")


def _host_node(g: Graph, env: dict, n, node: tuple, native_inputs: list, model: _ModelFacts,
               fold: bool) -> None:
    """A node only the host can run: folded when its inputs are all constants, else added with the
    output types ONNX inference gives it on its inputs' types (the whole model's inference where
    the node alone tells nothing: ops of other domains)."""
    op_type, inputs, attrs, name = node
    types = inferred_types(n, native_inputs, model.opsets)
    if fold and n.domain in ("", "ai.onnx"):
        arrays = evaluate(n, native_inputs, model.opsets, types)
        if arrays is not None:
            return _bind(env, n, [g.add_const(o, a) for o, a in zip(n.output, arrays)])
    added = g.add_node(op_type, inputs, attrs, name=name, outputs=list(n.output), native=n)
    for out in added.outputs:
        out.type = types.get(out.name) or model.whole_model_types().get(out.name)
    _bind(env, n, [g.values[o] for o in n.output if o in g.values])


def _bind(env, n, values) -> None:
    for name, value in zip([o for o in n.output if o], values):
        env[name] = value


def _expand_coerce_2d(g, op_type, inputs, attrs, name):
    """Old Softmax semantics: flatten to 2-D at `axis`, apply on the last axis, reshape back."""
    x = inputs[0]
    rank = x.type.rank
    axis = attrs.get("axis", 1) % rank if rank else 0
    if axis == rank - 1:
        attrs["axis"] = -1
        return inputs
    if not x.type.is_static:
        raise FrontendError(f"{op_type} {name!r}: opset<13 semantics on axis {axis} need a static "
                            f"input shape, got {x.type}; fix it with io-config")
    flat = g.add_node("Flatten", [x], {"axis": axis}, name=f"{name}_flatten")
    infer_node(flat)
    sm = g.add_node(op_type, flat.outputs, {"axis": -1}, name=f"{name}_2d")
    infer_node(sm)
    shape = g.add_const(f"{name}_shape", np.asarray(x.type.shape, np.int64))
    back = g.add_node("Reshape", [sm.outputs[0], shape], name=name)
    infer_node(back)
    return None
