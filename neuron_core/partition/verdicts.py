"""The placement verdict of every node, with its reason.

Kinds: supported, unsupported-op, dtype, dynamic-shape, attribute, user-denied, control-flow,
non-tensor, too-small, cost-rejected, not-dominant (the last three are given to whole clusters later).
"""
from __future__ import annotations

from ..ops import get_op, has_op, shape_params_at_run_time
from ..ops.registry import Verdict, is_control_flow
from .options import PartitionOptions


def _named(node, names: tuple) -> bool:
    return node.op_type in names or node.name in names


def _dynamic_non_batch(node) -> str | None:
    for v in list(node.inputs) + list(node.outputs):
        if v is None or v.type is None:
            continue
        if any(isinstance(d, str) for d in v.type.shape[1:]):
            return (f"%{v.name} has a dynamic non-batch dimension {v.type}; only the batch "
                    "dimension (0) may vary: fix the others with --io-config or example inputs")
    return None


def node_verdict(node, options: PartitionOptions | None = None) -> Verdict:
    """Why `node` may or may not run on the NeuronCore, user controls included: the one support
    verdict, which the partitioner and the compiler (with default options) both ask."""
    options = options or PartitionOptions()
    if _named(node, options.no_fuse_ops):
        return Verdict.no("user-denied", f"{node.op_type} %{node.name} is listed in no_fuse_ops")
    if options.subgraph_builder_function is not None:
        if not options.subgraph_builder_function(node.native if node.native is not None else node):
            return Verdict.no("user-denied", f"subgraph_builder_function returned False for "
                              f"%{node.name}")
    if is_control_flow(node.op_type):
        return Verdict.no("control-flow", f"{node.op_type} is control flow, which the NeuronCore "
                          "does not run (host fallback runs it on the host)")
    if any(v is not None and v.type is None for v in list(node.inputs) + list(node.outputs)):
        return Verdict.no("non-tensor", f"%{node.name} reads or produces a value that is not a "
                          "tensor of known type")
    if not has_op(node.op_type):
        return Verdict.no("unsupported-op", node.attrs.get("reason")
                          or f"op type {node.op_type!r} has no Neuron lowering")
    if shape_params_at_run_time(node.op_type, node.inputs):
        return get_op(node.op_type).check(node)  # the cause of its dynamic shape comes first
    reason = _dynamic_non_batch(node)
    if reason:
        return Verdict.no("dynamic-shape", reason)
    return get_op(node.op_type).check(node)


def all_verdicts(graph, options: PartitionOptions | None = None) -> dict:
    """Verdicts keyed by node name, in graph order."""
    return {node.name: node_verdict(node, options) for node in graph.nodes}


def cannot_run(bad: list, total: int, lead: str, hint: str) -> str:
    """The message listing every node that cannot run on Neuron: `bad` is (node, verdict) pairs
    of a graph of `total` nodes; `lead` opens it, `hint` says what to do."""
    lines = "\n".join(f"  %{n.name} ({n.op_type}): {v.reason}" for n, v in bad)
    return f"{lead}{len(bad)} of {total} nodes cannot run on Neuron:\n{lines}\n{hint}"
