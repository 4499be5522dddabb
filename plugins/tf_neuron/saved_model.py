"""`tf_neuron.saved_model.compile`: a SavedModel in, a SavedModel whose supported regions run on
the (simulated) NeuronCore out, with every serving signature kept."""
from __future__ import annotations

import keyword
import logging
import os
import re
import warnings
from dataclasses import dataclass
from pathlib import Path

import tensorflow as tf
from tensorflow.core.protobuf import saved_model_pb2

from neuron_core.bridge import compile_plan
from neuron_core.compiler.options import env_flags
from neuron_core.errors import NeuronError
from neuron_core.fileio import atomic_dir, check_apart, check_destination

from .capture import Captured, freeze, log_counts, static_specs, to_core
from .estimate import NeuronInfo, example_feed, measure_host, summary
from .op import OP_PREFIX, NeuronCheck
from .rewrite import make_function, neff_variables, rewrite

__all__ = ["compile", "compile_function", "CompiledFunction"]

log = logging.getLogger("Neuron")
LOW_RATIO = 0.3


def _check_options(batch_size, minimum_segment_size, model_feed_dict, model_shape_feed_dict):
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise NeuronError(f"batch_size={batch_size!r} must be a positive int")
    if isinstance(minimum_segment_size, bool) or not isinstance(minimum_segment_size, int) or \
            minimum_segment_size < 1:
        raise NeuronError(f"minimum_segment_size={minimum_segment_size!r} must be a positive int")
    for name, value in (("model_feed_dict", model_feed_dict),
                        ("model_shape_feed_dict", model_shape_feed_dict)):
        if value is not None and not isinstance(value, dict):
            raise NeuronError(f"{name} must be a dict of input name -> "
                              f"{'array' if name == 'model_feed_dict' else 'shape'}, got "
                              f"{type(value).__name__}")


def _identity(fn) -> tuple:
    """What makes two signature functions the same computation: their inputs, outputs and the
    functions they call."""
    calls = tuple(sorted(op.get_attr("f").name for op in fn.graph.get_operations()
                         if op.type in ("StatefulPartitionedCall", "PartitionedCall")))
    if not calls:
        return (fn.name,)
    return (calls, repr(fn.structured_input_signature), repr(fn.structured_outputs))


@dataclass
class CompiledFunction:
    """One compiled function and what it is made of (keep the NEFF variables and the info alive,
    tracked, with the function)."""

    concrete: object        # the compiled concrete function (a signature)
    function: object        # the tf.function it comes from
    plan: object            # the compile plan (partition report, NeuronCalls)
    neffs: dict             # NeuronOp name -> NEFF tf.Variable
    info: NeuronInfo        # what tf_neuron.estimate reads
    graph_def: object       # the rewritten GraphDef the function runs
    captured: Captured      # how the arguments and results map onto its tensors
    outputs: list           # the output tensor names in `graph_def`
    specs: dict             # argument name -> TensorSpec the function takes

    def on_core(self, core: int):
        """The same computation with every NeuronOp bound to NeuronCore `core` (a tf.function
        over the same NEFF variables)."""
        return make_function(self.graph_def, self.captured, self.outputs, self.specs, self.neffs,
                             self.captured.output_structure, core=core)[1]


def node_def_builder(subgraph_builder_function):
    """The Neuron SDK calls subgraph_builder_function with a TensorFlow NodeDef (`node.op`,
    `node.name`, `node.attr`); the partitioner hands over the native tf.Operation, so give it
    its NodeDef. Nodes the conversion added (no TensorFlow node of their own) follow their
    neighbours."""
    if subgraph_builder_function is None:
        return None
    if not callable(subgraph_builder_function):
        raise NeuronError(f"subgraph_builder_function must be a callable NodeDef -> bool, got "
                          f"{type(subgraph_builder_function).__name__}")

    def on_node_def(native) -> bool:
        node_def = getattr(native, "node_def", None)
        return True if node_def is None else bool(subgraph_builder_function(node_def))
    return on_node_def


def compile_function(fn, specs: dict, *, structure_keys=None, dynamic_batch_size=False,
                     compiler_args=None, workdir=None, where="model", name=None,
                     subgraph_builder_function=None, **partition) -> CompiledFunction:
    """Compile one concrete function at static `specs` (measure its host work afterwards with
    `measure_host`). `name` (default: `where`) names the model in its estimates."""
    env = env_flags()     # NEURON_CC_FLAGS: compiler arguments, --workdir, --dynamic-batch-size
    dynamic_batch_size = bool(dynamic_batch_size) or env.dynamic_batch_size
    wrapper = tf.function(lambda **kw: fn(**kw), autograph=False)
    concrete = wrapper.get_concrete_function(**specs)
    cap = freeze(concrete, sorted(specs), structure_keys)
    cv = to_core(cap, name=where)
    plan = compile_plan(cv, compiler_args=compiler_args, workdir=workdir, env=env,
                        subgraph_builder_function=node_def_builder(subgraph_builder_function),
                        **partition)
    log_counts(cap, cv, plan)
    gd, outputs = rewrite(cap, plan, dynamic_batch_size)
    run_specs = dict(specs)
    if dynamic_batch_size:
        run_specs = {k: tf.TensorSpec([None] + list(s.shape[1:]), s.dtype, name=k)
                     for k, s in specs.items()}
    neffs = neff_variables(plan)
    compiled, tf_fn = make_function(gd, cap, outputs, run_specs, neffs, cap.output_structure)
    order = sorted(plan.calls, key=lambda c: c.index)
    info = NeuronInfo([neffs[f"{OP_PREFIX}{c.index}"] for c in order], name or where)
    return CompiledFunction(compiled, tf_fn, plan, neffs, info, gd, cap, outputs, run_specs)


def argument_names(specs: dict) -> dict:
    """input name -> a valid Python identifier for it. TF1 SavedModels often key their inputs by
    tensor name ('input_1:0'), which tf.function cannot take as an argument name."""
    out, used = {}, set()
    for name in specs:
        safe = re.sub(r"\W", "_", name)
        if not safe.isidentifier() or keyword.iskeyword(safe):
            safe = f"input_{safe}"
        while safe in used:
            safe += "_"
        used.add(safe)
        out[name] = safe
    return out


def _by_source_names(fn, safe: dict):
    """`fn` called with the argument names of `safe` (valid identifiers) -> `fn` called with
    its own input names."""
    back = {v: k for k, v in safe.items()}

    def call(**kwargs):
        return fn(**{back[k]: v for k, v in kwargs.items()})
    return call


def is_neuron_saved_model(path: Path) -> bool:
    """Whether `path` is a SavedModel written by tf_neuron: its saved_model.pb parses and its
    object graph holds the `neuron_check` every compiled model carries."""
    proto = saved_model_pb2.SavedModel()
    proto.ParseFromString((Path(path) / "saved_model.pb").read_bytes())
    return any(child.local_name == "neuron_check" for meta in proto.meta_graphs
               for node in meta.object_graph_def.nodes for child in node.children)


def check_saved_model_destination(dst: Path, overwrite: bool, keep=()) -> None:
    """Refuse `dst` before any work when it exists and is not a tf_neuron SavedModel (unless
    overwrite), or when it contains or lies inside a directory in `keep`."""
    check_apart(dst, keep)
    check_destination(dst, is_neuron_saved_model, overwrite=overwrite,
                      what="a SavedModel written by tf_neuron")


def replacing_saved_model(dst: Path, overwrite: bool, keep=()):
    """A temporary directory beside `dst` to save into; it replaces `dst` when the block ends
    without an error (see neuron_core.fileio.atomic_dir)."""
    check_saved_model_destination(dst, overwrite, keep)
    return atomic_dir(dst, keep=keep)


def restore_input_names(model_dir: Path, renames: dict) -> None:
    """Give the signatures written in `model_dir` their source's input names back
    (identifier -> original name, e.g. 'input_1_0' -> 'input_1:0'): in the SignatureDefs (what
    TensorFlow Serving and TF1 loaders read) and in the saved signature functions' argument
    keywords and input structure (what `tf.saved_model.load` rebuilds them from), as a TF1
    SavedModel has them. tf.saved_model.save itself refuses such names."""
    path = model_dir / "saved_model.pb"
    proto = saved_model_pb2.SavedModel()
    proto.ParseFromString(path.read_bytes())
    for meta in proto.meta_graphs:
        for sig in meta.signature_def.values():
            for safe, name in renames.items():
                if safe in sig.inputs:
                    sig.inputs[name].CopyFrom(sig.inputs[safe])
                    del sig.inputs[safe]
        graph = meta.object_graph_def
        wrappers = set()
        for node in graph.nodes:
            if node.WhichOneof("kind") == "bare_concrete_function":
                bare = node.bare_concrete_function
                keywords = [renames.get(k, k) for k in bare.argument_keywords]
                if keywords != list(bare.argument_keywords):
                    del bare.argument_keywords[:]
                    bare.argument_keywords.extend(keywords)
                    wrappers.add(bare.concrete_function_name)
        for name in wrappers:
            structure = graph.concrete_functions[name].canonicalized_input_signature
            fields = structure.tuple_value.values[1].dict_value.fields
            for safe, original in renames.items():
                if safe in fields:
                    fields[original].CopyFrom(fields[safe])
                    del fields[safe]
    path.write_bytes(proto.SerializeToString())


def _measure(module, key: str, compiled, feed: dict, dst: Path, feed_given: bool) -> None:
    """Time signature `key` compiled on `feed` (its host work goes into its NeuronInfo) and log
    its estimate on inf1.xlarge."""
    try:
        measure_host(module.neuron_info[key], compiled, **feed)
    except (tf.errors.OpError, NeuronError) as exc:
        # the compile itself is fine; only the estimate's host part is unknown
        log.warning("signature %r compiled, but running it on %s to time its TensorFlow work "
                    "failed (%s); its estimate counts no host time. Pass model_feed_dict with "
                    "valid inputs to measure it", key,
                    "model_feed_dict" if feed_given else "zeros", str(exc).splitlines()[0])
    which = "" if key == "serving_default" else f", signature_def_key={key!r}"
    log.info(summary(module, f"tf.neuron.estimate({str(dst)!r}{which})", key))


def compile(model_dir, new_model_dir, batch_size=1, model_shape_feed_dict=None,  # noqa: A001
            model_feed_dict=None, tags=None, signature_def_key=None, minimum_segment_size=2,
            no_fuse_ops=None, force_fuse_ops=None, compiler_args=None, dynamic_batch_size=False,
            subgraph_builder_function=None, *, overwrite=False, compiler_workdir=None,
            cost_aware=True, fallback=True):
    """Compile a TF2 SavedModel for the NeuronCore into a new SavedModel.

    Every serving signature is kept (or only `signature_def_key`). Each is frozen at static shapes
    (the batch dimension = `batch_size`, other unknown dimensions from `model_shape_feed_dict` or
    `model_feed_dict`), partitioned, and its supported regions compiled into NeuronOps; the rest
    stays TensorFlow. Load the result with `tf.saved_model.load` or
    `tf_neuron.predictor.from_saved_model` after `import tf_neuron`.

    Args:
        model_dir: the SavedModel directory (from `tf.saved_model.save` or Keras `model.export`).
        new_model_dir: where to write the compiled SavedModel; must not exist unless
            `overwrite=True`.
        batch_size: the batch dimension compiled for (unknown leading dimensions).
        model_shape_feed_dict: input name -> full shape, for inputs with other unknown dims.
        model_feed_dict: input name -> example array; its shapes are used like
            model_shape_feed_dict.
        tags: the MetaGraph tags to load (default: serving).
        signature_def_key: compile only this signature (default: all of them).
        minimum_segment_size: smallest region (in operations) worth a NeuronOp.
        no_fuse_ops: TF node names or op types kept on TensorFlow.
        force_fuse_ops: TF node names or op types placed on Neuron whatever their size.
        compiler_args: neuron-cc options, e.g. ["--fast-math", "none"].
        dynamic_batch_size: let the batch dimension vary at run time (chunks of `batch_size`).
        subgraph_builder_function: called with each operation's NodeDef; False keeps it on
            TensorFlow.
        overwrite: replace an existing `new_model_dir`.
        compiler_workdir: if given, each region's IR, NEFF and the report are written there.
        cost_aware: drop regions whose input/output transfers cost more than they save.
        fallback: False raises UnsupportedOpError listing every operation that cannot run on
            Neuron, instead of leaving them on TensorFlow.

    Returns:
        {"OnNeuronRatio": r}: the fraction of the model's operations placed on Neuron (the lowest
        over the signatures). The log ends with each signature's estimated latency and throughput
        on inf1.xlarge; `tf_neuron.estimate(new_model_dir)` gives every Inf1 size.

    Example:
        >>> import tf_neuron
        >>> tf_neuron.saved_model.compile("resnet_sm", "resnet_neuron", batch_size=1)
        {'OnNeuronRatio': 0.99...}
    """
    _check_options(batch_size, minimum_segment_size, model_feed_dict, model_shape_feed_dict)
    src, dst = Path(model_dir), Path(new_model_dir)
    if not (src / "saved_model.pb").exists():
        raise NeuronError(f"model_dir {str(src)!r} holds no saved_model.pb; give the directory "
                          "written by tf.saved_model.save or Keras model.export")
    if dst.exists() and not overwrite:   # the Neuron SDK's rule, even for a model of ours
        raise NeuronError(f"new_model_dir {str(dst)!r} already exists; choose a new directory or "
                          "pass overwrite=True to replace it")
    check_saved_model_destination(dst, overwrite, keep=(src,))
    loaded = tf.saved_model.load(str(src), tags=tags)
    signatures = dict(loaded.signatures)
    if not signatures:
        raise NeuronError(f"SavedModel {str(src)!r} has no signatures; save it with "
                          "signatures=... (or Keras model.export)")
    if signature_def_key is not None:
        if signature_def_key not in signatures:
            raise NeuronError(f"signature_def_key={signature_def_key!r} is not in the SavedModel; "
                              f"it has {sorted(signatures)}")
        signatures = {signature_def_key: signatures[signature_def_key]}
    shape_feed = dict(model_shape_feed_dict or {})
    for name, value in (model_feed_dict or {}).items():
        shape_feed.setdefault(name, tuple(getattr(value, "shape", ())))
    module = tf.Module()
    module.neuron_check = NeuronCheck()
    module.neuron_info = {}   # signature key -> NeuronInfo, for tf_neuron.estimate
    out_signatures, ratios, done, renames = {}, [], {}, {}
    for key, fn in signatures.items():
        same = done.get(_identity(fn))
        if same is not None:   # another key for the same function (Keras: serve, serving_default)
            out_signatures[key] = out_signatures[same]
            module.neuron_info[key] = module.neuron_info[same]
            continue
        specs = static_specs(fn.structured_input_signature[1], batch_size, shape_feed,
                             f"signature {key!r}")
        safe = argument_names(specs)
        workdir = os.path.join(compiler_workdir, key) if compiler_workdir else None
        done_fn = compile_function(
            _by_source_names(fn, safe),
            {safe[k]: tf.TensorSpec(s.shape, s.dtype, name=safe[k]) for k, s in specs.items()},
            dynamic_batch_size=dynamic_batch_size, compiler_args=compiler_args,
            workdir=workdir, where=key, name=f"{src.name} ({key})",
            minimum_segment_size=minimum_segment_size,
            no_fuse_ops=no_fuse_ops, force_fuse_ops=force_fuse_ops,
            subgraph_builder_function=subgraph_builder_function, cost_aware=cost_aware,
            fallback=fallback)
        setattr(module, f"signature_{len(out_signatures)}", done_fn.function)
        setattr(module, f"signature_{len(out_signatures)}_neffs", list(done_fn.neffs.values()))
        out_signatures[key] = done_fn.concrete
        done[_identity(fn)] = key
        ratios.append(done_fn.plan.on_neuron_ratio)
        module.neuron_info[key] = done_fn.info
        renames.update({v: k for k, v in safe.items() if k != v})
        feed = example_feed(specs, model_feed_dict)
        _measure(module, key, done_fn.concrete, {safe[k]: v for k, v in feed.items()}, dst,
                 model_feed_dict is not None)
    ratio = min(ratios)
    with replacing_saved_model(dst, overwrite, keep=(src,)) as tmp:
        tf.saved_model.save(module, str(tmp), signatures=out_signatures)
        if renames:
            restore_input_names(tmp, renames)
    if ratio <= LOW_RATIO:
        warnings.warn(f"only {100 * ratio:.1f}% of the operations run on Neuron "
                      f"(OnNeuronRatio={ratio:.3f}); see the log for the ops left on TensorFlow",
                      stacklevel=2)
    return {"OnNeuronRatio": ratio}
