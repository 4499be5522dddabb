"""The program verifier: what a NEFF's JSON sections must be before the runtime loads them.

The section hashes prove that a file is what its writer wrote, not that the writer told the
truth: a NEFF edited and re-written with `to_bytes` has valid hashes. So, as an IR verifier does,
the runtime checks every field at load, in two passes:

1. **Schema** (pydantic, strict): every field of the metadata's interface and of the program has
   its type and range: buffer ids, shapes of at most MAX_RANK dimensions, dtypes from the
   supported set, engines by name, the memory totals as counts. Per-NEFF limits (instruction and
   buffer counts, tensor sizes, attribute sizes and nesting) are checked here, before anything is
   allocated from them.
2. **Consistency**: buffers are numbered in order and sized by their shape and storage; the
   metadata's inputs and outputs are the program's; every weight buffer has its array in the
   weights index (same name, shape and dtype); every instruction reads only buffers that exist
   and are defined before it, writes each buffer once, frees only scratch that nothing reads
   afterwards, and produces the shapes and dtypes its op infers from its operands; the memory
   totals add up and every buffer lies inside them.

Any fault is a NeffFormatError naming the field (`program.instrs[12].inputs[0]`), so a damaged
or hostile file never reaches the kernels.
"""
from __future__ import annotations

import functools
import math
from typing import Annotated, Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from .. import dtypes
from ..errors import NeffFormatError, NeuronError

#: per-NEFF limits, checked before anything is allocated from the file's numbers
MAX_INSTRUCTIONS = 1 << 16
MAX_BUFFERS = 1 << 18
MAX_RANK = 16
#: one tensor's bytes (a whole Inf1 chip has 8 GiB of DRAM)
MAX_TENSOR_BYTES = 1 << 34
#: the most elements one attribute array may hold (a 1-D Gather index list of a large embedding
#: fits; a megabyte-sized attribute would be a damaged or hostile file)
MAX_ATTR_ELEMENTS = 1 << 20
MAX_ATTR_DEPTH = 8
MAX_NAME = 4096
#: what a cast instruction may round to
CAST_TO = (dtypes.BF16, dtypes.FP16, dtypes.FP32)

DType = Literal[tuple(dtypes.SHORT)]
Count = Annotated[int, Field(ge=0, le=1 << 48)]
Dim = Annotated[int, Field(ge=0, le=1 << 40)]
Shape = Annotated[list[Dim], Field(max_length=MAX_RANK)]
Name = Annotated[str, Field(max_length=MAX_NAME)]
BufferId = Annotated[int, Field(ge=0, lt=MAX_BUFFERS)]


class _Strict(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid", frozen=True)


class _Tensor(_Strict):
    model_config = ConfigDict(strict=True, extra="allow", frozen=True)
    name: Name
    shape: Shape
    dtype: DType


class _Options(BaseModel):
    """The compiler options the runtime reads (the others are kept as they are)."""

    model_config = ConfigDict(strict=True, extra="allow", frozen=True)
    neuroncore_pipeline_cores: Annotated[int, Field(ge=1, le=64)] = 1


class _Metadata(BaseModel):
    """The fields of the metadata that the runtime and the estimates read."""

    model_config = ConfigDict(strict=True, extra="allow", frozen=True)
    inputs: Annotated[list[_Tensor], Field(max_length=MAX_BUFFERS)]
    outputs: Annotated[list[_Tensor], Field(min_length=1, max_length=MAX_BUFFERS)]
    options: _Options = _Options()
    source: str = ""


class _Post(_Strict):
    op: Name
    attrs: dict[str, Any]
    inputs: Annotated[list[Annotated[int, Field(ge=-1, lt=MAX_BUFFERS)] | None],
                      Field(max_length=64)]
    position: int | None = None


class _Buffer(_Strict):
    id: BufferId
    name: Name
    shape: Shape
    dtype: DType
    storage: DType
    kind: Literal["input", "output", "weight", "internal"]
    offset: Annotated[int, Field(ge=-1, le=1 << 48)] = -1
    nbytes: Count = 0


class _Instr(_Strict):
    engine: str
    op: Name
    inputs: Annotated[list[BufferId | None], Field(max_length=1 << 12)]
    outputs: Annotated[list[BufferId], Field(min_length=1, max_length=64)]
    attrs: dict[str, Any]                            # what the op computes: never implied
    post: Annotated[list[_Post], Field(max_length=64)]
    node: Annotated[str, Field(max_length=1 << 20)] = ""
    flops: Count = 0
    bytes: Count = 0
    matmul: Annotated[list[Count], Field(min_length=4, max_length=4)] | None = None
    tiles: dict[str, Count | bool] = {}
    free: Annotated[list[BufferId], Field(max_length=MAX_BUFFERS)] = []


class _Program(_Strict):
    model_config = ConfigDict(strict=True, extra="allow", frozen=True)
    buffers: Annotated[list[_Buffer], Field(max_length=MAX_BUFFERS)]
    instrs: Annotated[list[_Instr], Field(max_length=MAX_INSTRUCTIONS)]
    inputs: list[BufferId]
    outputs: Annotated[list[BufferId], Field(min_length=1)]
    memory: dict[str, Count]


def _schema_error(section: str, exc: ValidationError, where: str) -> NeffFormatError:
    first = exc.errors(include_url=False)[0]
    path = section + "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in first["loc"])
    value = repr(first.get("input"))
    value = value if len(value) <= 80 else value[:77] + "..."
    more = f" (and {exc.error_count() - 1} more faults)" if exc.error_count() > 1 else ""
    return NeffFormatError(f"{path} of {where}: {first['msg']}, got {value}{more}: the NEFF is "
                           "damaged; compile the model again")


def check_schema(neff, where: str | None = None) -> None:
    """Pass 1: the metadata and the program against their schemas (NeffFormatError naming the
    first field at fault)."""
    where = where or (repr(neff.path) if neff.path else "<bytes>")
    for section, model, data in (("metadata", _Metadata, neff.metadata),
                                 ("program", _Program, neff.program)):
        try:
            model.model_validate(data)
        except ValidationError as exc:
            raise _schema_error(section, exc, where) from None


# ------------------------------------------------------------------------------- attributes

def attr_array(value: dict) -> np.ndarray:
    """A tagged attribute array ({"__ndarray__": nested lists, "dtype": ...}) as numpy: only
    bool, integer or float arrays of at most MAX_ATTR_ELEMENTS elements are made."""
    try:
        dtype = np.dtype(value.get("dtype"))
    except TypeError:
        dtype = None
    if dtype is None or dtype.kind not in "biuf" or dtype.itemsize > 8:
        raise NeffFormatError(f"an instruction attribute declares dtype {value.get('dtype')!r}; "
                              "NEFF attributes are bool, integer or float arrays: the file is "
                              "damaged, compile it again")
    data = value.get("__ndarray__")
    count, stack = 0, [data]
    while stack:                    # count elements before numpy allocates anything
        item = stack.pop()
        if isinstance(item, list):
            stack.extend(item)
        else:
            count += 1
        if count > MAX_ATTR_ELEMENTS or len(stack) > MAX_ATTR_ELEMENTS:
            raise NeffFormatError(f"an instruction attribute holds more than {MAX_ATTR_ELEMENTS} "
                                  "elements: the file is damaged, compile it again")
    try:
        arr = np.asarray(data, dtype=dtype)
    except (TypeError, ValueError, OverflowError) as exc:
        raise NeffFormatError(f"an instruction attribute is not a {dtype.name} array ({exc}): "
                              "the file is damaged, compile it again") from None
    if arr.ndim > MAX_RANK:
        raise NeffFormatError(f"an instruction attribute array has {arr.ndim} dimensions (at "
                              f"most {MAX_RANK}): the file is damaged, compile it again")
    return arr


def decode_attrs(value, depth: int = 0):
    """Inverse of lowering.jsonable: tagged arrays back to numpy, everything else plain JSON of at
    most MAX_ATTR_DEPTH levels; anything else is a NeffFormatError."""
    if depth > MAX_ATTR_DEPTH:
        raise NeffFormatError(f"an instruction attribute is nested more than {MAX_ATTR_DEPTH} "
                              "levels deep: the file is damaged, compile it again")
    if isinstance(value, dict):
        if "__ndarray__" in value:
            return attr_array(value)
        return {k: decode_attrs(v, depth + 1) for k, v in value.items()}
    if isinstance(value, list):
        if len(value) > MAX_ATTR_ELEMENTS:
            raise NeffFormatError(f"an instruction attribute list holds more than "
                                  f"{MAX_ATTR_ELEMENTS} items: the file is damaged")
        return [decode_attrs(v, depth + 1) for v in value]
    return value


@functools.lru_cache(maxsize=None)
def _attr_types(op: str) -> dict:
    """Attribute name -> ONNX attribute type name of an instruction op (every op the runtime runs
    is an ONNX op; the cast instruction takes `to` alone), plus the op's own defaults."""
    from ..ops import CAST
    from ..ops.attr_schema import ATTRIBUTES
    from ..ops.registry import get_op
    if op == CAST:
        return {"to": "STRING"}
    types = dict(ATTRIBUTES.get(op, {}))
    for name in get_op(op).defaults:
        types.setdefault(name, None)
    return types


def _is_number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _is_int(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and -(1 << 63) <= v < 1 << 63


_ATTR_CHECKS = {
    "FLOAT": (_is_number, "a finite number"),
    "INT": (_is_int, "an int64"),
    "STRING": (lambda v: isinstance(v, str), "a string"),
    "FLOATS": (lambda v: isinstance(v, list) and all(map(_is_number, v)), "a list of numbers"),
    "INTS": (lambda v: isinstance(v, list) and all(map(_is_int, v)), "a list of int64s"),
    "STRINGS": (lambda v: isinstance(v, list) and all(isinstance(x, str) for x in v),
                "a list of strings"),
    "TENSOR": (lambda v: isinstance(v, dict) and "__ndarray__" in v, "a tagged array"),
}


def _check_attrs(op: str, attrs: dict, place: str, where: str) -> None:
    """Every attribute is one the op's schema names, of the schema's type, and decodes within
    the limits."""
    types = _attr_types(op)
    for name, value in attrs.items():
        if name not in types:
            raise _fault(f"{place}.{name}", f"{op} has no attribute {name!r} (it takes "
                         f"{', '.join(sorted(types)) or 'none'})", where)
        kind = types[name]
        if kind is None:
            continue
        check, said = _ATTR_CHECKS.get(kind, (lambda v: False, f"a value it can run ({kind})"))
        if not check(value):
            shown = repr(value)
            raise _fault(f"{place}.{name}", f"{op}.{name} must be {said}, got "
                         f"{shown if len(shown) <= 60 else shown[:57] + '...'}", where)
    decode_attrs(attrs)


# ------------------------------------------------------------------------------ consistency

def _fault(field_name: str, what: str, where: str) -> NeffFormatError:
    return NeffFormatError(f"{field_name} of {where}: {what}: the NEFF is damaged; compile the "
                           "model again")


def _storage_bytes(b) -> int:
    kind = b.storage if dtypes.is_float(b.dtype) else b.dtype
    return math.prod(b.shape) * dtypes.itemsize(kind)


def _check_buffers(program, where: str) -> None:
    weights_names = set()
    for i, b in enumerate(program.buffers):
        at = f"program.buffers[{i}]"
        if b.id != i:
            raise _fault(f"{at}.id", f"is {b.id}, buffers are numbered in order", where)
        if dtypes.is_float(b.dtype) != dtypes.is_float(b.storage) or \
                (not dtypes.is_float(b.dtype) and b.storage != b.dtype):
            raise _fault(f"{at}.storage", f"{b.storage} cannot hold a {b.dtype} tensor", where)
        nbytes = _storage_bytes(b)
        if nbytes > MAX_TENSOR_BYTES:
            raise _fault(f"{at}.shape", f"{list(b.shape)} of {b.storage} is {nbytes} bytes, more "
                         f"than one tensor may hold ({MAX_TENSOR_BYTES})", where)
        if b.nbytes != nbytes:
            raise _fault(f"{at}.nbytes", f"is {b.nbytes}, but {list(b.shape)} stored as "
                         f"{b.storage} is {nbytes} bytes", where)
        if b.kind == "weight":
            if b.name in weights_names:
                raise _fault(f"{at}.name", f"weight {b.name!r} appears twice", where)
            weights_names.add(b.name)
    for side, kind in (("inputs", "input"), ("outputs", "output")):
        ids = getattr(program, side)
        for k, bid in enumerate(ids):
            if bid >= len(program.buffers) or program.buffers[bid].kind != kind:
                raise _fault(f"program.{side}[{k}]", f"b{bid} is not an {kind} buffer", where)
        if len(set(ids)) != len(ids):
            raise _fault(f"program.{side}", f"names a buffer twice: {ids}", where)
        declared = sum(1 for b in program.buffers if b.kind == kind)
        if declared != len(ids):
            raise _fault(f"program.{side}", f"lists {len(ids)} buffers, the program has "
                         f"{declared} of kind {kind!r}", where)


def _check_interface(metadata: dict, program, where: str) -> None:
    for side in ("inputs", "outputs"):
        declared, ids = metadata[side], getattr(program, side)
        if len(declared) != len(ids):
            raise _fault(f"metadata.{side}", f"declares {len(declared)} tensors, the program has "
                         f"{len(ids)}", where)
        for k, (d, bid) in enumerate(zip(declared, ids)):
            b = program.buffers[bid]
            if d["dtype"] != b.dtype or list(d["shape"]) != list(b.shape):
                raise _fault(f"metadata.{side}[{k}]", f"{d['dtype']}{list(d['shape'])} does not "
                             f"match program buffer b{bid} ({b.dtype}{list(b.shape)})", where)
    names = [d["name"] for d in metadata["inputs"]]
    if len(set(names)) != len(names):
        raise _fault("metadata.inputs", f"names an input twice: {names}", where)


def _check_weights(program, index: dict, where: str) -> None:
    for i, b in enumerate(program.buffers):
        if b.kind != "weight":
            continue
        e = index.get(b.name)
        if e is None:
            raise _fault(f"program.buffers[{i}]", f"weight {b.name!r} has no array in the "
                         "weights section", where)
        if e["dtype"] != b.dtype or list(e["shape"]) != list(b.shape):
            raise _fault(f"weights.index[{b.name!r}]", f"{e['dtype']}{e['shape']} does not match "
                         f"its buffer b{i} ({b.dtype}{list(b.shape)})", where)


def _check_memory(program, where: str) -> None:
    memory = program.memory
    for key in ("weights_bytes", "io_bytes", "scratch_peak_bytes", "total_bytes"):
        if key not in memory:
            raise _fault("program.memory", f"has no {key!r}", where)
    aligned = {kind: sum(-(-b.nbytes // 64) * 64 for b in program.buffers if b.kind in kinds)
               for kind, kinds in (("weights_bytes", ("weight",)),
                                   ("io_bytes", ("input", "output")))}
    for key, total in aligned.items():
        if memory[key] != total:
            raise _fault(f"program.memory.{key}", f"is {memory[key]}, its buffers take {total}",
                         where)
    total = memory["weights_bytes"] + memory["io_bytes"] + memory["scratch_peak_bytes"]
    if memory["total_bytes"] != total:
        raise _fault("program.memory.total_bytes", f"is {memory['total_bytes']}, the parts add "
                     f"up to {total}", where)
    for i, b in enumerate(program.buffers):
        if b.offset < 0 or b.offset + b.nbytes > total:
            raise _fault(f"program.buffers[{i}].offset", f"bytes {b.offset}..{b.offset + b.nbytes}"
                         f" lie outside the model's {total} bytes of device memory", where)


def _check_instrs(program, where: str) -> None:
    from ..ops import CAST
    from ..ops.attr_schema import ARITY
    from ..ops.registry import ENGINES, has_op
    buffers = program.buffers
    defined = {b.id for b in buffers if b.kind in ("input", "weight")}
    freed: dict = {}
    written: set = set()
    for k, instr in enumerate(program.instrs):
        at = f"program.instrs[{k}]"
        if instr.engine not in ENGINES:
            raise _fault(f"{at}.engine", f"{instr.engine!r} is not an engine of the NeuronCore "
                         f"({', '.join(ENGINES)})", where)
        for op, place, ins, outs in [(instr.op, at, instr.inputs, instr.outputs)] + [
                (p["op"], f"{at}.post[{j}]", p["inputs"], [None])
                for j, p in enumerate(instr.post)]:
            if op != CAST and not has_op(op):
                raise _fault(f"{place}.op", f"{op!r} is not an op this runtime runs", where)
            fewest, most, fewest_out, most_out = ARITY.get(op, (1, 1, 1, 1))
            if not fewest <= len(ins) <= most or not fewest_out <= len(outs) <= most_out:
                raise _fault(place, f"{op} takes {fewest}..{most} inputs and {fewest_out}.."
                             f"{most_out} outputs, this one {len(ins)} and {len(outs)}", where)
            if None in ins[:fewest]:
                raise _fault(f"{place}.inputs", f"{op} needs its first {fewest} inputs, this one "
                             f"reads {ins}", where)
        if instr.op == CAST and (instr.attrs.get("to") not in CAST_TO or len(instr.inputs) != 1
                                 or None in instr.inputs or len(instr.outputs) != 1):
            raise _fault(f"{at}.attrs.to", f"a cast rounds one buffer to one of {', '.join(CAST_TO)}"
                         f", this one {instr.inputs} to {instr.attrs.get('to')!r}", where)
        reads = [(f"{at}.inputs[{j}]", i) for j, i in enumerate(instr.inputs) if i is not None]
        for j, p in enumerate(instr.post):
            reads += [(f"{at}.post[{j}].inputs[{m}]", i) for m, i in enumerate(p["inputs"])
                      if i is not None and i != -1]
            if p["inputs"].count(-1) != 1:
                raise _fault(f"{at}.post[{j}].inputs", "must read the chained value (-1) once",
                             where)
        for place, i in reads:
            if i >= len(buffers):
                raise _fault(place, f"names buffer {i}; the program has {len(buffers)}", where)
            if i in freed:
                raise _fault(place, f"reads b{i}, freed after instruction {freed[i]}", where)
            if i not in defined:
                raise _fault(place, f"reads b{i} before any instruction writes it", where)
        for j, o in enumerate(instr.outputs):
            if o >= len(buffers):
                raise _fault(f"{at}.outputs[{j}]", f"names buffer {o}; the program has "
                             f"{len(buffers)}", where)
            if buffers[o].kind in ("input", "weight") or o in written:
                raise _fault(f"{at}.outputs[{j}]", f"writes b{o}, which is "
                             f"{'written before' if o in written else 'a ' + buffers[o].kind}",
                             where)
            written.add(o)
            defined.add(o)
        for j, f in enumerate(instr.free):
            if f >= len(buffers) or buffers[f].kind != "internal" or f not in defined:
                raise _fault(f"{at}.free[{j}]", f"b{f} is not a scratch buffer defined by then",
                             where)
            freed.setdefault(f, k)
    for k, o in enumerate(program.outputs):
        if o not in written:
            raise _fault(f"program.outputs[{k}]", f"b{o} is never written", where)


def _check_shapes(program, weights: dict, where: str) -> None:
    """Every instruction's outputs have the types its op (and fused epilogue) infers from its
    operands, so no kernel meets a shape it was not compiled for."""
    from ..ir import Node, TensorType, Value
    from ..ops import CAST
    from ..ops.registry import get_op
    buffers = program.buffers
    values = [Value(b.name, TensorType(b.shape, b.dtype)) for b in buffers]
    for b, v in zip(buffers, values):
        if b.kind == "weight" and math.prod(b.shape) <= 4096:
            v.const = weights.get(b.name)      # shape parameters (Reshape's shape and the like)
    for k, instr in enumerate(program.instrs):
        if instr.op == CAST:
            inferred = [values[instr.inputs[0]].type] if len(instr.inputs) == 1 else None
        else:
            inferred = _infer(get_op(instr.op), Node(f"i{k}", instr.op,
                              [None if i is None else values[i] for i in instr.inputs],
                              [values[o] for o in instr.outputs], decode_attrs(instr.attrs)),
                              f"program.instrs[{k}]", where)
            for j, p in enumerate(instr.post):
                if inferred is None or len(inferred) != 1:
                    break
                chained = Value("chained", inferred[0])
                args = [chained if i == -1 else None if i is None else values[i]
                        for i in p["inputs"]]
                inferred = _infer(get_op(p["op"]), Node(f"i{k}.{j}", p["op"], args, [None],
                                                        decode_attrs(p["attrs"])),
                                  f"program.instrs[{k}].post[{j}]", where)
        got = [values[o].type for o in instr.outputs]
        if inferred is not None and any(t is None for t in inferred):
            inferred = None
        if inferred is None or [(t.shape, t.dtype) for t in inferred] != \
                [(t.shape, t.dtype) for t in got]:
            want = "?" if inferred is None else ", ".join(map(str, inferred))
            raise _fault(f"program.instrs[{k}].outputs", f"{instr.op} of "
                         f"({', '.join(str(values[i].type) for i in instr.inputs if i is not None)})"
                         f" gives {want}, the program says {', '.join(map(str, got))}", where)


def _infer(op, node, place: str, where: str):
    try:
        return list(op.infer(node, [None if v is None else v.type for v in node.inputs]))
    except NeuronError as exc:
        raise _fault(place, f"{node.op_type} does not take these operands ({exc})", where) from None
    except (ValueError, IndexError, TypeError, KeyError, AttributeError, ZeroDivisionError,
            OverflowError) as exc:
        raise _fault(place, f"{node.op_type} does not take these operands or attributes "
                     f"({type(exc).__name__}: {exc})", where) from None


def verify(neff, where: str | None = None, shapes: bool = True):
    """Check a read NEFF's metadata and program (both passes above) and return its Program.

    `shapes=False` skips the re-inference of every instruction's output types (the estimates,
    which only count, use it)."""
    from ..compiler.program import Program
    where = where or (repr(neff.path) if neff.path else "<bytes>")
    check_schema(neff, where)
    program = Program.from_json(neff.program)
    _check_buffers(program, where)
    _check_interface(neff.metadata, program, where)
    _check_weights(program, _index(neff), where)
    _check_memory(program, where)
    _check_instrs(program, where)
    for k, instr in enumerate(program.instrs):
        _check_attrs(instr.op, instr.attrs, f"program.instrs[{k}].attrs", where)
        for j, p in enumerate(instr.post):
            _check_attrs(p["op"], p["attrs"], f"program.instrs[{k}].post[{j}].attrs", where)
    if shapes:
        _check_shapes(program, neff._weights, where)
    return program


def _index(neff) -> dict:
    return {name: {"dtype": dtypes.canonical(a.dtype), "shape": list(a.shape)}
            for name, a in neff._weights.items()}
