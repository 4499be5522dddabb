"""The host side: the frozen GraphDef with each compiled region replaced by its NeuronOp, and the
tf.function that runs it. Native nodes no output needs (the regions' insides) are dropped."""
from __future__ import annotations

import json

import tensorflow as tf

from .capture import Captured
from .convert._util import TO_NCHW, TO_NHWC
from .op import OP_PREFIX, node_defs


def _tensor(inp: str) -> str:
    return inp if ":" in inp else f"{inp}:0"


def _ref(tensor: str) -> str:
    """A tensor name as a NodeDef input (":0" is implied)."""
    return tensor[:-2] if tensor.endswith(":0") else tensor


def rewrite(cap: Captured, plan, dynamic_batch: bool = False) -> tuple:
    """(GraphDef, output tensor names) with each plan call as one NeuronOp."""
    gd = tf.compat.v1.GraphDef()
    gd.CopyFrom(cap.graph_def)
    replace: dict = {}            # native key -> tensor that now holds it
    extra: list = []
    dtypes = {key: d for c in plan.calls for key, (_, _, d) in zip(c.output_keys, c.outputs)}

    def source(key, dtype) -> str:
        """The tensor holding native `key` on the host now (adding a transpose if needed)."""
        if key in replace:
            return replace[key]
        if isinstance(key, tuple):   # ("nchw", tensor): the NCHW form of a TF tensor
            made = _transpose(extra, f"{_node(source(key[1], dtype))}_nchw",
                              source(key[1], dtype), dtype, TO_NCHW)
        elif ("nchw", key) in dtypes and ("nchw", key) in replace:
            # a region produced only the NCHW form (its consumers' core nodes read that); TF
            # code reading the tensor gets it back in NHWC
            nchw = replace[("nchw", key)]
            made = _transpose(extra, f"{_node(nchw)}_nhwc", nchw, dtypes[("nchw", key)], TO_NHWC)
        else:
            return key
        replace[key] = made
        return made

    for call in plan.calls:
        name = f"{OP_PREFIX}{call.index}"
        inputs = [_ref(source(key, dtype)) for key, (_, _, dtype) in
                  zip(call.input_keys, call.inputs)]
        extra.extend(node_defs(call, name, inputs, dynamic_batch))
        for k, key in enumerate(call.output_keys):
            replace[key] = f"{name}/output_{k}:0"
    for node in gd.node:
        for i, inp in enumerate(node.input):
            if not inp.startswith("^"):
                node.input[i] = _ref(source(_tensor(inp), None))
    outputs = [source(t, None) for t in cap.outputs]
    gd.node.extend(extra)
    return _prune(gd, outputs), outputs


def _node(tensor: str) -> str:
    return tensor.rsplit(":", 1)[0]


def _transpose(extra: list, name: str, src: str, dtype, perm_values) -> str:
    perm = tf.compat.v1.NodeDef(name=f"{name}/perm", op="Const")
    perm.attr["dtype"].type = tf.int32.as_datatype_enum
    perm.attr["value"].tensor.CopyFrom(tf.make_tensor_proto(list(perm_values), tf.int32))
    node = tf.compat.v1.NodeDef(name=name, op="Transpose")
    node.input.extend([_ref(src), perm.name])
    node.attr["T"].type = tf.as_dtype(dtype).as_datatype_enum
    node.attr["Tperm"].type = tf.int32.as_datatype_enum
    extra.extend([perm, node])
    return f"{name}:0"


def _prune(gd, outputs: list):
    by_name = {n.name: n for n in gd.node}
    keep, stack = set(), [_tensor(o).rsplit(":", 1)[0] for o in outputs]
    while stack:
        name = stack.pop()
        if name in keep:
            continue
        keep.add(name)
        for inp in by_name[name].input:
            stack.append(inp.lstrip("^").rsplit(":", 1)[0] if ":" in inp else inp.lstrip("^"))
    out = tf.compat.v1.GraphDef()
    out.versions.CopyFrom(gd.versions)
    out.library.CopyFrom(gd.library)
    out.node.extend(n for n in gd.node if n.name in keep)
    return out


def neff_variables(plan) -> dict:
    """NeuronOp name -> a string tf.Variable holding its NEFF (saved with the model's variables)."""
    return {f"{OP_PREFIX}{c.index}": tf.Variable(c.neff, dtype=tf.string, trainable=False,
                                                 name=f"{OP_PREFIX}{c.index}_executable")
            for c in plan.calls}


def make_function(gd, cap: Captured, outputs: list, specs: dict, neffs: dict, structure=None,
                  core: int | None = None):
    """A tf.function with `specs` (argument name -> TensorSpec) that runs the rewritten graph,
    reading each NeuronOp's NEFF from `neffs` (see `neff_variables`). With `core`, every NeuronOp
    of the function runs on that NeuronCore (TensorFlow runs the ops on threads of its own, which
    a caller's `on_core` binding does not reach, so the core travels in the op's config)."""
    feeds = {tensor: name for name, tensor, _, _ in cap.inputs}
    order = [name for name, _, _, _ in cap.inputs]
    present = {n.name for n in gd.node}
    configs = {} if core is None else _configs_on_core(gd, core)

    def body(**kwargs):
        input_map = {tensor: kwargs[name] for tensor, name in feeds.items()}
        input_map.update({f"{op}/executable:0": var.read_value() for op, var in neffs.items()
                          if op in present})
        input_map.update({tensor: tf.constant(text) for tensor, text in configs.items()})
        results = tf.graph_util.import_graph_def(gd, input_map=input_map,
                                                 return_elements=list(outputs), name="neuron")
        if structure is not None:
            return tf.nest.pack_sequence_as(structure, results)
        return results

    fn = tf.function(body, input_signature=None, autograph=False)
    return fn.get_concrete_function(**{n: specs[n] for n in order}), fn


def _configs_on_core(gd, core: int) -> dict:
    """NeuronOp config tensor name -> its JSON with "core" set, for every NeuronOp of `gd`."""
    out = {}
    for node in gd.node:
        if node.op == "Const" and node.name.startswith(OP_PREFIX) and \
                node.name.endswith("/config"):
            config = json.loads(tf.make_ndarray(node.attr["value"].tensor).item())
            config["core"] = int(core)
            out[f"{node.name}:0"] = json.dumps(config)
    return out
