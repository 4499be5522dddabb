"""Lowering: IR graph -> NeuronCore program.

Each TensorEngine op absorbs the elementwise ops that follow it alone (bias add, activation) into its
PSUM-evacuation epilogue, as the ScalarEngine does on the hardware: the epilogue runs in fp32 and the
result is rounded once. Values cross to the precision an engine needs through explicit cast
instructions, placed once per (value, dtype).
"""
from __future__ import annotations

import math

import numpy as np

from .. import dtypes
from ..hw import INF1, NeuronCoreConfig
from ..ops import CAST, DMA, SCALAR_ENGINE, TENSOR_ENGINE, get_op
from .options import CastPolicy
from .precision import assign_storage, needs_cast, required_dtype
from .program import Buffer, Instr, Program

def _fusable(node, value) -> bool:
    """Whether `node`, reading TensorEngine result `value`, joins that op's epilogue (as its op
    declares: Op.epilogue)."""
    others = [v for v in node.inputs if v is not None and v is not value]
    if not all(v.is_const for v in others) or len(node.outputs) != 1:
        return False
    kind = get_op(node.op_type).epilogue
    if kind == "unary":
        return True
    return (kind == "binary" and value in node.inputs[:2]
            and node.outputs[0].type.shape == value.type.shape)


def fusion_groups(graph) -> list:
    """Nodes grouped into instructions: a TensorEngine op plus its epilogue, or a node alone."""
    absorbed, groups = set(), []
    outputs = {id(v) for v in graph.outputs}
    for node in graph.nodes:
        if id(node) in absorbed:
            continue
        group = [node]
        if get_op(node.op_type).engine == TENSOR_ENGINE:
            cur = node
            while len(cur.outputs) == 1 and id(cur.outputs[0]) not in outputs:
                out = cur.outputs[0]
                if len(out.users) != 1 or not _fusable(out.users[0], out):
                    break
                cur = out.users[0]
                group.append(cur)
                absorbed.add(id(cur))
        groups.append(group)
    return groups


def jsonable(value):
    """Attribute values as JSON: numpy scalars to numbers, small arrays tagged with their dtype."""
    if isinstance(value, np.ndarray):
        return {"__ndarray__": value.tolist(), "dtype": value.dtype.name}
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    return value


class LowerCtx:
    """What an op's `lower` sees: `emit` one instruction for the node being lowered."""

    def __init__(self, graph, policy: CastPolicy, hw: NeuronCoreConfig, groups: list,
                 storage: dict):
        self.graph, self.policy, self.hw = graph, policy, hw
        self.groups, self.storage = groups, storage
        self.buffers: list[Buffer] = []
        self.instrs: list[Instr] = []
        self.weights: dict = {}
        self._buf: dict = {}
        self._casts: dict = {}
        self.group: list = []

    # -- buffers ----------------------------------------------------------------------------------
    def _new_buffer(self, name, type, storage, kind) -> int:
        nbytes = type.numel * dtypes.itemsize(storage if dtypes.is_float(type.dtype) else type.dtype)
        buf = Buffer(len(self.buffers), name, tuple(type.shape), type.dtype, storage, kind,
                     nbytes=nbytes)
        self.buffers.append(buf)
        return buf.id

    def buffer(self, value) -> int:
        if id(value) not in self._buf:
            kind = "weight" if value.is_const else "internal"
            bid = self._new_buffer(value.name, value.type, self.storage[id(value)], kind)
            if value.is_const:
                self.weights[value.name] = value.const
            self._buf[id(value)] = bid
        return self._buf[id(value)]

    def read(self, node, index: int) -> int | None:
        """The buffer `node` reads at input `index`, cast first if its engine needs it."""
        value = node.inputs[index]
        if value is None:
            return None
        bid = self.buffer(value)
        required = required_dtype(node, index, self.policy)
        if not dtypes.is_float(value.type.dtype) or not needs_cast(self.buffers[bid].storage,
                                                                   required):
            return bid
        key = (bid, required)
        if key not in self._casts:
            out = self._new_buffer(f"{value.name}.{dtypes.SHORT[required]}", value.type, required,
                                   "internal")
            self.instrs.append(Instr(SCALAR_ENGINE, CAST, [bid], [out], {"to": required},
                                     node=node.name, flops=value.type.numel,
                                     bytes=self.buffers[bid].nbytes + self.buffers[out].nbytes))
            self._casts[key] = out
        return self._casts[key]

    # -- emission ---------------------------------------------------------------------------------
    def emit(self, node, engine: str, op: str | None = None, attrs: dict | None = None) -> Instr:
        """One instruction for `node` (and the epilogue of its fusion group)."""
        ins = [self.read(node, i) for i in range(len(node.inputs))]
        post, chained = [], node.outputs[0]
        for follower in self.group[1:]:
            pos = follower.inputs.index(chained)
            args = [-1 if i == pos else self.read(follower, i) for i in range(len(follower.inputs))]
            post.append({"op": follower.op_type, "attrs": jsonable(follower.attrs), "inputs": args})
            chained = follower.outputs[0]
        outs = [self.buffer(v) for v in self.group[-1].outputs] if self.group else \
            [self.buffer(v) for v in node.outputs]
        flops = bytes_ = 0
        matmul = None
        for member in self.group or [node]:
            cost = get_op(member.op_type).cost(member)
            flops += cost.flops
            bytes_ += cost.bytes
            matmul = matmul or cost.matmul
        instr = Instr(engine, op or node.op_type, ins, outs,
                      jsonable(attrs if attrs is not None else node.attrs), post,
                      node=",".join(n.name for n in self.group or [node]), flops=int(flops),
                      bytes=int(bytes_), matmul=list(matmul) if matmul else None)
        if matmul:
            instr.tiles = tile_plan(matmul, self.policy, self.hw)
        self.instrs.append(instr)
        return instr


def tile_plan(matmul, policy: CastPolicy, hw: NeuronCoreConfig) -> dict:
    """How the PE array covers a (count, m, k, n) matmul: passes of pe_rows x pe_cols, a moving
    dimension chunked so the fp32 partial sums fit in PSUM, and the bytes DMA'd when the working set
    overflows the state buffer (the stationary operand is then re-fetched per chunk)."""
    count, m, k, n = (int(x) for x in matmul)
    k_tiles, n_tiles = math.ceil(k / hw.pe_rows), math.ceil(n / hw.pe_cols)
    m_chunk = max(1, min(m, hw.psum_bytes // (hw.pe_cols * 4 * 2)))  # double-buffered PSUM
    m_chunks = math.ceil(m / m_chunk)
    item = dtypes.itemsize(policy.matmul)
    moving, stationary = m * k * item, k * n * item
    fits = moving + stationary <= hw.sbuf_bytes
    dma = count * (moving + stationary * (1 if fits else m_chunks))
    return {"pe_passes": count * k_tiles * n_tiles * m_chunks, "k_tiles": k_tiles,
            "n_tiles": n_tiles, "m_chunk": m_chunk, "m_chunks": m_chunks,
            "psum_bytes": m_chunk * hw.pe_cols * 4, "sbuf_fits": fits, "dma_bytes": int(dma)}


def lower(graph, policy: CastPolicy, hw: NeuronCoreConfig = INF1, groups: list | None = None,
          storage: dict | None = None):
    """Lower a fully supported graph whose nodes are grouped into instructions (`groups`, see
    fusion_groups) and whose values have their storage precision (`storage`, see
    precision.assign_storage; both computed here when not given); returns (Program, weights by
    buffer name)."""
    groups = fusion_groups(graph) if groups is None else groups
    storage = assign_storage(graph, policy, groups) if storage is None else storage
    ctx = LowerCtx(graph, policy, hw, groups, storage)
    for v in graph.inputs:
        bid = ctx.buffer(v)
        ctx.buffers[bid].kind = "input"
    inputs = [ctx.buffer(v) for v in graph.inputs]
    for group in ctx.groups:
        ctx.group = group
        get_op(group[0].op_type).lower(ctx, group[0])
    ctx.group = []
    outputs = []
    for v in graph.outputs:
        bid = ctx.buffer(v)
        if ctx.buffers[bid].kind in ("input", "weight") or bid in outputs:
            # an output must be its own buffer: copy inputs, constants and repeated outputs
            src = bid
            bid = ctx._new_buffer(v.name, v.type, ctx.buffers[src].storage, "output")
            ctx.instrs.append(Instr(DMA, "Identity", [src], [bid], node=v.name,
                                    bytes=2 * ctx.buffers[src].nbytes))
        ctx.buffers[bid].kind = "output"
        outputs.append(bid)
    program = Program(ctx.buffers, ctx.instrs, inputs, outputs)
    return program, ctx.weights
