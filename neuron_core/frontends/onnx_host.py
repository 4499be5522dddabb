"""ONNX nodes the importer cannot give to the op registry: ops it does not know, and known ops
whose shape parameters are computed at run time. ONNX shape inference of the node alone, on the
types the importer has found for its inputs (static once io-config pins the graph inputs), gives
their output types, so the ops after them keep static shapes; a node whose inputs are all
constants is evaluated by onnxruntime at import time, like any other foldable shape computation.
"""
from __future__ import annotations

import logging

import numpy as np
import onnx
from onnx import helper, numpy_helper

from ..errors import NeuronError
from ..ir import TensorType

log = logging.getLogger("Neuron")

#: constant inputs up to this many elements go into the one-node model as initializers, so that
#: inference can read shape parameters; larger ones (weights) go in by type only
SMALL_CONST = 1 << 12
#: folded results up to this many elements become constants (larger: the node runs on the host)
FOLD_LIMIT = 1 << 24
#: ops whose result is not a function of their inputs: never evaluated at import time
NONDETERMINISTIC = ("RandomNormal", "RandomNormalLike", "RandomUniform", "RandomUniformLike",
                    "Bernoulli", "Multinomial")


def onnx_type(type_proto, name: str) -> TensorType | None:
    """The TensorType of an ONNX type; unnamed unknown dims are named after `name` and their
    position, so that no two values share one by accident."""
    if not type_proto.HasField("tensor_type"):
        return None
    tt = type_proto.tensor_type
    if tt.elem_type == 0 or not tt.HasField("shape"):
        return None
    try:
        dtype = helper.tensor_dtype_to_np_dtype(tt.elem_type)
    except Exception:
        return None
    dims = []
    for i, d in enumerate(tt.shape.dim):
        if d.HasField("dim_value") and d.dim_value >= 0:
            dims.append(int(d.dim_value))
        else:
            dims.append(d.dim_param or f"{name}_d{i}")
    try:
        return TensorType(tuple(dims), dtype)
    except NeuronError:
        return None


def _has_subgraph(n) -> bool:
    return any(a.type in (onnx.AttributeProto.GRAPH, onnx.AttributeProto.GRAPHS)
               for a in n.attribute)


def _value_info(name: str, t: TensorType):
    return helper.make_tensor_value_info(name, helper.np_dtype_to_tensor_dtype(np.dtype(t.dtype)),
                                         list(t.shape))


def _one_node_model(n, inputs: list, opsets: list, all_consts: bool):
    graph_inputs, inits = [], []
    for name, v in zip(n.input, inputs):
        if v is None or name in {i.name for i in inits} | {i.name for i in graph_inputs}:
            continue
        if v.is_const and (all_consts or v.const.size <= SMALL_CONST):
            inits.append(numpy_helper.from_array(np.asarray(v.const), name))
        elif v.type is not None:
            graph_inputs.append(_value_info(name, v.type))
        else:
            return None
    outputs = [onnx.ValueInfoProto(name=o) for o in n.output if o]
    graph = helper.make_graph([n], "node", graph_inputs, outputs, inits)
    model = helper.make_model(graph, opset_imports=opsets)
    model.ir_version = min(model.ir_version, 10)
    return model


def inferred_types(n, inputs: list, opsets: list) -> dict:
    """Output name -> TensorType by ONNX shape inference of node `n` alone on its input types
    (symbolic dims where ONNX cannot tell a size); outputs it cannot type are left out."""
    model = _one_node_model(n, inputs, opsets, all_consts=False)
    if model is None or _has_subgraph(n):
        return {}
    try:
        inferred = onnx.shape_inference.infer_shapes(model, strict_mode=False, data_prop=True)
    except Exception:  # inference is best effort: the whole model's inference is the fallback
        return {}
    known = {d for v in inputs if v is not None and v.type is not None for d in v.type.shape
             if isinstance(d, str)}
    types = {}
    for vi in inferred.graph.output:
        t = onnx_type(vi.type, vi.name)
        if t is not None:  # a dim inference made up (unk__0) is this output's own
            types[vi.name] = TensorType(tuple(d if not isinstance(d, str) or d in known
                                              else f"{vi.name}_d{i}"
                                              for i, d in enumerate(t.shape)), t.dtype)
    return types


def evaluate(n, inputs: list, opsets: list, types: dict) -> list | None:
    """The outputs of node `n` whose inputs are all constants, computed by onnxruntime; None when
    it is not to be folded (a random op, a subgraph, an output too large or of unknown size)."""
    if n.op_type in NONDETERMINISTIC or _has_subgraph(n):
        return None
    if not all(v is None or v.is_const for v in inputs):
        return None
    outs = [o for o in n.output if o]
    for o in outs:
        t = types.get(o)
        if t is not None and t.is_static and t.numel > FOLD_LIMIT:
            return None
    model = _one_node_model(n, inputs, opsets, all_consts=True)
    import onnxruntime as ort
    try:
        sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
        arrays = sess.run(outs, {})
    except Exception as exc:  # then the host runs it, and says why if it cannot
        log.debug("ONNX node %r (%s) has only constant inputs but onnxruntime cannot evaluate it "
                  "at import time (%s); it stays a host node", n.name, n.op_type,
                  str(exc).splitlines()[0] if str(exc) else type(exc).__name__)
        return None
    if any(np.asarray(a).size > FOLD_LIMIT for a in arrays):
        return None
    return [np.asarray(a) for a in arrays]
