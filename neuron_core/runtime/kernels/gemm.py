"""A MatMul of an activation [..., K] by a constant [K, N] weight as one Gemm over the activation's
rows, the bias Add (a constant [N] vector, leading 1s allowed) and Relu that may open its epilogue
included: the bias initialises the sums instead of a pass of its own over the result, as in
onnxruntime's own graphs (the transformer layers' projections)."""
from __future__ import annotations

import numpy as np

from ... import dtypes
from ...ops import get_op
from .record import Kernel
from .session import external, session


def _bias(post: dict, constants: list, n: int, rank: int):
    """The [N] bias of an epilogue op that adds a constant vector to the result, or None."""
    if not get_op(post["op"]).gemm_bias or post["attrs"] or len(post["inputs"]) != 2:
        return None
    ids = [i for i in post["inputs"] if i != -1]
    bias = constants[ids[0]] if len(ids) == 1 and ids[0] is not None else None
    if (bias is not None and bias.dtype == np.float32 and bias.size == n and bias.ndim >= 1
            and bias.shape[-1] == n and bias.ndim <= rank):
        return bias.reshape(n)
    return None


def leading_relu(post: list, absorbed: int) -> bool:
    """Whether epilogue op `absorbed` is a plain Relu of the result (onnxruntime's `activation`)."""
    return (len(post) > absorbed and get_op(post[absorbed]["op"]).fused_activation == "Relu"
            and not post[absorbed]["attrs"] and post[absorbed]["inputs"] == [-1])


def matmul_as_gemm(instr, buffers: list, constants: list) -> Kernel | None:
    """The Gemm kernel of MatMul `instr`, or None for a MatMul that is not by a 2-D weight."""
    from onnx import TensorProto, helper
    if len(instr.inputs) != 2 or None in instr.inputs:
        return None
    x_id, w_id = instr.inputs
    w = constants[w_id]
    shape = buffers[x_id].shape
    if (constants[x_id] is not None or buffers[x_id].dtype != dtypes.FP32 or w is None
            or w.dtype != np.float32 or w.ndim != 2 or len(shape) < 2
            or shape[-1] != w.shape[0] or not isinstance(shape[-1], int)):
        return None
    k, n = w.shape
    weights, names, absorbed = {"w": w}, ["x", "w"], 0
    bias = _bias(instr.post[0], constants, n, len(shape)) if instr.post else None
    if bias is not None:
        weights["b"], absorbed = bias, 1
        names.append("b")
    nodes = [helper.make_node("Gemm", names, ["y0"])]
    if leading_relu(instr.post, absorbed):
        nodes.append(helper.make_node("Relu", ["y0"], ["y1"]))
        absorbed += 1
    graph = helper.make_graph(
        nodes, "pe_MatMul_gemm", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [None, k])],
        [helper.make_tensor_value_info(nodes[-1].output[0], TensorProto.FLOAT, None)],
        [external(name, a) for name, a in weights.items()])
    found, values = session(graph, weights, f"MatMul ({instr.node}) as Gemm")
    if found is None:
        return None
    output = [nodes[-1].output[0]]

    def run(args):
        x = args[0]
        if not isinstance(x, np.ndarray) or x.dtype != np.float32:
            return None
        y = found.run(output, {"x": x.reshape(-1, k)})[0]
        return y.reshape(*x.shape[:-1], n)
    return Kernel(run, absorbed, keep=values)
