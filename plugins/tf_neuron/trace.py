"""TF2 tracing: `tf_neuron.trace(func_or_keras_model, example_inputs)` compiles a function for the
NeuronCore and returns a callable model; `analyze_model` reports op support without compiling."""
from __future__ import annotations

import functools
import json
import logging
from pathlib import Path

import numpy as np
import tensorflow as tf

from neuron_core.bridge import analyze
from neuron_core.errors import BadInputError, NeuronError

from .capture import freeze, to_core
from .estimate import measure_host, summary
from .op import NeuronCheck
from .saved_model import compile_function, replacing_saved_model

__all__ = ["TracedModel", "trace", "analyze_model"]

log = logging.getLogger("Neuron")


#: how the traced function takes its example inputs (the Neuron SDK's tfn.trace rule): a tensor
#: or a list as one argument, a tuple as positional arguments, a dict as keyword arguments
FORMS = {tuple: "tuple", dict: "dict", list: "list"}


def _form(example_inputs) -> str:
    return next((f for t, f in FORMS.items() if isinstance(example_inputs, t)), "tensor")


def _specs(example_inputs) -> tuple[dict, list]:
    """example inputs -> (flat name -> TensorSpec, flat names), in tf.nest.flatten order."""
    flat = tf.nest.flatten(example_inputs)
    if not flat:
        raise NeuronError("example_inputs is empty; give a tensor, or a list/tuple/dict of them")
    specs = {}
    for i, x in enumerate(flat):
        if not hasattr(x, "shape") or not hasattr(x, "dtype"):
            raise NeuronError(f"example_inputs[{i}] is a {type(x).__name__} (counting the "
                              "flattened inputs); give tf.Tensor or numpy arrays, or a "
                              "list/tuple/dict of them")
        arr = x if isinstance(x, tf.Tensor) else np.asarray(x)
        specs[f"input_{i}"] = tf.TensorSpec(arr.shape, tf.as_dtype(arr.dtype), name=f"input_{i}")
    return specs, list(specs)


def _call(func, form: str, value):
    """`func` called with `value` (the example structure) as the Neuron SDK calls it."""
    if form == "tuple":
        return func(*value)
    if form == "dict":
        return func(**value)
    return func(value)


def _positional(func, names: list, example_inputs):
    """A function of the flat inputs by name that calls `func` the way tfn.trace does."""
    if not callable(func):
        raise NeuronError(f"trace expects a callable (a Keras model, tf.function or function), "
                          f"got {type(func).__name__}")
    form = _form(example_inputs)

    def by_name(**kwargs):
        value = tf.nest.pack_sequence_as(example_inputs, [kwargs[n] for n in names])
        return _call(func, form, value)
    return by_name


def _by_position(fn, names: tuple, *args):
    return fn(**dict(zip(names, args)))


def _flattened(fn, *args):
    """`fn` of the flat inputs, called with the traced structure (tf.nest order)."""
    return fn(*tf.nest.flatten(args))


def pack_call(form: str, args: tuple, kwargs: dict, where: str):
    """The call arguments of a traced model -> its example structure (tensor, list, tuple or
    dict), checked against the form it was traced with."""
    if form == "dict":
        if args and (len(args) != 1 or kwargs or not isinstance(args[0], dict)):
            raise BadInputError(f"{where} was traced with a dict of inputs: call it with keyword "
                                "arguments (or one dict)")
        return dict(args[0]) if args else dict(kwargs)
    if kwargs:
        raise BadInputError(f"{where} takes no keyword arguments (got {sorted(kwargs)}); it was "
                            f"traced with a {form} of inputs")
    if form == "tuple":
        return tuple(args)
    if len(args) != 1:
        raise BadInputError(f"{where} was traced with one {form} argument, got {len(args)} "
                            "arguments")
    return list(args[0]) if form == "list" else args[0]


class TracedModel(tf.Module):
    """A compiled model: call it like the original (a tensor or a list as one argument, a tuple
    as positional arguments, a dict as keywords, as it was traced); `.save(path)` (or
    `tf.keras.models.save_model`) writes a SavedModel that `tf.keras.models.load_model` and
    `tf.saved_model.load` (after `import tf_neuron`) restore as a callable. `neuron_info` (its
    NEFFs and measured host work) is saved with it for `tf_neuron.estimate`.

    Attributes:
        on_neuron_ratio: the fraction of the model's operations placed on Neuron.
        aws_neuron_function: the compiled function of the flat inputs (what a wrapping Keras
            model keeps, as the Neuron SDK's tutorials do).
    """

    def __init__(self, compiled, specs: dict, names: list, example_inputs):
        super().__init__(name="neuron_traced")
        self.neuron_check = NeuronCheck()
        self.neffs = list(compiled.neffs.values())
        self.neuron_info = compiled.info
        self._compiled = compiled
        self._names = list(names)
        specs = compiled.specs   # the batch dimension is None with dynamic_batch_size=True
        self._specs = specs
        self._form = _form(example_inputs)
        self._serve = compiled.function
        # what a reload needs to call it (and tfn.auto_multicore to bind it to cores)
        self.neuron_form = tf.Variable(self._form, dtype=tf.string, trainable=False,
                                       name="neuron_form")
        self.neuron_ratio = tf.Variable(compiled.plan.on_neuron_ratio, dtype=tf.float64,
                                        trainable=False, name="neuron_ratio")
        self.neuron_graph = tf.Variable(compiled.graph_def.SerializeToString(), dtype=tf.string,
                                        trainable=False, name="neuron_graph")
        self.neuron_io = tf.Variable(io_json(compiled), dtype=tf.string, trainable=False,
                                     name="neuron_io")
        flat = [specs[n] for n in names]
        # partials, not lambdas: TensorFlow counts tracings per code object, so the lambdas of
        # several models would add up to its "excessive retracing" warning
        self.aws_neuron_function = tf.function(
            functools.partial(_by_position, self._serve, tuple(names)), input_signature=flat,
            autograph=False)
        signature = tf.nest.pack_sequence_as(example_inputs, flat)
        signature = list(signature) if self._form == "tuple" else [signature]
        self.__call__ = tf.function(
            functools.partial(_flattened, self.aws_neuron_function),
            input_signature=signature, autograph=False)
        # what tf.saved_model.save(traced, path) exports as serving_default (the FAQ's
        # TensorFlow Serving route; .save names it explicitly)
        self._default_save_signature = self._serve.get_concrete_function(**specs)
        self.on_neuron_ratio = compiled.plan.on_neuron_ratio
        self._report = compiled.plan.report

    @property
    def report(self):
        """The partition report (text with str(), JSON with .to_json())."""
        return self._report

    def __call__(self, *args, **kwargs):   # noqa: D102 (the instance attribute is saved)
        value = pack_call(self._form, args, kwargs, "the traced model")
        packed = list(value) if self._form == "tuple" else [value]
        return self.__dict__["__call__"](*packed)

    def save(self, path, overwrite: bool = False, *args, **kwargs) -> None:
        """Write a SavedModel (serving_default signature included) as a whole new directory:
        an existing `path` is replaced only if it is a SavedModel written by tf_neuron, or with
        overwrite=True. Keras' other save options (save_format=...) have no effect."""
        del args, kwargs
        with replacing_saved_model(Path(path), overwrite) as tmp:
            tf.saved_model.save(self, str(tmp),
                                signatures={"serving_default": self._default_save_signature})


def io_json(compiled) -> str:
    """How the flat inputs and outputs of `compiled` map onto its GraphDef's tensors (JSON)."""
    return json.dumps({
        "inputs": [[name, tensor] for name, tensor, _, _ in compiled.captured.inputs],
        "outputs": list(compiled.outputs),
        "specs": {k: [[None if d is None else int(d) for d in s.shape], s.dtype.name]
                  for k, s in compiled.specs.items()}})


def trace(func, example_inputs, subgraph_builder_function=None, *, compiler_args=None,
          minimum_segment_size=2, no_fuse_ops=None, force_fuse_ops=None,
          dynamic_batch_size=False, compiler_workdir=None, cost_aware=True,
          fallback=True) -> TracedModel:
    """Compile `func` (a Keras model, tf.function or Python function of tensors) at the shapes of
    `example_inputs` for the NeuronCore.

    `func` is called as the Neuron SDK's tfn.trace calls it: `func(example_inputs)` for a tensor
    or a list, `func(*example_inputs)` for a tuple, `func(**example_inputs)` for a dict; the
    traced model takes its inputs the same way.

    Example:
        >>> import tensorflow.neuron as tfn
        >>> model = tf.keras.applications.ResNet50(weights=None)
        >>> traced = tfn.trace(model, tf.zeros([1, 224, 224, 3]))
        >>> traced.on_neuron_ratio
        1.0
        >>> traced.save("resnet_traced")

    Options are those of `tf_neuron.saved_model.compile`: `subgraph_builder_function` gets each
    operation's NodeDef (`node.op == 'MatMul'`), False keeps it on TensorFlow; `fallback=False`
    raises UnsupportedOpError listing every operation that cannot run on Neuron;
    `cost_aware=False` keeps regions whose transfers cost more than they save (the partitioner
    drops them by default). The log ends with the estimated latency and throughput on
    inf1.xlarge; `tf_neuron.estimate(traced)` gives every Inf1 size.
    """
    specs, names = _specs(example_inputs)
    fn = _positional(func, names, example_inputs)
    compiled = compile_function(
        fn, specs, dynamic_batch_size=dynamic_batch_size, compiler_args=compiler_args,
        workdir=compiler_workdir, where=getattr(func, "name", None) or "traced",
        minimum_segment_size=minimum_segment_size, no_fuse_ops=no_fuse_ops,
        force_fuse_ops=force_fuse_ops, subgraph_builder_function=subgraph_builder_function,
        cost_aware=cost_aware, fallback=fallback)
    traced = TracedModel(compiled, specs, names, example_inputs)
    measure_host(compiled.info, traced.aws_neuron_function, *tf.nest.flatten(example_inputs))
    log.info(summary(traced, "tf.neuron.estimate(model)"))
    return traced


def analyze_model(func, example_inputs, **options) -> dict:
    """Which TensorFlow ops of `func` would run on Neuron, without compiling.

    Returns the keys of torch-neuron's analyze_model: percent_supported,
    percent_supported_arithmetic, supported_count, total_count, supported_operators,
    unsupported_operators, operator_count (and reasons: op type -> why it stays on TensorFlow).
    """
    specs, names = _specs(example_inputs)
    fn = _positional(func, names, example_inputs)
    concrete = tf.function(lambda **kw: fn(**kw), autograph=False).get_concrete_function(**specs)
    cv = to_core(freeze(concrete, sorted(specs)))
    return analyze(cv, **options)
