"""TF2 tracing: `tf_neuron.trace(func_or_keras_model, example_inputs)` compiles a function for the
NeuronCore and returns a callable model; `analyze_model` reports op support without compiling."""
from __future__ import annotations

import functools
import logging

import numpy as np
import tensorflow as tf

from neuron_core.bridge import analyze
from neuron_core.errors import NeuronError

from .capture import freeze, to_core
from .estimate import NeuronInfo, measure_host, summary
from .op import NeuronCheck
from .saved_model import compile_function

__all__ = ["TracedModel", "trace", "analyze_model"]

log = logging.getLogger("Neuron")


def _specs(example_inputs) -> tuple[dict, list]:
    """example inputs (a tensor/array or a list/tuple of them) -> (name -> TensorSpec, names)."""
    items = list(example_inputs) if isinstance(example_inputs, (list, tuple)) else [example_inputs]
    if not items:
        raise NeuronError("example_inputs is empty; give one example tensor per argument")
    specs = {}
    for i, x in enumerate(items):
        if not hasattr(x, "shape") or not hasattr(x, "dtype"):
            raise NeuronError(f"example_inputs[{i}] is a {type(x).__name__}; give tf.Tensor or "
                              "numpy arrays (one per positional argument)")
        arr = x if isinstance(x, tf.Tensor) else np.asarray(x)
        specs[f"input_{i}"] = tf.TensorSpec(arr.shape, tf.as_dtype(arr.dtype), name=f"input_{i}")
    return specs, list(specs)


def _positional(func, names: list):
    if not callable(func):
        raise NeuronError(f"trace expects a callable (a Keras model, tf.function or function), "
                          f"got {type(func).__name__}")

    def by_name(**kwargs):
        return func(*[kwargs[n] for n in names])
    return by_name


def _by_position(fn, names: tuple, *args):
    return fn(**dict(zip(names, args)))


class TracedModel(tf.Module):
    """A compiled model: call it like the original; `.save(path)` writes a SavedModel that
    `tf.saved_model.load` (after `import tf_neuron`) restores as a callable. `neuron_info` (its
    NEFFs and measured host work) is saved with it for `tf_neuron.estimate`."""

    def __init__(self, tf_fn, specs: dict, names: list, plan, neffs: dict, info: NeuronInfo):
        super().__init__(name="neuron_traced")
        self.neuron_check = NeuronCheck()
        self.neffs = list(neffs.values())
        self.neuron_info = info
        self._names = list(names)
        self._specs = specs
        self._serve = tf_fn
        # a partial, not a lambda: TensorFlow counts tracings per code object, so the lambdas of
        # several models would add up to its "excessive retracing" warning
        self.__call__ = tf.function(functools.partial(_by_position, tf_fn, tuple(names)),
                                    input_signature=[specs[n] for n in names], autograph=False)
        self.on_neuron_ratio = plan.on_neuron_ratio
        self._report = plan.report

    @property
    def report(self):
        """The partition report (text with str(), JSON with .to_json())."""
        return self._report

    def __call__(self, *args):   # noqa: D102 (instance attribute above is the saved function)
        return self.__dict__["__call__"](*args)

    def save(self, path) -> None:
        """Write a SavedModel (serving_default signature included)."""
        signature = self._serve.get_concrete_function(**self._specs)
        tf.saved_model.save(self, str(path), signatures={"serving_default": signature})


def trace(func, example_inputs, subgraph_builder_function=None, *, compiler_args=None,
          minimum_segment_size=2, no_fuse_ops=None, force_fuse_ops=None,
          dynamic_batch_size=False, compiler_workdir=None, cost_aware=True) -> TracedModel:
    """Compile `func` (a Keras model, tf.function or Python function of tensors) at the shapes of
    `example_inputs` for the NeuronCore.

    Example:
        >>> import tf_neuron
        >>> model = tf.keras.applications.ResNet50(weights=None)
        >>> traced = tf_neuron.trace(model, tf.zeros([1, 224, 224, 3]))
        >>> traced.on_neuron_ratio
        1.0
        >>> traced.save("resnet_traced")

    Options are those of `tf_neuron.saved_model.compile`; `cost_aware=False` keeps regions whose
    transfers cost more than they save (the partitioner drops them by default). The log ends with
    the estimated latency and throughput on inf1.xlarge; `tf_neuron.estimate(traced)` gives every
    Inf1 size.
    """
    specs, names = _specs(example_inputs)
    fn = _positional(func, names)
    _, tf_fn, plan, neffs, info = compile_function(
        fn, specs, dynamic_batch_size=dynamic_batch_size, compiler_args=compiler_args,
        workdir=compiler_workdir, where=getattr(func, "name", None) or "traced",
        minimum_segment_size=minimum_segment_size, no_fuse_ops=no_fuse_ops,
        force_fuse_ops=force_fuse_ops, subgraph_builder_function=subgraph_builder_function,
        cost_aware=cost_aware)
    traced = TracedModel(tf_fn, specs, names, plan, neffs, info)
    examples = example_inputs if isinstance(example_inputs, (list, tuple)) else [example_inputs]
    measure_host(info, traced, *examples)
    log.info(summary(traced, "tf.neuron.estimate(model)"))
    return traced


def analyze_model(func, example_inputs, **options) -> dict:
    """Which TensorFlow ops of `func` would run on Neuron, without compiling.

    Returns the keys of torch-neuron's analyze_model: percent_supported,
    percent_supported_arithmetic, supported_count, total_count, supported_operators,
    unsupported_operators, operator_count (and reasons: op type -> why it stays on TensorFlow).
    """
    specs, names = _specs(example_inputs)
    fn = _positional(func, names)
    concrete = tf.function(lambda **kw: fn(**kw), autograph=False).get_concrete_function(**specs)
    cv = to_core(freeze(concrete, sorted(specs)))
    return analyze(cv, **options)
