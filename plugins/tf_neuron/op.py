"""`NeuronOp`: the TensorFlow node each compiled region becomes, and how it survives a reload.

A region is one `EagerPyFunc` node named `neuron_op_<i>` whose `token` attribute is the stable
string `TOKEN` (not a per-process `pyfunc_<n>`), so the graph means the same thing in every process.
`import tf_neuron` registers the NeuronCore runner under that token in TensorFlow's py-func
registry. The node's inputs are the region's data inputs, then two strings: the NEFF
(`executable`) and a JSON config constant (input/output names, dtypes, shapes, batch axes, NEFF
key). The NEFF is fed from a string `tf.Variable`, so it is written to the SavedModel's variables
(a raw checkpoint) and not into its graph: the graph stays small, and saving, loading and tracing
it does not copy the weights through protobuf.

Every compiled SavedModel also holds a `NeuronCheck` resource whose initializer TensorFlow runs at
load time through the same token: loading without `import tf_neuron` fails at once, and TensorFlow's
own error ("Could not find callback with key=<TOKEN>") then tells the user to import tf_neuron.

Why not a C++ `NeuronOp`: a kernel would have to call back into Python for the simulator anyway,
and building a custom-op library at import time depends on a compiler and on TensorFlow's ABI; the
py-func registry is stable public machinery of every TensorFlow build.
"""
from __future__ import annotations

import json
from typing import Annotated, Literal

import numpy as np
import tensorflow as tf
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from tensorflow.python.eager import context
from tensorflow.python.ops import gen_resource_variable_ops, gen_script_ops, script_ops

from neuron_core.bridge import run_neff
from neuron_core.bridge.plugin import parse_node_config
from neuron_core.errors import NeffFormatError, NeuronError
from neuron_core.neff import NEFF_BYTES, neff_key

#: the py-func key every compiled node calls; its text is the error users see without the plugin
TOKEN = "tf_neuron.NeuronOp (this model holds Neuron-compiled ops: run `import tf_neuron` before " \
        "loading or running it)"
#: version of the node layout (inputs and config keys) this plugin reads
FORMAT = 1
OP_PREFIX = "neuron_op_"


def _neff(config: dict, tensor) -> bytes:
    """The node's NEFF: `tensor.numpy()` is the only copy of the NEFF string; later calls reuse it."""
    def read() -> bytes:
        value = tensor.numpy()
        if not isinstance(value, bytes):
            raise NeffFormatError(f"{config['name']}: its executable input is a "
                                  f"{type(value).__name__}, not the NEFF string (the SavedModel "
                                  "is damaged); compile the model again")
        return value
    return NEFF_BYTES.get(bytes.fromhex(config["neff_key"]), read,
                          f"{config['name']}: its NEFF does not match its config (the SavedModel "
                          "is damaged); compile the model again")


class _Check(BaseModel):
    model_config = ConfigDict(strict=True, extra="allow")
    kind: Literal["check"]
    format: int = 0


class _Config(BaseModel):
    """The fields of a NeuronOp's config that `run` reads."""

    model_config = ConfigDict(strict=True, extra="allow")
    name: Annotated[str, Field(max_length=4096)]
    format: int = 0
    dynamic_batch: bool
    neff_key: Annotated[str, Field(pattern="^[0-9a-f]{64}$")]
    core: Annotated[int, Field(ge=0, lt=1 << 16)] | None = None


def _config(raw) -> dict:
    """The node's config, checked: a damaged one is a NeffFormatError naming the field."""
    config = parse_node_config(raw, "a NeuronOp's config",
                               "the SavedModel is damaged, compile the model again")
    if isinstance(config.get("format"), int) and config["format"] > FORMAT:
        raise NeuronError(f"{config.get('name', 'NeuronOp')} was written by a newer tf_neuron "
                          f"(format {config['format']}, this one reads <= {FORMAT}); upgrade "
                          "neuron-sim")
    try:
        (_Check if config.get("kind") == "check" else _Config).model_validate(config)
    except ValidationError as exc:
        first = exc.errors(include_url=False)[0]
        field = ".".join(str(p) for p in first["loc"])
        raise NeffFormatError(f"{config.get('name', 'a NeuronOp')!s:.80}: config field {field!r}: "
                              f"{first['msg']}; the SavedModel is damaged, compile the model "
                              "again") from None
    return config


def run(args: list) -> list:
    """The body of every NeuronOp: (data..., executable, config) -> outputs, as numpy."""
    config = _config(args[-1].numpy())
    if config.get("kind") == "check":
        return [np.int32(FORMAT)]
    neff = _neff(config, args[-2])
    inputs = [a.numpy() for a in args[:-2]]
    # "core" is set only in the functions of tfn.auto_multicore (one per NeuronCore)
    return run_neff(neff, inputs, dynamic_batch=config["dynamic_batch"], name=config["name"],
                    core=config.get("core"))


class _Callback(script_ops.EagerFunc):
    """What TensorFlow's py-func trampoline calls for `TOKEN` (args arrive as EagerTensors)."""

    def __init__(self):
        super().__init__(run, Tout=[], is_grad_func=False)

    def __call__(self, device, token, args):
        with context.eager_mode():
            outs = run(list(args))
            with tf.device(device or "/job:localhost/replica:0/task:0/device:CPU:0"):
                return [tf.convert_to_tensor(o) for o in outs]


_CALLBACK = _Callback()   # a strong reference: the registry holds only weak ones


def register() -> None:
    """Make `TOKEN` callable in this process (idempotent)."""
    script_ops._py_funcs._funcs[TOKEN] = _CALLBACK   # noqa: SLF001 (the registry's only map)


class NeuronCheck(tf.saved_model.experimental.TrackableResource):
    """A resource whose load-time initializer calls `TOKEN`, so a SavedModel loaded without the
    plugin fails at `tf.saved_model.load` instead of at its first prediction."""

    def _create_resource(self):
        return gen_resource_variable_ops.var_handle_op(dtype=tf.int32, shape=[],
                                                       shared_name="tf_neuron_check")

    def _initialize(self):
        config = json.dumps({"kind": "check", "format": FORMAT})
        gen_script_ops.eager_py_func(input=[tf.constant(config)], token=TOKEN, Tout=[tf.int32],
                                     name="tf_neuron_check")
        return tf.no_op()


def node_config(call, name: str, dynamic_batch: bool) -> dict:
    config = call.config()
    config.update(name=name, format=FORMAT, dynamic_batch=bool(dynamic_batch),
                  neff_key=neff_key(call.neff).hex(),
                  batch_axes=[0 if dynamic_batch else -1 for _ in call.inputs])
    return config


def node_defs(call, name: str, inputs: list, dynamic_batch: bool) -> list:
    """NodeDefs of one NeuronOp: its two constants, the op, and one EnsureShape per output (the
    py-func's outputs have unknown shapes; TensorFlow code after it gets them back)."""
    config = node_config(call, name, dynamic_batch)
    consts = []
    # "executable" is a placeholder constant; the tf.function maps it to the NEFF variable
    for suffix, data in (("executable", b""), ("config", json.dumps(config).encode())):
        node = tf.compat.v1.NodeDef(name=f"{name}/{suffix}", op="Const")
        node.attr["dtype"].type = tf.string.as_datatype_enum
        node.attr["value"].tensor.CopyFrom(tf.make_tensor_proto(np.array(data, dtype=object)))
        consts.append(node)
    op = tf.compat.v1.NodeDef(name=name, op="EagerPyFunc")
    op.input.extend(list(inputs) + [c.name for c in consts])
    op.attr["token"].s = TOKEN.encode()
    op.attr["is_async"].b = False
    op.attr["Tin"].list.type.extend([_enum(d) for _, _, d in call.inputs] +
                                    [tf.string.as_datatype_enum] * 2)
    op.attr["Tout"].list.type.extend([_enum(d) for _, _, d in call.outputs])
    shaped = []
    for k, (_, shape, dtype) in enumerate(call.outputs):
        node = tf.compat.v1.NodeDef(name=f"{name}/output_{k}", op="EnsureShape")
        node.input.append(f"{name}:{k}")
        node.attr["T"].type = _enum(dtype)
        dims = [None if dynamic_batch and i == 0 else int(d) for i, d in enumerate(shape)]
        node.attr["shape"].shape.CopyFrom(tf.TensorShape(dims).as_proto())
        shaped.append(node)
    return consts + [op] + shaped


def _enum(dtype) -> int:
    return tf.as_dtype(np.dtype(dtype)).as_datatype_enum if dtype != "bfloat16" else \
        tf.bfloat16.as_datatype_enum
