"""`neuron-cc compile model.pb --framework TENSORFLOW --io-config ...`: a frozen GraphDef (.pb) or
a SavedModel directory read into one core IR graph, by the same capture and conversion that
`tf_neuron.saved_model.compile` uses (neuron-cc then requires every op to run on Neuron).

    neuron-cc compile resnet.pb --framework TENSORFLOW --output resnet.neff \\
        --io-config '{"inputs": {"input_1:0": [[1, 224, 224, 3], "float32"]},
                      "outputs": ["probs/Softmax:0"]}'

For a GraphDef the io-config is required: its inputs (placeholder tensors with shape and dtype)
and its outputs. For a SavedModel it is optional: inputs are the serving signature's (names as
the signature has them, with or without ':0'; a shape is needed where the signature leaves a
dimension besides the batch unknown, the batch defaults to 1), outputs its output keys.
"""
from __future__ import annotations

import os

import numpy as np
import tensorflow as tf

from neuron_core.errors import FrontendError
from neuron_core.frontends.onnx_import import match_name

from .capture import Captured, freeze, static_specs, to_core
from .rewrite import _prune
from .saved_model import _by_source_names, argument_names

__all__ = ["read"]

EXAMPLE = ('{"inputs": {"input:0": [[1, 224, 224, 3], "float32"]}, '
           '"outputs": ["output:0"]}')


def read(paths: list, io_config: dict | None):
    """The core IR graph of the TensorFlow model in `paths` (one .pb file or SavedModel
    directory)."""
    if len(paths) != 1:
        raise FrontendError(f"--framework TENSORFLOW compiles one model (a frozen GraphDef .pb "
                            f"or a SavedModel directory), got {len(paths)}: {' '.join(paths)}")
    path = paths[0]
    if os.path.isdir(path):
        cap = _saved_model(path, io_config)
    elif os.path.isfile(path):
        cap = _graph_def(path, io_config)
    else:
        raise FrontendError(f"{path!r} does not exist; give a frozen GraphDef .pb file or a "
                            "SavedModel directory")
    return to_core(cap, name=os.path.basename(os.path.normpath(path))).finish()


def _tensor(name: str) -> str:
    return name if ":" in name else f"{name}:0"


def _graph_def(path: str, io_config: dict | None) -> Captured:
    gd = tf.compat.v1.GraphDef()
    try:
        gd.ParseFromString(open(path, "rb").read())
    except Exception as exc:   # protobuf's DecodeError, or a text file
        raise FrontendError(f"{path!r} is not a binary GraphDef ({type(exc).__name__}: {exc}); "
                            "freeze the model to a .pb first (or give its SavedModel "
                            "directory)") from None
    inputs = dict((io_config or {}).get("inputs") or {})
    outputs = list((io_config or {}).get("outputs") or [])
    nodes = {n.name: n for n in gd.node}
    if not inputs or not outputs:
        holders = [f"{n.name}:0" for n in gd.node if n.op == "Placeholder"]
        raise FrontendError(f"a GraphDef needs --io-config with its inputs and outputs, e.g. "
                            f"{EXAMPLE}; {path!r} has placeholders {holders}")
    for name in outputs:
        if _tensor(name).rsplit(":", 1)[0] not in nodes:
            raise FrontendError(f"io-config output {name!r} is not a tensor of {path!r}")
    gd = _prune(gd, [_tensor(o) for o in outputs])   # what the outputs need
    nodes = {n.name: n for n in gd.node}
    fed = []
    for name, spec in inputs.items():
        node = nodes.get(_tensor(name).rsplit(":", 1)[0])
        if node is None or node.op != "Placeholder":
            what = "is not in the graph the outputs need" if node is None else \
                f"is a {node.op}, not a Placeholder"
            raise FrontendError(f"io-config input {name!r} {what}; inputs are placeholders: "
                                f"{[f'{n.name}:0' for n in gd.node if n.op == 'Placeholder']}")
        shape, dtype = _shape_dtype(name, spec)
        if tf.as_dtype(node.attr["dtype"].type) != dtype:
            raise FrontendError(f"io-config gives input {name!r} dtype {dtype.name}, the graph "
                                f"has {tf.as_dtype(node.attr['dtype'].type).name}")
        node.attr["shape"].shape.CopyFrom(tf.TensorShape(shape).as_proto())
        fed.append((node.name, f"{node.name}:0", tuple(shape), dtype))
    left = [n.name for n in gd.node if n.op == "Placeholder" and n.name not in
            {f[0] for f in fed}]
    if left:
        raise FrontendError(f"the outputs need placeholders {left} that io-config does not give; "
                            "add them to its \"inputs\"")
    graph = tf.Graph()
    with graph.as_default():
        tf.graph_util.import_graph_def(gd, name="")
    return Captured(gd, graph, fed, [_tensor(o) for o in outputs])


def _shape_dtype(name: str, spec) -> tuple:
    try:
        shape, dtype = spec
        return [int(d) for d in shape], tf.as_dtype(np.dtype(dtype))
    except (TypeError, ValueError) as exc:
        raise FrontendError(f"io-config entry for input {name!r} must be [shape, dtype] like "
                            f"[[1, 224, 224, 3], \"float32\"], got {spec!r} ({exc})") from None


def _saved_model(path: str, io_config: dict | None) -> Captured:
    if not os.path.isfile(os.path.join(path, "saved_model.pb")):
        raise FrontendError(f"directory {path!r} holds no saved_model.pb; give a SavedModel "
                            "directory or a frozen GraphDef .pb")
    loaded = tf.saved_model.load(path)
    signatures = dict(loaded.signatures)
    if not signatures:
        raise FrontendError(f"SavedModel {path!r} has no signatures to compile")
    key = "serving_default" if "serving_default" in signatures else min(signatures)
    fn = signatures[key]
    given = dict((io_config or {}).get("inputs") or {})
    declared = fn.structured_input_signature[1]
    unknown = [k for k in given if match_name(k, declared) is None]
    if unknown:
        raise FrontendError(f"io-config names inputs {unknown} that signature {key!r} does not "
                            f"have; its inputs are {sorted(declared)}")
    shapes = {k: _shape_dtype(k, s)[0] for k, s in given.items()}
    specs = static_specs(declared, 1, {n: match_name(n, shapes) for n in declared
                                       if match_name(n, shapes) is not None},
                         f"SavedModel {path!r} signature {key!r}")
    safe = argument_names(specs)
    concrete = tf.function(lambda **kw: _by_source_names(fn, safe)(**kw), autograph=False) \
        .get_concrete_function(**{safe[k]: tf.TensorSpec(s.shape, s.dtype, name=safe[k])
                                  for k, s in specs.items()})
    keys = sorted(fn.structured_outputs)
    cap = freeze(concrete, sorted(safe.values()), keys)
    wanted = list((io_config or {}).get("outputs") or [])
    if wanted:
        by_key = dict(zip(keys, cap.outputs))
        missing = [w for w in wanted if match_name(w, by_key) is None]
        if missing:
            raise FrontendError(f"io-config asks for outputs {missing}; signature {key!r} has "
                                f"{keys}")
        cap.outputs = [match_name(w, by_key) for w in wanted]
    return cap
