"""Valid-hash edits of a NEFF: the sections' JSON edited, then written with neuron_core's own
writer (to_bytes; the container's assembler for weights.index and duplicated keys, which
to_bytes cannot express), so every hash is valid and the edit reaches the verifier and the
loader. The result must be a NeuronError or the unedited model's output, bit-identical.

Edit families (`FAMILIES`):
  metadata    inputs/outputs entries (name, shape, dtype, missing/extra keys; the list emptied,
              duplicated, reordered, replaced), options (and options.policy) and other fields
  buffer      id, name, shape, dtype, storage, kind, offset, nbytes, missing/extra keys; the
              buffers list emptied, duplicated, reordered, an entry deleted or replaced
  instr       op, engine, inputs, outputs, free, matmul, tiles, flops, bytes, node, missing and
              extra keys; the instrs list emptied, an entry duplicated, swapped, deleted, added
  post        a fused op's op name, attrs, inputs; missing/extra keys; the entry replaced
  attr        attribute TYPES and sizes: wrong types, huge ints, lists of another length or of
              100,000 elements, deep nesting (to 900 levels), tagged arrays {"__ndarray__": ...,
              "dtype": ...} with odd dtypes and payloads, extra attributes, attrs not a dict
  program     top-level keys (buffers, instrs, inputs, outputs, memory) missing or replaced,
              extra keys
  weights     a weight dropped, renamed, reshaped, added; stored as int8 / int32 / uint8 (the
              same bytes, typed otherwise), bool, or float64 (the same values)
  index       weights.index entries: dtype, shape, offset, nbytes, missing/extra keys, an entry
              deleted, duplicated, replaced, two entries at one offset
  dupkey      a top-level JSON key of metadata or program duplicated in the section's text

Edits NOT generated, because they make a different program that is still valid and so may
legitimately change the output:
  - a numeric attribute changed to another value of its type (LeakyRelu alpha 0.01 -> 0.02,
    pads [1,1,1,1] -> [0,2,0,2]): int attributes only get huge magnitudes (|v| >= 2**31) or
    other types, float attributes only non-numbers (bools and numeric strings such as "0.5"
    are generated: neither is a float)
  - an attribute removed (its default is a valid value), or added with a number (Gemm
    alpha=1.5 is a valid attribute of a valid program; added ones are strings, tagged arrays,
    nested lists and other non-numbers)
  - a cast's "to" changed to another float type; a buffer's dtype or storage changed between
    float32 / float16 / bfloat16 by any name ("f32", "bf16"): the same rounding choice as a
    cast's "to". (float64 storage is generated: the hardware has no float64.)
  - weight values changed (so no float16 weights: storing float32 weights as float16 rounds)
  - an instruction's op renamed to another registered op; a fused post op added, removed,
    duplicated or reordered (each a valid chain computing something else)
  - an instruction's optional inputs dropped or set to null (a Gemm without its bias C), down
    to the fewest its ONNX schema takes
  - an instruction's inputs rewired to buffers of the same shape and dtype (float storages
    counted as one) that hold a value at that point (an input, a weight, an earlier output not
    yet freed): a valid dataflow computing something else. Rewiring to a buffer of another
    shape or dtype, to one that holds nothing yet, or to one already freed, is generated.
  - a post op's inputs rewired to other buffers (only out-of-range and ill-typed ones are)

Every loop is bounded (a retry loop draws at most a few times).
"""
from __future__ import annotations

import copy
import json

import numpy as np

from neff_cases import FLOATS, Seed
from neff_values import (HUGE_INTS, ODD_DTYPES, Chooser, deep, dict_edit, hostile, int_value,
                         list_edit, other_types, tagged)

# ------------------------------------------------------------------------------------- editing

class Program:
    """What the buffer-rewiring rule needs to know of a program: signatures and liveness."""

    def __init__(self, program: dict):
        self.buffers = program.get("buffers", [])
        self.instrs = program.get("instrs", [])
        self.inputs = program.get("inputs", [])

    def signature(self, bid):
        if not isinstance(bid, int) or isinstance(bid, bool) or not 0 <= bid < len(self.buffers):
            return None
        b = self.buffers[bid]
        storage = b.get("storage")      # float storages differ only by a rounding choice
        return json.dumps([b.get("shape"), b.get("dtype"), "float" if storage in FLOATS else storage],
                          default=str)

    def live_before(self, k: int) -> set:
        """Buffers holding a value when instruction k starts: inputs, weights, earlier outputs
        not yet freed."""
        live = set(self.inputs) | {b.get("id") for b in self.buffers if b.get("kind") in ("weight", "const")}
        for instr in self.instrs[:k]:
            live |= set(instr.get("outputs", []))
            live -= set(instr.get("free", []))
        return live

    def is_valid_rewire(self, k: int, old: list, new: list) -> bool:
        """True when `new` instruction inputs are a valid dataflow computing something else (an
        excluded, legitimate edit): same-signature live buffers, or optional trailing inputs
        dropped (a Gemm without its bias)."""
        from neuron_core.ops.attr_schema import ARITY
        op = self.instrs[k].get("op") if k < len(self.instrs) else None
        fewest = ARITY.get(op, (len(old),))[0] if isinstance(op, str) else len(old)
        if fewest <= len(new) < len(old) and new == old[:len(new)]:
            return True
        if len(new) == len(old) and new != old and all(
                a == b or (j >= fewest and a is None) for j, (a, b) in enumerate(zip(new, old))):
            return True        # an optional input left out by null instead
        if new == old or len(new) != len(old):
            return False
        live = self.live_before(k)
        return all(self.signature(a) is not None and self.signature(a) == self.signature(b)
                   and a in live for a, b in zip(new, old))


def _ids_edit(ch: Chooser, ids: list, n: int) -> list:
    if not ids or ch.chance(3):
        return list_edit(ch, ids)
    ids = list(ids)
    k = ch.below(len(ids))
    ids[k] = ch.below(n) if ch.chance() else int_value(ch, ids[k], n)
    return ids


def edit_metadata(ch, meta, prog, weights) -> str:
    side = ch.pick(["inputs", "outputs", "options", "other"])
    if side in ("inputs", "outputs"):
        entries = meta.get(side)
        if not isinstance(entries, list) or not entries or ch.chance(4):
            meta[side] = hostile(ch, entries)
            return f"metadata.{side} replaced"
        k = ch.below(len(entries))
        entry = entries[k]
        field = ch.pick(["name", "shape", "dtype", "keys"])
        if field == "shape":
            shape = list(entry.get("shape", []))
            entry["shape"] = ch.pick([[], shape + [1], [1] + shape, shape[::-1], [-1] + shape[1:],
                                      [2 ** 40] * len(shape), [str(d) for d in shape], [0] * len(shape),
                                      [float(d) for d in shape], None, "x", shape * 2])
        elif field == "dtype":
            entry["dtype"] = ch.pick(["float16", "bfloat16", "int8", "int64", "bool", "f32", "float64",
                                      "complex64", "", None, 5, "float32 ", "FLOAT", ["float32"]])
        elif field == "name":
            entry["name"] = ch.pick(["", "other", None, 5, ["x"], "x" * 100_000, "\u0000"])
        else:
            return f"metadata.{side}[{k}] {dict_edit(ch, entry)}"
        return f"metadata.{side}[{k}].{field} = {_short(entry.get(field))}"
    if side == "options" and isinstance(meta.get("options"), dict):
        opts = meta["options"]
        if isinstance(opts.get("policy"), dict) and ch.chance():
            return f"metadata.options.policy {dict_edit(ch, opts['policy'])}"
        return f"metadata.options {dict_edit(ch, opts)}"
    return f"metadata {dict_edit(ch, meta)}"


def edit_buffer(ch, meta, prog, weights) -> str:
    buffers = prog["buffers"]
    if ch.chance(5):
        prog["buffers"] = list_edit(ch, buffers)
        return "program.buffers list edited"
    i = ch.below(len(buffers))
    b = buffers[i]
    field = ch.pick(["id", "name", "shape", "dtype", "storage", "kind", "offset", "nbytes", "keys"])
    n = len(buffers)
    if field == "keys":
        return f"buffers[{i}] {dict_edit(ch, b)}"
    old = b.get(field)
    if field in ("dtype", "storage"):
        choices = ["int8", "int32", "int64", "bool", "uint8", "float64", "complex64", "", "bogus", None, 5,
                   "FLOAT32"]
        if old not in FLOATS:     # float -> float (by any name, e.g. "f32") is a rounding choice
            choices += [*FLOATS, "f32", "bf16"]
        b[field] = ch.pick(choices)
    elif field == "kind":
        b[field] = ch.pick(["input", "output", "weight", "internal", "const", "", "bogus", None, 1])
    elif field == "shape":
        shape = list(old or [])
        b[field] = ch.pick([[], shape + [1], shape[::-1], [-1] + shape[1:], [2 ** 40] * max(1, len(shape)),
                            [0] * len(shape), [str(d) for d in shape], shape[:-1], None, "x", [2 ** 63]])
    elif field == "name":
        b[field] = ch.pick(["", None, 5, buffers[(i + 1) % n].get("name"), "x" * 100_000])
    else:
        b[field] = int_value(ch, old, n if field == "id" else (old or 0) * 2 + 64)
    return f"buffers[{i}].{field} = {_short(b.get(field))}"


def edit_instr(ch, meta, prog, weights) -> str:
    instrs = prog["instrs"]
    if ch.chance(5):
        kind = ch.below(5)
        if kind == 0:
            prog["instrs"] = []
        elif kind == 1 and len(instrs) > 0:
            k = ch.below(len(instrs))
            instrs.insert(k, copy.deepcopy(instrs[k]))
        elif kind == 2 and len(instrs) > 1:
            a, b = ch.below(len(instrs)), ch.below(len(instrs))
            instrs[a], instrs[b] = instrs[b], instrs[a]
        elif kind == 3 and len(instrs) > 0:
            del instrs[ch.below(len(instrs))]
        else:
            instrs.append(other_types(ch, None))
        return f"program.instrs list edit {kind}"
    k = ch.below(len(instrs))
    instr = instrs[k]
    n = len(prog["buffers"])
    field = ch.pick(["op", "engine", "inputs", "outputs", "free", "matmul", "tiles", "flops", "bytes",
                     "node", "keys"])
    if field == "keys":
        return f"instrs[{k}] {dict_edit(ch, instr, lambda key, v: other_types(ch, v))}"
    old = instr.get(field)
    if field == "op":
        instr[field] = ch.pick(["NotAnOp", "", str(old).lower(), f"{old} ", None, 5, [old], "_cast", "Constant",
                                "If", "Loop", "__class__", "ai.onnx::Relu"])
        if isinstance(instr[field], str) and instr[field] != "_cast" and instr[field] != old \
                and instr[field] in _registered_ops():
            instr[field] = "NotAnOp"      # another registered op: a valid program (excluded)
    elif field == "engine":
        instr[field] = ch.pick(["pe", "act", "NoEngine", "", None, 3, "TensorEngine", "ScalarEngine",
                                "VectorEngine", "DMA", ["TensorEngine"]])
    elif field == "inputs" and isinstance(old, list):
        view = Program(prog)
        new = old
        for _ in range(6):     # bounded: most draws are not a valid rewire
            new = _ids_edit(ch, old, n)
            if not view.is_valid_rewire(k, old, new):
                break
        else:
            new = old + [n]
        instr[field] = new
    elif field in ("outputs", "free") and isinstance(old, list):
        instr[field] = _ids_edit(ch, old, n)
    elif field == "tiles" and isinstance(old, dict) and old and ch.chance():
        return f"instrs[{k}].tiles {dict_edit(ch, old)}"
    elif field == "matmul" and isinstance(old, list) and ch.chance():
        dims = list(old)
        j = ch.below(len(dims))
        dims[j] = int_value(ch, dims[j], 2 ** 20)
        instr[field] = dims
    else:
        instr[field] = hostile(ch, old, n)
    return f"instrs[{k}] ({instr.get('op')!s:.20}).{field} = {_short(instr.get(field))}"


_OPS: list = []


def _registered_ops() -> set:
    if not _OPS:
        from neuron_core.ops.registry import op_names
        _OPS.append(set(op_names()))
    return _OPS[0]


def attr_value(ch: Chooser, key: str, old, op: str):
    """A replacement attribute value that is not a valid different value (see the docstring)."""
    kind = ch.below(6)
    if kind == 0:
        return tagged(ch)
    if kind == 1:
        return deep(ch.pick([30, 300, 900]), leaf=old if not isinstance(old, (list, dict)) else 0,
                    as_dict=ch.chance())
    if isinstance(old, bool) or not isinstance(old, (int, float, list)):
        if op == "_cast" and key == "to":
            return ch.pick(["int8", "int32", "bool", "float64", "", None, 5, ["float32"], "complex64",
                            "bf16 ", "BFLOAT16"])
        return other_types(ch, old)
    if isinstance(old, float):
        return ch.pick([True, False, None, "0.5", [old], {"v": old}, "nan", "inf"])
    if isinstance(old, int):
        return ch.pick(HUGE_INTS) if ch.chance() else ch.pick([None, "1", [old], 1.5, {}, True])
    # a list attribute (pads, strides, kernel_shape, perm, ...)
    seq = list(old)
    j = ch.below(len(seq)) if seq else 0
    variant = ch.below(6)
    if variant == 0 and seq:
        seq[j] = ch.pick(HUGE_INTS)
        return seq
    if variant == 1 and seq:
        seq[j] = ch.pick([None, "1", [1], 1.5, {}, True])
        return seq
    if variant == 2:
        return seq + seq[:1] if seq else [ch.pick(HUGE_INTS)]
    if variant == 3:
        return seq[1:] if seq else [None]
    if variant == 4:
        return [ch.pick(HUGE_INTS)] * ch.pick([1, 1000, 100_000])
    return other_types(ch, old)


def edit_attr(ch, meta, prog, weights) -> str:
    with_attrs = [(k, i) for k, i in enumerate(prog["instrs"]) if isinstance(i.get("attrs"), dict)]
    k, instr = ch.pick(with_attrs)
    attrs, op = instr["attrs"], instr.get("op")
    if ch.chance(6):
        instr["attrs"] = other_types(ch, attrs)
        return f"instrs[{k}] ({op}).attrs = {_short(instr['attrs'])}"
    if not attrs or ch.chance(4):
        key = ch.pick(["evil", "__ndarray__", "__class__", "to", "alpha", "axis", ""])
        if key in attrs:
            key += "_"
        value = ch.pick([tagged(ch), deep(ch.pick([30, 900])), other_types(ch, None)])
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            value = str(value)   # a number may be a valid value of the attribute: see above
        attrs[key] = value
        return f"instrs[{k}] ({op}).attrs added {key!r} = {_short(attrs[key])}"
    key = ch.pick(sorted(attrs))
    attrs[key] = attr_value(ch, key, attrs[key], op)
    return f"instrs[{k}] ({op}).attrs.{key} = {_short(attrs[key])}"


def edit_post(ch, meta, prog, weights) -> str:
    with_post = [(k, i) for k, i in enumerate(prog["instrs"]) if i.get("post")]
    k, instr = ch.pick(with_post)
    post = instr["post"]
    j = ch.below(len(post))
    entry = post[j]
    field = ch.pick(["op", "attrs", "inputs", "keys", "entry"])
    if field == "entry":
        post[j] = other_types(ch, entry)
    elif field == "keys":
        return f"instrs[{k}].post[{j}] {dict_edit(ch, entry, lambda key, v: other_types(ch, v))}"
    elif field == "op":
        entry["op"] = ch.pick(["NotAnOp", "", None, 5, [entry.get("op")], str(entry.get("op")).lower() + "_"])
    elif field == "inputs":
        n = len(prog["buffers"])
        entry["inputs"] = ch.pick([[-2], [-99], [n], [10 ** 9], ["x"], [], [-1, -1], [1.5], None, "x",
                                   [[-1]], [ch.pick(HUGE_INTS)], [-1] * 1000])
    else:
        attrs = entry.get("attrs")
        if isinstance(attrs, dict) and attrs and ch.chance():
            key = ch.pick(sorted(attrs))
            attrs[key] = attr_value(ch, key, attrs[key], entry.get("op"))
        else:
            entry["attrs"] = ch.pick([tagged(ch), other_types(ch, attrs), {"evil": tagged(ch)}])
    shown = post[j].get(field) if isinstance(post[j], dict) and field != "entry" else post[j]
    return f"instrs[{k}].post[{j}].{field} = {_short(shown)}"


def edit_program(ch, meta, prog, weights) -> str:
    key = ch.pick(["buffers", "instrs", "inputs", "outputs", "memory", "extra"])
    if key == "extra":
        prog[ch.pick(["extra", "__class__", "version"])] = other_types(ch, None)
        return "program extra key"
    if ch.chance(3):
        prog.pop(key, None)
        return f"program.{key} deleted"
    old = prog.get(key)
    if key in ("inputs", "outputs"):
        prog[key] = _ids_edit(ch, old, len(prog["buffers"]))
    elif key == "memory" and isinstance(old, dict) and ch.chance():
        return f"program.memory {dict_edit(ch, old)}"
    else:
        prog[key] = hostile(ch, old)
    return f"program.{key} = {_short(prog.get(key))}"


def edit_weights(ch, meta, prog, weights) -> str:
    names = sorted(weights)
    name = ch.pick(names)
    kind = ch.below(5)
    if kind == 0:
        del weights[name]
        return f"weight {name!r} dropped"
    if kind == 1:
        weights[name + "_renamed"] = weights.pop(name)
        return f"weight {name!r} renamed"
    if kind == 2:
        weights[ch.pick(["extra", "", "\u0000", "x" * 300])] = np.zeros(ch.pick([0, 3, 1000]), np.float32)
        return "extra weight"
    arr = np.asarray(weights[name])
    if kind == 3:
        weights[name] = ch.pick([arr.reshape(-1), arr.reshape(-1)[:, None], arr.reshape(-1)[:-1] if arr.size else arr,
                                 np.concatenate([arr.reshape(-1)] * 2), arr[None], np.zeros((0,), arr.dtype)])
        return f"weight {name!r} reshaped to {list(weights[name].shape)}"
    dtype = ch.pick(["int8", "int32", "uint8", "bool", "float64"])
    if arr.dtype.kind == "f" and dtype in ("int8", "int32", "uint8"):
        weights[name] = arr.view(dtype)       # the same bytes, typed otherwise
    else:
        weights[name] = arr.astype(dtype)     # bool: other values (the dtype is the defect); float64: the same
    return f"weight {name!r} stored as {dtype}"


def edit_index(ch, index: dict) -> str:
    name = ch.pick(sorted(index))
    e = index[name]
    kind = ch.below(6)
    if kind == 0:
        del index[name]
        return f"weights.index {name!r} deleted"
    if kind == 1:
        index[name + "_copy"] = dict(e)
        return f"weights.index {name!r} duplicated"
    if kind == 2:
        other = index[ch.pick(sorted(index))]
        e["offset"] = other["offset"]
        return f"weights.index {name!r} offset aliased"
    if kind == 3:
        index[name] = other_types(ch, e)
        return f"weights.index {name!r} = {_short(index[name])}"
    field = ch.pick(["dtype", "shape", "offset", "nbytes", "keys"])
    if field == "keys":
        return f"weights.index {name!r} {dict_edit(ch, e)}"
    if field == "dtype":
        e["dtype"] = ch.pick(ODD_DTYPES + ["int8", "float16", "int32"])
    elif field == "shape":
        e["shape"] = ch.pick([list(e["shape"])[::-1], [], [2 ** 40], [-1], ["1"], None, e["shape"] + [1],
                              [0] * len(e["shape"]), deep(900)])
    else:
        e[field] = int_value(ch, e[field], e[field] + 64)
    return f"weights.index {name!r}.{field} = {_short(e.get(field))}"


def _short(value) -> str:
    try:
        text = json.dumps(value, default=str) if not isinstance(value, str) else repr(value)
    except RecursionError:
        return "(deeply nested)"
    if len(text) > 60:
        return text[:40] + f"...({len(text)} chars)"
    return text


EDITS = {"metadata": edit_metadata, "buffer": edit_buffer, "instr": edit_instr, "post": edit_post,
         "attr": edit_attr, "program": edit_program, "weights": edit_weights}
FAMILIES = (*EDITS, "index", "dupkey")


def edited_neff(ch: Chooser, seed: Seed) -> tuple[str, object]:
    """One valid-hash edit of `seed`: (description, a function writing its NEFF bytes). The
    writer is neuron_core's own, so what it raises is judged like what the loader raises."""
    from neuron_core.neff import read_neff, to_bytes
    from neuron_core.neff import format as fmt
    original = read_neff(seed.data)
    meta, prog = copy.deepcopy(original.metadata), copy.deepcopy(original.program)
    weights = {k: np.array(v) for k, v in original.weights.items()}
    family = ch.pick(FAMILIES)
    if family in EDITS:
        desc = EDITS[family](ch, meta, prog, weights)
        return f"{family}: {desc}", lambda: to_bytes(meta, prog, weights,
                                                     compiler_version=original.compiler_version)
    index, chunks = fmt._weight_chunks(weights)
    texts = {"metadata": json.dumps(meta), "program": json.dumps(prog), "weights.index": None}
    if family == "index":
        desc = edit_index(ch, index)
    else:
        section = ch.pick(["metadata", "program"])
        obj = meta if section == "metadata" else prog
        key = ch.pick(sorted(obj))
        junk = json.dumps(other_types(ch, obj[key]))
        body = texts[section][1:-1]
        texts[section] = ("{" + f"{json.dumps(key)}:{junk},{body}" + "}" if ch.chance()
                          else "{" + f"{body},{json.dumps(key)}:{junk}" + "}")
        desc = f"{section} key {key!r} duplicated with {_short(junk)}"
    texts["weights.index"] = json.dumps(index)
    sections = {name: [texts[name].encode("utf-8")] for name in ("metadata", "program", "weights.index")}
    sections["weights"] = chunks

    def write() -> bytes:
        header, body = fmt._assemble(sections, original.compiler_version)
        return header + b"".join(bytes(memoryview(c)) for c in body)
    return f"{family}: {desc}", write


