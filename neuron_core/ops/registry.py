"""The op registry: everything known about an op is registered once, here, by op type.

An op class gives, for nodes of its type:
  * `defaults`: attribute defaults (ONNX, latest opset); `attrs(node)` merges them in;
  * `infer(node, types)`: output TensorTypes from the input types (None for an absent optional input);
  * `check(node)`: the op's part of the support verdict (partition/verdicts.py asks it last);
  * `reference(*inputs, **attrs)`: float32 reference semantics on numpy arrays;
  * `engine`: where the lowering puts it (see ENGINES); `lower(ctx, node)` emits its instructions;
  * `cost(node)`: FLOPs and bytes moved, plus the matmul shape for TensorEngine ops;
  * the facts each stage reads, declared on the class (see "what the compiler and the runtime
    read" in Op): fusion (`epilogue`), casting (`precision`, `matmul_inputs`), the timing model
    (`timing`, `shares_stationary`), the instruction kernels (`fast_kernels`, `vector_code`,
    `session_epilogue`, `fused_activation`, `gemm_bias`, `layout_free`), the whole-program
    kernels (`graph_kernel`, `graph`), and `exact`, `writes_out`, `pass_through`.
"""
from __future__ import annotations

import importlib
import math
import pkgutil
import threading
from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from .. import dtypes
from ..errors import ShapeInferenceError, UnsupportedOpError
from ..ir import Node, TensorType

#: the engines of a NeuronCore-v1, by the names the reports, profiles and NEFFs use
TENSOR_ENGINE, SCALAR_ENGINE, VECTOR_ENGINE = "TensorEngine", "ScalarEngine", "VectorEngine"
PE_TRANSPOSE, DMA = "PE transpose", "DMA"
#: each engine and how the casting policy treats ops placed on it
ENGINES = {
    TENSOR_ENGINE: "matmul/conv; inputs in the matmul dtype, fp32 accumulation in PSUM",
    SCALAR_ENGINE: "transcendental and elementwise activations, fp32 inside",
    VECTOR_ENGINE: "elementwise arithmetic, reductions, pooling, normalization, fp32 inside",
    PE_TRANSPOSE: "transpose through the TensorEngine's PE array: lossy under --fast-math "
                  "fast-relayout",
    DMA: "data movement only (reshape, slice, concat, gather, pad): exact",
}
#: the casting policy's class of each engine's ops (see Op.precision)
PRECISION_CLASS = {TENSOR_ENGINE: "matmul", SCALAR_ENGINE: "compute", VECTOR_ENGINE: "compute",
                   PE_TRANSPOSE: "transpose", DMA: "move"}
#: the short names NEFFs of format 1.1 and earlier stored
LEGACY_ENGINES = {"pe": TENSOR_ENGINE, "act": SCALAR_ENGINE, "vector": VECTOR_ENGINE,
                  "relayout": PE_TRANSPOSE, "dma": DMA}

FLOATS = ("float32", "float16", "bfloat16")
INDEX = ("int64", "int32")


@dataclass(frozen=True, slots=True)
class Verdict:
    """Whether a node can run on the NeuronCore; `reason` says why not, `kind` classifies it."""

    supported: bool
    reason: str = ""
    kind: str = ""

    @classmethod
    def ok(cls) -> "Verdict":
        return cls(True)

    @classmethod
    def no(cls, kind: str, reason: str) -> "Verdict":
        return cls(False, reason, kind)


@dataclass(frozen=True, slots=True)
class Cost:
    """Work of one node: floating point operations, bytes read+written, and for TensorEngine ops
    the matmul problem (count, m, k, n) that the PE array tiles."""

    flops: int
    bytes: int
    matmul: tuple | None = None


class Op:
    """Base of every registered op. Subclasses set `name` via @register_op."""

    name: ClassVar[str] = ""
    engine: ClassVar[str] = VECTOR_ENGINE
    defaults: ClassVar[dict] = {}
    #: dtypes accepted on each input position (last entry repeats); None = any
    input_dtypes: ClassVar[tuple | None] = (FLOATS,)
    #: input positions that must be compile-time constants (shape parameters)
    static_inputs: ClassVar[tuple] = ()
    #: FLOPs per output element, for the default cost
    flops_per_element: ClassVar[int] = 1
    #: an arithmetic op (counted in "percent of arithmetic operations"); data movement is not
    arithmetic: ClassVar[bool] = True
    #: every output value is an input value (or its negation, or zero): the output is exactly as
    #: precise as the float inputs, so rounding it to their storage dtype changes nothing
    exact: ClassVar[bool] = False
    #: `reference` takes `out=`: a float32 array of the output's shape to write the result into
    #: (one of the inputs, given up by the caller), saving an allocation on the epilogue path
    writes_out: ClassVar[bool] = False
    #: how the whole-program kernels (runtime/graph.py) run it: "exact" (onnxruntime's kernel of
    #: the ONNX op gives the reference's bits), "summed" (the same fp32 terms summed in another
    #: order), "probed" (an elementwise function checked against the reference on every stored
    #: value at load), or None (on the reference, between graphs)
    graph_kernel: ClassVar[str | None] = None

    # -- what the compiler and the runtime read about the op, declared here and nowhere else --------
    #: how a TensorEngine op takes it into its PSUM-evacuation epilogue: "unary" (its other inputs,
    #: if any, are constants), "binary" (an elementwise op of the result and a constant, of the
    #: result's shape), or None (it is never absorbed)
    epilogue: ClassVar[str | None] = None
    #: elementwise: each output element depends on the same element of each input alone, so
    #: operands blocked alike (runtime/kernels/blocked.py) give a result blocked alike
    layout_free: ClassVar[bool] = False
    #: for a TensorEngine op, the input positions that stream through the PE array (in the matmul
    #: dtype); its other inputs (a bias) join in the fp32 epilogue
    matmul_inputs: ClassVar[tuple] = (0, 1)
    #: how the timing model holds its operands in the SBUF: "stream" (row tiles), "window" (one
    #: image at a time: convolutions, pools, resizes), "view" (a DMA op that moves nothing:
    #: reshapes), "gather" (a DMA op that reads only the rows of input 0 it picks)
    timing: ClassVar[str] = "stream"
    #: the per-instruction fast kernels (runtime/kernels/) that may take it, tried in order:
    #: "blocked-conv", "blocked-pool" (onnxruntime's channel-blocked layout), "gemm" (a MatMul by
    #: a 2-D weight as one Gemm over rows), "session" (a one-node onnxruntime session of the op,
    #: which computes the same fp32 semantics, up to summation order)
    fast_kernels: ClassVar[tuple] = ()
    #: its code in the fused elementwise kernel (neuron_core/_jit.py): 0-3 for add, sub, mul and
    #: div; -1 for a Relu alone; None: not taken
    vector_code: ClassVar[int | None] = None
    #: a session kernel may run it in its epilogue: onnxruntime computes it in fp32 exactly as the
    #: executor does (an fp32 add, a max with 0)
    session_epilogue: ClassVar[bool] = False
    #: it adds its two operands: a constant vector added to a MatMul's result is a bias a Gemm
    #: starts its sums from (runtime/kernels/gemm.py)
    gemm_bias: ClassVar[bool] = False
    #: the name onnxruntime's fused convolutions take for it as their `activation`, or None
    fused_activation: ClassVar[str | None] = None
    #: it only passes its first input through at inference time (the compiler removes it)
    pass_through: ClassVar[bool] = False

    @property
    def precision(self) -> str:
        """How the casting policy treats it (compiler/precision.py): "matmul" (TensorEngine
        inputs in the matmul dtype), "compute" (fp32 inside an engine, written in the dtype of
        other ops), "transpose" (a PE-array transpose) or "move" (data movement: exact)."""
        return PRECISION_CLASS[self.engine]

    @property
    def reads_blocked(self) -> bool:
        """Whether some kernel of it may read an operand in the blocked layout."""
        return self.layout_free or any(k.startswith("blocked-") for k in self.fast_kernels)

    def shares_stationary(self, attrs: dict, stationary_shape: tuple) -> bool:
        """Whether all the matmuls of one instruction share its stationary operand (input 1), so
        the timing model may fold the batch into the moving rows."""
        return False

    def attrs(self, node: Node) -> dict:
        if not self.defaults:
            return dict(node.attrs)
        merged = dict(self.defaults)
        merged.update(node.attrs)
        return merged

    # -- shape and dtype inference ----------------------------------------------------------------
    def infer(self, node: Node, types: list) -> list[TensorType]:
        raise NotImplementedError(f"{self.name} does not define infer()")

    # -- support ------------------------------------------------------------------------------------
    def check(self, node: Node) -> Verdict:
        """Default checks: known static shapes, accepted dtypes, constant shape parameters."""
        for i, v in enumerate(node.inputs):
            if v is None:
                continue
            if i in self.static_inputs and not v.is_const:
                return Verdict.no("dynamic-shape", f"input {i} (%{v.name}) of {self.name} must be a "
                                  "compile-time constant but is computed at run time")
            if v.type is None or not v.type.is_static:
                return Verdict.no("dynamic-shape", f"input %{v.name} has a dynamic shape {v.type}; "
                                  "fix it with --io-config or example inputs")
            if self.input_dtypes is not None and i not in self.static_inputs:
                allowed = self.input_dtypes[min(i, len(self.input_dtypes) - 1)]
                if allowed is not None and v.type.dtype not in allowed:
                    return Verdict.no("dtype", f"input %{v.name} of {self.name} has dtype "
                                      f"{v.type.dtype}; the NeuronCore supports {', '.join(allowed)}")
        for out in node.outputs:
            if out.type is None or not out.type.is_static:
                return Verdict.no("dynamic-shape", f"output %{out.name} has a dynamic shape")
        reason = self.check_attrs(node, self.attrs(node))
        if reason:
            return Verdict.no("attribute", reason)
        return Verdict.ok()

    def check_attrs(self, node: Node, attrs: dict) -> str | None:
        """Op-specific restriction; return a reason string when the node is not supported."""
        return None

    # -- semantics -----------------------------------------------------------------------------------
    def reference(self, *inputs, **attrs):
        raise NotImplementedError(f"{self.name} does not define reference()")

    def run(self, node_attrs: dict, inputs: list):
        """Evaluate with attribute defaults filled in; always returns a list of arrays."""
        attrs = dict(self.defaults)
        attrs.update(node_attrs)
        out = self.reference(*inputs, **attrs)
        return list(out) if isinstance(out, (tuple, list)) else [out]

    # -- lowering and cost ------------------------------------------------------------------------
    def lower(self, ctx, node: Node) -> None:
        ctx.emit(node, engine=self.engine)

    def graph_takes(self, attrs: dict) -> bool:
        """Whether the whole-program kernels run this op with these attributes (an op whose
        ONNX form has no node for some attribute values says no to those)."""
        return self.graph_kernel is not None

    def graph(self, b, inputs: list, attrs: dict, outputs: int) -> list:
        """Emit this op into a whole-program graph (runtime/graph.Builder `b`) reading tensors
        `inputs` with attributes `attrs`; returns its output tensor names. By default the ONNX
        node of the same name."""
        return b.node(self.name, inputs, attrs, outputs=outputs)

    def cost(self, node: Node) -> Cost:
        out_elems = sum(_numel(o) for o in node.outputs)
        return Cost(self.flops_per_element * out_elems if self.arithmetic else 0, io_bytes(node))


#: the op of the cast instructions the lowering places where an engine needs a value in another
#: precision (no graph node has it; runtime/executor.py rounds for it)
CAST = "_cast"


class _Cast(Op):
    """A rounding of a float buffer to the precision in attribute `to` (a ScalarEngine pass)."""

    name = CAST
    engine = SCALAR_ENGINE
    layout_free = True
    input_dtypes = None

    def reference(self, x, to=None):
        return dtypes.round_to(x, to) if to else x


_CAST_OP = _Cast()


#: the facts of an op no registry entry knows (a NEFF's instruction from a newer compiler): the
#: defaults every Op declares
UNKNOWN = Op()


def instruction_op(op: str, default: Op | None = None) -> Op:
    """The op an instruction of a program runs: a registered op, or the cast instruction; an op
    type the registry does not know gives `default` when one is given, else UnsupportedOpError."""
    if op == CAST:
        return _CAST_OP
    if default is not None and not has_op(op):
        return default
    return get_op(op)


def _numel(value) -> int:
    t = value.type
    return t.numel if t is not None and t.is_static else 0


def io_bytes(node: Node) -> int:
    total = 0
    for v in list(node.inputs) + list(node.outputs):
        if v is not None and v.type is not None and v.type.is_static:
            total += v.type.nbytes
    return total


# -- the registry ------------------------------------------------------------------------------------
_REGISTRY: dict[str, Op] = {}
_LOADED = False
_LOADING = threading.RLock()   # an op module's import may ask the registry again


def register_op(name: str, *aliases: str):
    """Class decorator: register one instance of the op under `name` (and aliases)."""
    def wrap(cls):
        cls.name = name
        instance = cls()
        for key in (name, *aliases):
            if key in _REGISTRY:
                raise RuntimeError(f"op {key!r} registered twice")
            _REGISTRY[key] = instance
        return cls
    return wrap


def _load_all() -> None:
    """Import every op module of the package once; a thread that asks while another imports waits
    for the whole registry (so no lookup ever sees half of it)."""
    global _LOADED
    if _LOADED:
        return
    with _LOADING:
        if _LOADED:
            return
        from . import __path__ as pkg_path
        for info in sorted(pkgutil.iter_modules(pkg_path), key=lambda m: m.name):
            if info.name not in ("registry",):
                importlib.import_module(f"{__package__}.{info.name}")
        _LOADED = True


def get_op(op_type: str) -> Op:
    _load_all()
    try:
        return _REGISTRY[op_type]
    except KeyError:
        raise UnsupportedOpError(
            f"op type {op_type!r} has no Neuron implementation; supported ops: "
            "`neuron-cc list-operators --framework ONNX`") from None


#: control-flow ops: no NeuronCore program takes them, they run on the host
CONTROL_FLOW = frozenset({"If", "Loop", "Scan"})


def is_control_flow(op_type: str) -> bool:
    return op_type in CONTROL_FLOW


def has_op(op_type: str) -> bool:
    _load_all()
    return op_type in _REGISTRY


def op_names() -> list[str]:
    _load_all()
    return sorted(_REGISTRY)


def infer_node(node: Node) -> None:
    """Set the types of a node's outputs from its inputs (constants folded in by the op)."""
    op = get_op(node.op_type)
    types = [None if v is None else v.type for v in node.inputs]
    try:
        outs = op.infer(node, types)
    except ShapeInferenceError:
        raise
    except (ValueError, IndexError, TypeError, KeyError) as exc:
        from ..ir import format_node
        raise ShapeInferenceError(f"cannot infer output types of `{format_node(node)}` from inputs "
                                  f"{[str(t) for t in types]}: {exc}") from exc
    if len(outs) != len(node.outputs):
        raise ShapeInferenceError(f"{node.op_type} %{node.name}: inferred {len(outs)} outputs, node "
                                  f"has {len(node.outputs)}")
    for v, t in zip(node.outputs, outs):
        v.type = t


def shape_params_at_run_time(op_type: str, inputs: list) -> bool:
    """Whether a registered op's shape-parameter inputs (`static_inputs`) include a value computed
    at run time: then its output shape is not known at compile time, only the host can run it,
    and its output types are the frontend's (the partitioner's verdict names the input)."""
    return any(i < len(inputs) and inputs[i] is not None and not inputs[i].is_const
               for i in get_op(op_type).static_inputs)


def const_value(node: Node, i: int, default=None):
    """The constant array at input `i`, or `default` when the input is absent."""
    v = node.input(i)
    if v is None:
        return default
    if not v.is_const:
        raise ShapeInferenceError(f"input {i} (%{v.name}) of {node.op_type} %{node.name} must be a "
                                  "compile-time constant for its output shape to be known")
    return v.const


def numel(shape) -> int:
    return math.prod(shape)


def to_f32(x: np.ndarray) -> np.ndarray:
    return x if x.dtype == np.float32 else x.astype(np.float32)


__all__ = ["Op", "Verdict", "Cost", "CAST", "ENGINES", "instruction_op", "FLOATS", "INDEX", "register_op", "get_op", "has_op",
           "op_names", "infer_node", "const_value", "shape_params_at_run_time", "io_bytes",
           "dtypes"]
