"""Graph capture: a concrete function (a SavedModel signature, a Keras model, a tf.function) ->
a frozen GraphDef with static shapes -> the core IR through the conversion table.

Variables are frozen into constants (`convert_variables_to_constants_v2`, which also inlines the
nested function calls), and the function is retraced with fully static input shapes, so shape
arithmetic (Shape -> StridedSlice -> Pack -> Reshape) folds to constants during conversion.
"""
from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass, field

import tensorflow as tf
from tensorflow.python.framework import tensor_util
from tensorflow.python.framework import convert_to_constants as _c2c

from neuron_core.errors import NeuronError

from .convert import TABLE, TFConverter
from .convert._util import has_nchw

log = logging.getLogger("Neuron")

#: TF ops that hold data or structure, not computation (not counted as operations)
STRUCTURAL = frozenset({"Placeholder", "Const", "NoOp", "Identity", "IdentityN"})


@dataclass
class Captured:
    """A frozen graph and how the function's arguments and results map onto its tensors."""

    graph_def: object                       # tf.compat.v1.GraphDef
    graph: object                           # the tf.Graph it was imported into
    inputs: list                            # [(argument name, tensor name, shape, tf.DType)]
    outputs: list                           # [tensor name] in flattened output order
    output_structure: object = None         # nest structure of the function's outputs
    output_keys: list = field(default_factory=list)   # names of the outputs (signatures)

    def count_ops(self) -> int:
        return sum(1 for n in self.graph_def.node if n.op not in STRUCTURAL)


def static_specs(specs: dict, batch_size: int, shape_feed: dict | None, where: str) -> dict:
    """name -> TensorSpec with every dimension known: None batch -> batch_size, the rest from
    `shape_feed` (name -> shape)."""
    out = {}
    shape_feed = shape_feed or {}
    for name, spec in specs.items():
        given = shape_feed.get(name, shape_feed.get(f"{name}:0"))
        dims = list(given) if given is not None else list(spec.shape)
        if given is None and dims and dims[0] is None:
            dims[0] = batch_size
        if any(d is None for d in dims):
            raise NeuronError(f"{where}: input {name!r} has shape {tuple(spec.shape)} with unknown "
                              "dimensions besides the batch; give its shape in "
                              f"model_shape_feed_dict={{{name!r}: [...]}}")
        if not tf.TensorShape(dims).is_compatible_with(spec.shape):
            raise NeuronError(f"{where}: shape {tuple(dims)} given for input {name!r} does not "
                              f"fit its signature shape {tuple(spec.shape)}")
        out[name] = tf.TensorSpec(dims, spec.dtype, name=name)
    return out


def freeze(concrete, arg_names: list, output_keys: list | None = None) -> Captured:
    """Freeze a concrete function whose flattened inputs are named `arg_names`."""
    try:
        gd, in_names, out_names = _frozen_graph_def(concrete)
    except Exception as exc:   # TF raises many types here; name the step that failed
        raise NeuronError(f"freezing the function's variables failed: {type(exc).__name__}: "
                          f"{exc}") from exc
    for node in gd.node:
        # control edges order stateful ops in training graphs; an inference graph frozen to
        # constants needs none, and keeping them would pin compiled ops on the host
        kept = [i for i in node.input if not i.startswith("^")]
        del node.input[:]
        node.input.extend(kept)
        if "_class" in node.attr:   # colocation with nodes inlining removed
            del node.attr["_class"]
    graph = tf.Graph()
    with graph.as_default():
        tf.graph_util.import_graph_def(gd, name="")
    inputs = []
    for name, tensor in zip(arg_names, in_names):
        t = graph.get_tensor_by_name(tensor)
        inputs.append((name, tensor, tuple(t.shape.as_list()), t.dtype))
    return Captured(gd, graph, inputs, out_names, concrete.structured_outputs, output_keys or [])


def _frozen_graph_def(concrete) -> tuple:
    """(GraphDef with variables as constants, input tensor names, output tensor names).

    The converter's GraphDef is used directly: `convert_variables_to_constants_v2` would also build
    a new concrete function from it, which takes longer than the freezing itself."""
    data = _c2c._FunctionConverterDataInEager(func=concrete, lower_control_flow=True,  # noqa
                                               aggressive_inlining=False)
    gd, converted = _c2c._replace_variables_by_constants(converter_data=data)  # noqa: SLF001
    captures = concrete.graph.internal_captures
    frozen_ids = {id(captures[i]) for i in converted}
    ins = [t.name for t in concrete.inputs if id(t) not in frozen_ids]
    return gd, ins, [t.name for t in concrete.outputs]


def _topo(graph) -> list:
    ops = graph.get_operations()
    indeg = {op: len({t.op for t in op.inputs}) for op in ops}
    users: dict = {}
    for op in ops:
        for src in {t.op for t in op.inputs}:
            users.setdefault(src, []).append(op)
    ready = [op for op in ops if indeg[op] == 0]
    order = []
    while ready:
        op = ready.pop()
        order.append(op)
        for u in users.get(op, ()):
            indeg[u] -= 1
            if indeg[u] == 0:
                ready.append(u)
    if len(order) != len(ops):
        raise NeuronError("the frozen graph has a cycle (control flow such as tf.while_loop "
                          "compiled as v1 loops); it cannot be partitioned")
    return order


def _type(t):
    if not t.shape.is_fully_defined() or t.dtype in (tf.string, tf.resource, tf.variant):
        return None
    return tuple(t.shape.as_list()), t.dtype.as_numpy_dtype


def to_core(cap: Captured, name: str = "tf_graph") -> TFConverter:
    """Convert the captured graph; returns the converter (graph outputs set)."""
    cv = TFConverter(TABLE, name)
    placeholders = {tensor for _, tensor, _, _ in cap.inputs}
    for op in _topo(cap.graph):
        keys = [t.name for t in op.outputs]
        if op.type == "Placeholder" and keys[0] in placeholders:
            t = op.outputs[0]
            cv.add_input(t.name, op.name, t.shape.as_list(), t.dtype.as_numpy_dtype)
            continue
        if op.type == "Const" and op.outputs[0].dtype not in (tf.string, tf.variant):
            cv.add_const(keys[0], tensor_util.MakeNdarray(op.get_attr("value")), op.name)
            continue
        args = tuple(cv.value(t.name) for t in op.inputs)
        cv.convert(op, op.type, args, {}, keys, [_type(t) for t in op.outputs], name=op.name,
                   scope=op.name.rpartition("/")[0])
        for key in keys:
            if cv.has(key) and has_nchw(cv, cv.value(key)):
                # a later region may read the NCHW form: give it a native key the host can make
                cv.bind(("nchw", key), cv.nchw[id(cv.value(key))][1])
    cv.set_outputs(list(cap.outputs))
    return cv


def log_counts(cap: Captured, cv: TFConverter, plan) -> dict:
    """Log the TF op totals tensorflow-neuron prints (same wording): the operations of the
    frozen graph, those left after conversion (constant folding removes shape arithmetic and
    the like) and those of them placed on Neuron. Returns the three counts."""
    placed = {r["name"]: r["placement"] for r in plan.report.nodes}
    kept, host = set(), set()
    for node in plan.graph.nodes:
        native = cv.native_names.get(id(node))
        if native:
            kept.add(native[0])
            if placed.get(node.name) != "neuron":
                host.add(native[0])
    counted = [n for n in cap.graph_def.node if n.op not in STRUCTURAL]
    after = [n for n in counted if n.name in kept]
    on = sum(1 for n in after if n.name not in host)
    log.info("Number of operations in TensorFlow session: %d", len(counted))
    log.info("Number of operations after tf.neuron optimizations: %d", len(after))
    log.info("Number of operations placed on Neuron runtime: %d", on)
    off = Counter(n.op for n in after if n.name in host)
    if off:
        log.info("Operations left on TensorFlow: %s",
                 ", ".join(f"{op}: {k}" for op, k in off.most_common()))
    return {"session": len(counted), "optimized": len(after), "neuron": on}
