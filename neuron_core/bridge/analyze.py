"""The dictionary every plugin's `analyze_model` returns (the keys torch-neuron documents)."""
from __future__ import annotations

from collections import Counter

from ..ops import get_op, has_op
from ..partition import PartitionOptions
from ..partition.verdicts import all_verdicts
from .convert import Converter


def analyze(cv: Converter, **options) -> dict:
    """Support of every native op of a converted graph, without compiling anything.

    Keys: percent_supported, percent_supported_arithmetic, supported_count, total_count,
    supported_operators, unsupported_operators (native op -> count), operator_count (native op ->
    count), reasons (native op -> first reason it cannot run on Neuron).
    """
    graph = cv.finish()
    verdicts = all_verdicts(graph, PartitionOptions(**options))
    per_native: dict = {}
    for node in graph.nodes:
        key = id(node.native) if node.native is not None else id(node)
        name, op = cv.native_names.get(id(node), (node.name, node.op_type))
        entry = per_native.setdefault(key, {"op": op, "ok": True, "arith": False, "reason": ""})
        v = verdicts[node.name]
        if not v.supported:
            entry["ok"] = False
            entry["reason"] = entry["reason"] or v.reason
        entry["arith"] |= (get_op(node.op_type).arithmetic if has_op(node.op_type) else True)
    entries = list(per_native.values())
    total = len(entries)
    ok = [e for e in entries if e["ok"]]
    arith = [e for e in entries if e["arith"]]
    return {
        "percent_supported": round(100.0 * len(ok) / total, 2) if total else 0.0,
        "percent_supported_arithmetic": round(
            100.0 * sum(e["ok"] for e in arith) / len(arith), 2) if arith else 0.0,
        "supported_count": len(ok),
        "total_count": total,
        "supported_operators": dict(Counter(e["op"] for e in ok).most_common()),
        "unsupported_operators": dict(Counter(e["op"] for e in entries if not e["ok"])
                                      .most_common()),
        "operator_count": dict(Counter(e["op"] for e in entries).most_common()),
        "reasons": {e["op"]: e["reason"] for e in entries if not e["ok"]},
    }
