"""The generic kernel: an instruction as a one-node onnxruntime session of its op (a TensorEngine
op, Softmax or LayerNormalization), its weights as stored on the device as initializers, its other
operands as inputs, with the bias add and Relu that may open its epilogue."""
from __future__ import annotations

import numpy as np

from ... import dtypes
from ...ops import get_op
from .record import Kernel
from .session import attribute, external, session


def one_node(instr, buffers: list, constants: list) -> Kernel | None:
    """The one-node session kernel of `instr`, or None (onnxruntime absent, an operand that is not
    float32, or a case its kernels do not take). `constants[i]` is buffer i's array on the device
    if it is a weight, else None."""
    try:
        import onnxruntime  # noqa: F401
        from onnx import TensorProto, helper
    except ImportError:
        return None
    names, weights, feeds = [], {}, []
    for k, bid in enumerate(instr.inputs):
        if bid is None:
            names.append("")
        elif constants[bid] is not None:
            if constants[bid].dtype != np.float32:
                return None
            names.append(f"w{k}")
            weights[f"w{k}"] = constants[bid]
        elif buffers[bid].dtype == dtypes.FP32:
            names.append(f"x{k}")
            feeds.append((k, f"x{k}", [d if isinstance(d, int) else None
                                      for d in buffers[bid].shape]))
        else:
            return None
    nodes = [helper.make_node(instr.op, names, ["y0"])]
    try:
        nodes[0].attribute.extend(attribute(k, v) for k, v in instr.attrs.items() if v is not None)
    except (ValueError, TypeError):
        return None
    absorbed = 0
    for p in instr.post:
        others = [i for i in p["inputs"] if i != -1]
        if (not get_op(p["op"]).session_epilogue or p["attrs"] or any(
                i is None or constants[i] is None or constants[i].dtype != np.float32
                for i in others)):
            break
        args = []
        for i in p["inputs"]:
            if i == -1:
                args.append(f"y{absorbed}")
            else:
                args.append(f"c{absorbed}")
                weights[f"c{absorbed}"] = constants[i]
        absorbed += 1
        nodes.append(helper.make_node(p["op"], args, [f"y{absorbed}"]))
    graph = helper.make_graph(
        nodes, f"pe_{instr.op}",
        [helper.make_tensor_value_info(name, TensorProto.FLOAT, shape) for _, name, shape in feeds],
        [helper.make_tensor_value_info(f"y{absorbed}", TensorProto.FLOAT, None)],
        [external(n, a) for n, a in weights.items()])
    found, values = session(graph, weights, f"{instr.op} ({instr.node})")
    if found is None:
        return None
    output = [f"y{absorbed}"]
    fed = [(k, name) for k, name, _ in feeds]

    def run(args):
        feed = {}
        for k, name in fed:
            if not isinstance(args[k], np.ndarray) or args[k].dtype != np.float32:
                return None
            feed[name] = args[k]
        return found.run(output, feed)[0]
    return Kernel(run, absorbed, keep=values)
