"""The stable text form of a graph: `%out = Op[attr=value](%a, %b) : f32[1,3]`, one node a line."""
from __future__ import annotations

import numpy as np


def format_attr(value) -> str:
    if isinstance(value, float):
        return str(np.float32(value))  # shortest text that round-trips in float32
    if isinstance(value, (list, tuple)):
        return "[" + ",".join(format_attr(v) for v in value) + "]"
    if isinstance(value, np.ndarray):
        return f"tensor<{value.dtype.name}{list(value.shape)}>"
    if isinstance(value, str):
        return repr(value)
    return str(value)


def format_node(node) -> str:
    attrs = ""
    if node.attrs:
        attrs = "[" + ", ".join(f"{k}={format_attr(v)}" for k, v in sorted(node.attrs.items())) + "]"
    args = ", ".join("%" + v.name if v is not None else "_" for v in node.inputs)
    outs = ", ".join("%" + v.name for v in node.outputs)
    types = ", ".join(str(v.type) if v.type is not None else "?" for v in node.outputs)
    return f"{outs} = {node.op_type}{attrs}({args}) : {types}"


def format_graph(graph) -> str:
    ins = ", ".join(f"%{v.name}: {v.type}" for v in graph.inputs)
    lines = [f"graph {graph.name}({ins}) {{"]
    for v in graph.constants:
        lines.append(f"  %{v.name} = const : {v.type}")
    lines.extend("  " + format_node(n) for n in graph.nodes)
    lines.append("  return " + ", ".join("%" + v.name for v in graph.outputs))
    lines.append("}")
    return "\n".join(lines)
