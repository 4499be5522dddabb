"""Rules for TensorFlow's matrix products: MatMul, BatchMatMul and two-operand Einsum (what Keras
Dense layers on 3-D inputs and MultiHeadAttention lower to)."""
from __future__ import annotations

import math

from neuron_core.bridge import Unsupported

from . import TABLE
from ._util import attr, ints, rule


def _swap_last(cv, x):
    perm = list(range(x.type.rank))
    perm[-2], perm[-1] = perm[-1], perm[-2]
    return cv.op("Transpose", [x], {"perm": perm})


@rule(TABLE, "MatMul")
def _matmul(cv, a, b):
    ta, tb = bool(attr(cv, "transpose_a", False)), bool(attr(cv, "transpose_b", False))
    return cv.op("Gemm", [a, b], {"transA": int(ta), "transB": int(tb)})


@rule(TABLE, "BatchMatMul", "BatchMatMulV2", "BatchMatMulV3")
def _batch_matmul(cv, a, b):
    if attr(cv, "adj_x", False):
        a = _swap_last(cv, a)
    if attr(cv, "adj_y", False):
        b = _swap_last(cv, b)
    return cv.op("MatMul", [a, b])


def _parse(equation: str, ranks) -> tuple[list, str]:
    if "->" not in equation:
        raise Unsupported(f"Einsum {equation!r} without an explicit output ('->')")
    lhs, out = equation.replace(" ", "").split("->")
    terms = lhs.split(",")
    if "." in equation:
        raise Unsupported(f"Einsum {equation!r} with an ellipsis")
    for t, r in zip(terms, ranks):
        if len(t) != r or len(set(t)) != len(t):
            raise Unsupported(f"Einsum term {t!r} repeats an index or does not match rank {r}")
    return terms, out


def _sum_out(cv, x, term: str, keep: set) -> tuple:
    """Sum away indices of `term` no other operand or the output has."""
    gone = [i for i, c in enumerate(term) if c not in keep]
    if not gone:
        return x, term
    x = cv.op("ReduceSum", [x, ints(cv, gone)], {"keepdims": 0})
    return x, "".join(c for c in term if c in keep)


def _arrange(cv, x, term: str, order: str):
    perm = [term.index(c) for c in order]
    return x if perm == sorted(perm) else cv.op("Transpose", [x], {"perm": perm})


@rule(TABLE, "Einsum")
def _einsum(cv, *xs):
    equation = attr(cv, "equation")
    terms, out = _parse(equation, [x.type.rank for x in xs])
    if len(xs) == 1:   # a sum over some indices and a transpose
        x, t = _sum_out(cv, xs[0], terms[0], set(out))
        return _arrange(cv, x, t, out)
    if len(xs) != 2:
        raise Unsupported(f"Einsum {equation!r} with {len(xs)} operands (one or two are lowered)")
    (a, b), (ta, tb) = xs, terms
    a, ta = _sum_out(cv, a, ta, set(tb + out))
    b, tb = _sum_out(cv, b, tb, set(ta + out))
    batch = [c for c in ta if c in tb and c in out]
    contract = [c for c in ta if c in tb and c not in out]
    free_a = [c for c in ta if c not in tb]
    free_b = [c for c in tb if c not in ta]
    size = {c: d for t, x in ((ta, a), (tb, b)) for c, d in zip(t, x.type.shape)}
    nb, nk = (math.prod(size[c] for c in batch), math.prod(size[c] for c in contract))
    na, nn = math.prod(size[c] for c in free_a), math.prod(size[c] for c in free_b)
    a = _arrange(cv, a, ta, "".join(batch + free_a + contract))
    b = _arrange(cv, b, tb, "".join(batch + contract + free_b))
    lead = [nb] if batch else []    # no batch index: a plain 2-D product
    a = cv.op("Reshape", [a, ints(cv, lead + [na, nk])])
    b = cv.op("Reshape", [b, ints(cv, lead + [nk, nn])])
    y = cv.op("MatMul", [a, b])
    got = batch + free_a + free_b
    y = cv.op("Reshape", [y, ints(cv, [size[c] for c in got])])
    return _arrange(cv, y, "".join(got), out)
