"""The casting policy applied to a graph: the precision every value is stored in, and where a value
must be cast down before an engine reads it (the explicit cast points).

Rules (NeuronCore-v1): TensorEngine inputs are in the matmul dtype and accumulate in fp32; its output
leaves PSUM in the dtype of other ops; Scalar/Vector engines compute in fp32 and write the dtype of
other ops; a transpose through the PE array rounds to the transpose dtype under fast-relayout; data
movement keeps the precision it was given. Graph inputs and outputs keep their declared dtype.
"""
from __future__ import annotations

from ..dtypes import FP32, is_float
from ..ops import get_op
from .options import CastPolicy


def required_dtype(node, index: int, policy: CastPolicy) -> str | None:
    """The precision input `index` of `node` must be in before its engine reads it (None: any)."""
    op = get_op(node.op_type)
    if op.precision == "matmul" and index in op.matmul_inputs:
        return policy.matmul
    if op.precision in ("matmul", "compute") and policy.other != FP32:
        return policy.other
    return None


def needs_cast(storage: str, required: str | None) -> bool:
    """Reading a value stored at `storage` as `required` needs a rounding (up-casts are exact)."""
    return required is not None and required != FP32 and storage != required


def assign_storage(graph, policy: CastPolicy, groups) -> dict:
    """Map every value (by id) to the precision it is stored in."""
    storage = {}
    for v in graph.inputs:
        storage[id(v)] = v.type.dtype
    for v in graph.constants:
        if not is_float(v.type.dtype):
            storage[id(v)] = v.type.dtype
            continue
        needs = {required_dtype(u, i, policy) for u in v.users
                 for i, x in enumerate(u.inputs) if x is v}
        needs.discard(None)
        storage[id(v)] = needs.pop() if len(needs) == 1 else (policy.other if needs else FP32)
    for group in groups:
        for node in group:
            kind = get_op(node.op_type).precision
            for out in node.outputs:
                if not is_float(out.type.dtype):
                    storage[id(out)] = out.type.dtype
                elif kind in ("matmul", "compute"):
                    storage[id(out)] = policy.other
                elif kind == "transpose" and policy.transpose is not None:
                    storage[id(out)] = policy.transpose
                else:  # data movement keeps the widest precision it was given
                    ins = [storage.get(id(v), FP32) for v in node.inputs
                           if v is not None and is_float(v.type.dtype)]
                    storage[id(out)] = FP32 if FP32 in ins or not ins else ins[0]
    return storage
