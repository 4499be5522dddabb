"""Graph-to-graph compiler passes. Each takes and returns the graph; the pipeline lists their order."""
from __future__ import annotations

import numpy as np

from ..errors import UnsupportedOpError
from ..ir import Graph
from ..ops import get_op, has_op, infer_node, shape_params_at_run_time
from .fold import fold_node


def infer_types(graph: Graph) -> Graph:
    """(Re)compute every node's output types from the graph inputs and constants (but for the
    nodes whose shape parameters are computed at run time: their types are the frontend's)."""
    for node in graph.nodes:
        if has_op(node.op_type) and not shape_params_at_run_time(node.op_type, node.inputs):
            infer_node(node)
    return graph


def fold_constants(graph: Graph) -> Graph:
    """Evaluate nodes whose inputs are all constants, and Shape of static shapes, at compile time."""
    for node in list(graph.nodes):
        fold_node(graph, node)
    graph.prune()
    return graph


def remove_identities(graph: Graph) -> Graph:
    """Drop the ops that only pass their input through (Op.pass_through: Identity, inference-mode
    Dropout whose mask output nobody reads)."""
    for node in list(graph.nodes):
        if (not has_op(node.op_type) or not get_op(node.op_type).pass_through
                or any(o.users or o in graph.outputs for o in node.outputs[1:])):
            continue
        src, out = node.inputs[0], node.outputs[0]
        if out in graph.outputs and (src in graph.inputs or src.is_const or src in graph.outputs):
            continue  # keep a copy so an output is never an input or constant by another name
        graph.remove_node(node)
        if out in graph.outputs and src.producer is not None:
            _rename(graph, src, out.name)
        graph.replace_uses(out, src)
    return graph


def _rename(graph: Graph, value, name: str) -> None:
    """Give `value` the name of a graph output it now stands for (graph outputs keep their names)."""
    graph.values.pop(value.name, None)
    graph.values.pop(name, None)
    value.name = name
    graph.values[name] = value


def fold_batchnorm(graph: Graph) -> Graph:
    """Fold an inference BatchNormalization into the Conv before it (scale weights, shift bias)."""
    for bn in list(graph.nodes):
        if bn.op_type != "BatchNormalization" or len(bn.outputs) != 1:
            continue
        conv = bn.inputs[0].producer
        if (conv is None or conv.op_type != "Conv" or len(bn.inputs[0].users) != 1
                or bn.inputs[0] in graph.outputs
                or not all(v is not None and v.is_const for v in bn.inputs[1:])
                or not conv.inputs[1].is_const or len(conv.inputs[1].users) != 1
                or (conv.input(2) is not None and not conv.inputs[2].is_const)):
            continue
        scale, shift, mean, var = (v.const.astype(np.float32) for v in bn.inputs[1:5])
        eps = np.float32(get_op("BatchNormalization").attrs(bn).get("epsilon", 1e-5))
        factor = scale / np.sqrt(var + eps)
        w = conv.inputs[1].const.astype(np.float32)
        w = w * factor.reshape((-1,) + (1,) * (w.ndim - 1))
        b = conv.inputs[2].const.astype(np.float32) if conv.input(2) is not None else 0.0
        b = ((b - mean) * factor + shift).astype(np.float32)
        new_w = graph.add_const(f"{conv.name}_w_bn", w.astype(np.float32))
        new_b = graph.add_const(f"{conv.name}_b_bn", b)
        for v in conv.inputs[1:]:
            if v is not None:
                v.users = [u for u in v.users if u is not conv]
        conv.inputs = [conv.inputs[0], new_w, new_b]
        new_w.users.append(conv)
        new_b.users.append(conv)
        out = bn.outputs[0]
        graph.remove_node(bn)
        if out in graph.outputs:
            _rename(graph, conv.outputs[0], out.name)
        graph.replace_uses(out, conv.outputs[0])
    graph.prune()
    return graph


def check_support(graph: Graph) -> Graph:
    """Fail, listing every node that cannot run on the NeuronCore, when there is any (the
    partitioner's verdict: partition/verdicts.py, imported here so that loading a NEFF, which
    imports the compiler's program, does not import the partitioner)."""
    from ..partition.verdicts import cannot_run, node_verdict
    bad = [(n, v) for n in graph.nodes for v in [node_verdict(n)] if not v.supported]
    if bad:
        raise UnsupportedOpError(cannot_run(
            bad, len(graph.nodes), "",
            "Compile with host fallback (neuron_core.onnx.compile / the framework plugins), or "
            "see the supported ops with `neuron-cc list-operators --framework ONNX`."))
    return graph
