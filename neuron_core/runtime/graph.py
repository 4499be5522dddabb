"""Whole-program kernels: a NEFF's program lowered to onnxruntime graphs, one session per graph.

Running one onnxruntime session per instruction (runtime/kernels/) costs a thread-pool wake-up,
a copy and a layout conversion per instruction, and a separate pass per rounding. Here the
instructions become the nodes of one ONNX graph instead, with every cast point of the program an
explicit `Cast` to bfloat16 (or float16) and back to float32: onnxruntime's Cast rounds to
nearest even like `ml_dtypes`, so the rounding happens at exactly the same points, and one session
with one thread pool runs the whole program. Activations stay in onnxruntime's channel-blocked
layout from one convolution to the next (its `com.microsoft.nchwc` kernels), as with the
instruction kernels.

Which instruction joins a graph is a fact of its op (`Op.graph_kernel`):

* "exact": onnxruntime's kernel gives the reference's bits (data movement, IEEE arithmetic);
* "summed": the same fp32 products or terms, summed in another order (TensorEngine ops, Softmax,
  LayerNormalization, averages): within one bf16 ulp after the rounding, as the instruction
  kernels are;
* "probed": an elementwise function whose onnxruntime kernel is compared at load, on this CPU,
  with the reference on every value of its input's storage dtype (all 65,536 bfloat16 or float16
  values): it joins the graph where it matched bit for bit after the output's rounding (a NaN
  matching any NaN). Its inputs are then stored values, so the graph is exact there too. In
  precision="fp32" mode nothing is rounded and such ops run in the graph, a few fp32 ulps from
  NumPy's, like Softmax's exp;
* None (or `Op.graph_takes(attrs)` false, for attribute values onnxruntime has no node for): the
  instruction runs on its NumPy reference between two graphs.

A Conv's leading Relu runs in onnxruntime's blocked kernel where `probe.fused_relu_holds` found
that kernel's Relu to give np.maximum's bits (NaN kept, +0 for negatives and -0) on this CPU, and
as a Max node of its own elsewhere.

onnxruntime's MaxPool drops NaN where the reference (np.maximum) keeps it: each pool in a graph
also returns the sum of its input, and a run in which one is not finite (a NaN or an inf reached
a pool) is computed again on the reference kernels.

The graphs are built once per machine: a built program is stored in the user cache (see
runtime/cache.py), keyed by the NEFF's section hashes, the precision, onnxruntime's version and
the CPU, so that a later process loads it without importing `onnx` or rounding a weight.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field

import numpy as np

from .. import dtypes
from ..ops import CAST, get_op, instruction_op
from . import kernels
from .kernels.blocked import NCHWC

log = logging.getLogger("Neuron")

#: the ONNX opset of the graphs: the IR keeps the latest form of each op (Reduce* axes as inputs
#: from 18, Gelu from 20)
OPSET = 21
#: constants up to this size are stored in the graph rather than fed from memory
EMBED_BYTES = 1024


@dataclass
class Segment:
    """A run of consecutive instructions: a graph (`model` is its serialized ONNX model, `weights`
    its initializers by name) or, with `model` None, instructions run one by one on the
    references. `inputs` / `outputs` are the buffer ids a graph reads and writes (by their tensor
    names `b<id>`); `guards` the names of its MaxPool guards."""

    instrs: list
    model: bytes | None = None
    weights: dict = field(default_factory=dict)
    inputs: list = field(default_factory=list)
    outputs: list = field(default_factory=list)
    guards: list = field(default_factory=list)
    #: gives the resident pages of a mapped weights file back once a session has read them
    release: object = field(default=None, repr=False, compare=False)


def name(bid: int) -> str:
    return f"b{bid}"


class Builder:
    """The nodes of one graph in the making, and what an op's `graph` method may call."""

    def __init__(self, program, constants: list, block: int | None):
        self.program, self.constants, self.block = program, constants, block
        self.nodes: list = []
        self.weights: dict = {}
        self.embedded: list = []    # initializers held in the graph itself
        self.names: dict = {}       # buffer id -> tensor name holding it (plain layout)
        self.blocked: dict = {}     # buffer id -> tensor name holding it blocked
        self.reads: set = set()     # buffers the graph takes as inputs
        self.guards: list = []
        self._count = 0

    def fresh(self, hint: str) -> str:
        self._count += 1
        return f"{hint}_{self._count}"

    def node(self, op: str, inputs: list, attrs: dict | None = None, domain: str = "",
             outputs: int = 1, hint: str = "t") -> list:
        """Append one node; returns its output names."""
        from onnx import helper, numpy_helper
        outs = [self.fresh(hint) for _ in range(outputs)]
        node = helper.make_node(op, inputs, outs, domain=domain)
        for key, value in (attrs or {}).items():
            if value is None:
                continue
            if isinstance(value, np.ndarray):
                value = numpy_helper.from_array(value)
            node.attribute.append(helper.make_attribute(key, value))
        self.nodes.append(node)
        return outs

    def const(self, array: np.ndarray, hint: str = "c") -> str:
        key = self.fresh(hint)
        self._initializer(key, array)
        return key

    def _initializer(self, key: str, array: np.ndarray) -> None:
        """Small and integer constants (shapes, axes: onnxruntime reads them while it builds the
        session) go into the graph; the rest are fed from memory (external initializers)."""
        array = np.require(array, requirements="C")  # keeps a 0-d array 0-d
        if array.nbytes <= EMBED_BYTES or array.dtype.kind not in "f":
            from onnx import numpy_helper
            self.embedded.append(numpy_helper.from_array(array, key))
        else:
            self.weights[key] = array

    def guard(self, tensor: str) -> None:
        """A graph output that is not finite when `tensor` holds a NaN (or an inf)."""
        total, = self.node("ReduceSum", [tensor], {"keepdims": 0}, hint="guard")
        self.guards.append(total)

    # -- buffers ---------------------------------------------------------------------------------
    def plain(self, bid: int | None) -> str:
        """The name of buffer `bid` in the plain layout (a weight becomes an initializer, a
        buffer from outside the graph an input, a blocked one is reordered back once)."""
        if bid is None:
            return ""
        if bid in self.names:
            return self.names[bid]
        if bid in self.blocked:
            channels = self.program.buffers[bid].shape[1]
            out, = self.node("ReorderOutput", [self.blocked[bid]], {"channels": channels},
                             NCHWC, hint=f"b{bid}_plain")
        elif self.constants[bid] is not None:
            out = name(bid)
            self._initializer(out, self.constants[bid])
        else:
            out = name(bid)
            self.reads.add(bid)
        self.names[bid] = out
        return out

    def blocked_input(self, bid: int) -> str:
        if bid not in self.blocked:
            self.blocked[bid], = self.node("ReorderInput", [self.plain(bid)], domain=NCHWC,
                                           hint=f"b{bid}_nchwc")
        return self.blocked[bid]


def _rounded(b: Builder, tensor: str, to: str | None) -> str:
    """`tensor` rounded to `to` (bfloat16 or float16) and back to float32, or as it is."""
    if to is None:
        return tensor
    from onnx import TensorProto
    narrow = TensorProto.BFLOAT16 if to == dtypes.BF16 else TensorProto.FLOAT16
    low, = b.node("Cast", [tensor], {"to": narrow}, hint="narrow")
    out, = b.node("Cast", [low], {"to": TensorProto.FLOAT}, hint="rounded")
    return out


def _epilogue(b: Builder, instr, result: str, post: list, read) -> str:
    for p in post:
        p_op = get_op(p["op"])
        args = [result if i == -1 else read(i) for i in p["inputs"]]
        result, = p_op.graph(b, args, _attrs(p["attrs"]), 1)
    return result


def _attrs(raw: dict) -> dict:
    from ..neff.verify import decode_attrs
    return {k: v for k, v in decode_attrs(raw).items() if v is not None}


class Lowering:
    """Decides, instruction by instruction, what runs in a graph, and lowers it."""

    def __init__(self, program, constants: list, rounding: dict, block: int | None,
                 precision: str):
        self.program, self.constants, self.rounding = program, constants, rounding
        self.block, self.hardware = block, precision == "hardware"
        self.takes_blocked: set = set()
        for instr in program.instrs:
            if instruction_op(instr.op).reads_blocked:
                self.takes_blocked.update(instr.inputs)

    # -- what joins a graph ----------------------------------------------------------------------
    def in_graph(self, instr) -> bool:
        if instr.op == CAST:
            return True
        ops = [(get_op(instr.op), instr.attrs)] + [(get_op(p["op"]), p["attrs"])
                                                     for p in instr.post]
        if not all(op.graph_takes(attrs) for op, attrs in ops):
            return False
        probed = [op for op, _ in ops if op.graph_kernel == "probed"]
        if not probed or not self.hardware:
            return True
        return not instr.post and self._probe_holds(instr)

    def _probe_holds(self, instr) -> bool:
        """Whether a probed op's onnxruntime kernel gives the reference's bits on this
        instruction's stored inputs, after its output's rounding."""
        from .probe import matches_reference
        floats = [i for i in instr.inputs if i is not None
                  and dtypes.is_float(self.program.buffers[i].dtype)]
        source = floats[0] if floats else None
        if source is None or len(instr.outputs) != 1:
            return False
        stored = self._storage(source)
        to = self.rounding.get(instr.outputs[0])
        others = [self.constants[i] for i in instr.inputs[1:] if i is not None]
        if stored not in (dtypes.BF16, dtypes.FP16) or to is None or any(
                c is None or c.size != 1 for c in others) or instr.inputs[0] != source:
            return False
        return matches_reference(instr.op, _attrs(instr.attrs), others, stored, to)

    def _storage(self, bid: int) -> str | None:
        buf = self.program.buffers[bid]
        if self.constants[bid] is not None:
            return self.rounding.get(bid) or buf.storage if buf.storage in (
                dtypes.BF16, dtypes.FP16) and self.hardware else None
        return self.rounding.get(bid)

    # -- segments --------------------------------------------------------------------------------
    def segments(self) -> list:
        runs, current, joins = [], [], None
        for k, instr in enumerate(self.program.instrs):
            here = self.in_graph(instr)
            if current and here != joins:
                runs.append((joins, current))
                current = []
            current.append(k)
            joins = here
        if current:
            runs.append((joins, current))
        later_reads = self._later_reads()
        return [self._graph(ks, later_reads) if joins else Segment(ks) for joins, ks in runs]

    def _later_reads(self) -> list:
        """Per instruction index k, the buffers read by instructions after k or returned."""
        out = [set() for _ in self.program.instrs]
        seen = set(self.program.outputs)
        for k in range(len(self.program.instrs) - 1, -1, -1):
            out[k] = set(seen)
            instr = self.program.instrs[k]
            seen.update(i for i in instr.inputs if i is not None)
            seen.update(i for p in instr.post for i in p["inputs"] if i not in (-1, None))
        return out

    def _graph(self, ks: list, later_reads: list) -> Segment:
        from onnx import TensorProto, helper
        b = Builder(self.program, self.constants, self.block)
        for k in ks:
            self._lower(b, self.program.instrs[k])
        produced = {o for k in ks for o in self.program.instrs[k].outputs}
        outputs = sorted(produced & later_reads[ks[-1]])
        buffers = self.program.buffers
        graph_outputs, out_names = [], []
        for bid in outputs:
            tensor = b.plain(bid)
            if tensor in out_names or bid in b.reads:  # an alias of another output or an input
                tensor, = b.node("Identity", [tensor], hint=f"b{bid}_out")
            out_names.append(tensor)
            graph_outputs.append(helper.make_tensor_value_info(
                tensor, _elem(buffers[bid].dtype), list(buffers[bid].shape)))
        graph_outputs += [helper.make_tensor_value_info(g, TensorProto.FLOAT, [])
                          for g in b.guards]
        inputs = sorted(b.reads)
        graph = helper.make_graph(
            b.nodes, "neuron_program",
            [helper.make_tensor_value_info(name(i), _elem(buffers[i].dtype),
                                           list(buffers[i].shape)) for i in inputs],
            graph_outputs,
            [kernels.external(n, a) for n, a in b.weights.items()] + b.embedded)
        model = helper.make_model(graph, opset_imports=[
            helper.make_opsetid("", OPSET), helper.make_opsetid(NCHWC, 1)])
        model.ir_version = min(model.ir_version, 10)
        segment = Segment(ks, model.SerializeToString(), b.weights, inputs, outputs, b.guards)
        segment.output_names = out_names
        return segment

    # -- one instruction -------------------------------------------------------------------------
    def _lower(self, b: Builder, instr) -> None:
        if instr.op == CAST:
            out = instr.outputs[0]
            to = instr.attrs["to"] if self.hardware else None
            source = instr.inputs[0]
            if source in b.blocked:
                b.blocked[out] = _rounded(b, b.blocked[source], to)
            else:
                b.names[out] = _rounded(b, b.plain(source), to)
            return
        from .executor import output_rounding
        rounds = output_rounding(instr, self.program.buffers, self.rounding)
        op = get_op(instr.op)
        if self._blocked_conv(b, instr, rounds) or self._blocked_pool(b, instr, rounds):
            return
        if kernels.layout_free(instr, self.program.buffers, b.blocked):
            read = b.blocked.__getitem__
            result, = op.graph(b, [read(i) for i in instr.inputs], _attrs(instr.attrs), 1)
            b.blocked[instr.outputs[0]] = _rounded(b, _epilogue(b, instr, result, instr.post,
                                                                read), rounds[0])
            return
        args = [b.plain(i) for i in instr.inputs]
        results = op.graph(b, args, _attrs(instr.attrs), len(instr.outputs))
        results[0] = _epilogue(b, instr, results[0], instr.post, b.plain)
        for bid, tensor, to in zip(instr.outputs, results, rounds):
            b.names[bid] = _rounded(b, tensor, to)

    def _blocked_conv(self, b: Builder, instr, rounds: list) -> bool:
        if (not self.block or "blocked-conv" not in get_op(instr.op).fast_kernels
                or len(instr.outputs) != 1
                or not self.takes_blocked & set(instr.outputs)):
            return False
        source = instr.inputs[0]
        found = kernels.nchwc_conv_plan(instr, self.program.buffers, self.constants, self.block,
                                        source in b.blocked)
        if found is None:
            return False
        attrs, relu, plain_input = found
        w = kernels.block_filter(self.constants[instr.inputs[1]], self.block,
                                  attrs.get("group", 1))
        names = [b.plain(source) if plain_input else b.blocked_input(source), b.const(w, "w")]
        if len(instr.inputs) > 2 and instr.inputs[2] is not None:
            names.append(b.plain(instr.inputs[2]))
        result, = b.node("Conv", names, dict(attrs, activation="Relu") if relu else attrs,
                         NCHWC, hint="conv")
        post = instr.post[1:] if relu else instr.post
        read = b.plain  # the epilogue's other operands are single values
        b.blocked[instr.outputs[0]] = _rounded(b, _epilogue(b, instr, result, post, read),
                                               rounds[0])
        return True

    def _blocked_pool(self, b: Builder, instr, rounds: list) -> bool:
        source = instr.inputs[0] if instr.inputs else None
        if (not self.block or "blocked-pool" not in get_op(instr.op).fast_kernels
                or source not in b.blocked):
            return False
        attrs = kernels.nchwc_pool_attrs(instr)
        if attrs is None:
            return False
        b.guard(b.blocked[source])
        result, = b.node("MaxPool", [b.blocked[source]], attrs, NCHWC, hint="pool")
        b.blocked[instr.outputs[0]] = _rounded(b, result, rounds[0])
        return True


def _elem(dtype: str) -> int:
    """The ONNX element type holding buffers of `dtype` (every float in a float32 container)."""
    from onnx import TensorProto, helper
    if dtypes.is_float(dtype):
        return TensorProto.FLOAT
    return helper.np_dtype_to_tensor_dtype(dtypes.to_numpy(dtype))
