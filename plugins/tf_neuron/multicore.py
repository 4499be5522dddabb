"""`tfn.auto_multicore(traced, example_inputs, num_cores=N)`: one traced model on N NeuronCores,
calls going to the cores in turn; and the traced model as `tf.saved_model.load` or
`tf.keras.models.load_model` gives it back.

Each core gets its own copy of the compiled function whose NeuronOps carry that core in their
config (TensorFlow runs the ops on threads of its own, so a caller's `on_core` binding does not
reach them); all copies read the same NEFF variables. The turn is kept in a saved counter
variable and chosen by `tf.switch_case` inside the saved `__call__`, so the round robin also holds
for a reload of the multicore model and under TensorFlow Serving.

    model_neuron = tfn.trace(model, x)
    multicore = tfn.auto_multicore(model_neuron, x, num_cores=4)
    multicore(x)                                  # core 0, then 1, 2, 3, 0, ...
"""
from __future__ import annotations

import functools
import json

import tensorflow as tf

from neuron_core.errors import BadInputError, NeuronError
from neuron_core.neff import read_neff
from neuron_core.runtime.device import get_device_manager

from .capture import Captured
from .rewrite import make_function
from .trace import TracedModel, pack_call

__all__ = ["LoadedModel", "MulticoreModel", "auto_multicore", "is_traced", "load"]


def is_traced(obj) -> bool:
    """True for a traced model, its reload (tf.saved_model.load) and their multicore models."""
    return all(hasattr(obj, a) for a in ("neuron_form", "neuron_graph", "neuron_io", "neffs"))


class LoadedModel:
    """A traced model read back from its directory: called the way it was traced (a tensor or a
    list as one argument, a tuple positionally, a dict as keywords); `.save(path)` writes it
    again. Its other attributes are those of the `tf.saved_model.load` object."""

    def __init__(self, loaded):
        self._loaded = loaded
        self._form = loaded.neuron_form.numpy().decode()
        self.on_neuron_ratio = float(loaded.neuron_ratio.numpy())

    def __call__(self, *args, **kwargs):
        value = pack_call(self._form, args, kwargs, "the Neuron model")
        return self._loaded(*(list(value) if self._form == "tuple" else [value]))

    def __getattr__(self, name):
        return getattr(self.__dict__["_loaded"], name)

    def save(self, path, *args, **kwargs) -> None:
        """Write the model again as a SavedModel (Keras' save options have no effect)."""
        del args, kwargs
        tf.saved_model.save(self._loaded, str(path), signatures=dict(self._loaded.signatures))


def load(path) -> LoadedModel:
    """Read a traced (or multicore) model saved by `.save` / `tf.keras.models.save_model`."""
    loaded = tf.saved_model.load(str(path))
    if not is_traced(loaded):
        raise NeuronError(f"{str(path)!r} holds a SavedModel that tf_neuron.trace did not write; "
                          "load it with tf.saved_model.load")
    return LoadedModel(loaded)


def _parts(model) -> tuple:
    """(GraphDef, Captured, outputs, specs, NEFF variables by NeuronOp name, output structure,
    flat names) of a traced model or its reload."""
    model = getattr(model, "_loaded", model)
    if not is_traced(model):
        raise NeuronError(f"auto_multicore takes a model returned by tfn.trace, or "
                          f"tf.saved_model.load / tf.keras.models.load_model of its directory, got "
                          f"{type(model).__name__}; trace the model first")
    gd = tf.compat.v1.GraphDef()
    gd.ParseFromString(model.neuron_graph.numpy())
    io = json.loads(model.neuron_io.numpy())
    specs = {k: tf.TensorSpec(shape, tf.as_dtype(dtype), name=k)
             for k, (shape, dtype) in io["specs"].items()}
    inputs = [(name, tensor, None, None) for name, tensor in io["inputs"]]
    neffs = {v.name.split(":")[0][:-len("_executable")]: v for v in model.neffs}
    if isinstance(model, TracedModel):
        structure = model._compiled.captured.output_structure   # noqa: SLF001 (own module's)
    else:
        structure = model.aws_neuron_function.get_concrete_function().structured_outputs
    names = [name for name, _ in io["inputs"]]
    return gd, Captured(gd, None, inputs, io["outputs"]), io["outputs"], specs, neffs, \
        structure, names


def _cores(num_cores) -> list:
    visible = list(get_device_manager().visible_cores)
    if isinstance(num_cores, bool) or not isinstance(num_cores, int) or num_cores < 1:
        raise NeuronError(f"num_cores must be a positive int, got {num_cores!r}")
    if num_cores > len(visible):
        raise NeuronError(f"num_cores={num_cores} but this process sees {len(visible)} "
                          f"NeuronCore(s): {visible} (NEURON_RT_VISIBLE_CORES / "
                          "NEURON_RT_NUM_CORES choose them); ask for at most "
                          f"{len(visible)}")
    return visible[:num_cores]


def _check_pipeline(neffs: dict) -> None:
    """The Neuron SDK replicates only models compiled for one NeuronCore each
    (--neuroncore-pipeline-cores 1)."""
    for name, var in neffs.items():
        options = read_neff(var.numpy(), defer_weights=True).metadata.get("options") or {}
        pipeline = int(options.get("neuroncore_pipeline_cores", 1) or 1)
        if pipeline > 1:
            raise NeuronError(f"auto_multicore replicates models compiled for one NeuronCore; "
                              f"{name} was compiled with --neuroncore-pipeline-cores {pipeline}. "
                              "Trace it again without that option to replicate it")


def _round_robin(replicas: list, counter, names: tuple, *flat):
    turn = tf.math.floormod(counter.assign_add(1) - 1, len(replicas))
    kwargs = dict(zip(names, flat))
    branches = [functools.partial(_flat_call, fn, kwargs) for fn in replicas]
    return tf.switch_case(tf.cast(turn, tf.int32), branches)


def _flat_call(fn, kwargs):
    return tf.nest.flatten(fn(**kwargs))


def _structured(fn, structure, *args):
    return tf.nest.pack_sequence_as(structure, fn(*tf.nest.flatten(args)))


class MulticoreModel(tf.Module):
    """A traced model replicated on NeuronCores `cores`; each call runs on the next one.

    Attributes:
        cores: the NeuronCores of the replicas, in turn order.
        on_neuron_ratio: as the traced model's.
    """

    def __init__(self, model, cores: list):
        super().__init__(name="neuron_multicore")
        gd, cap, outputs, specs, neffs, structure, names = _parts(model)
        _check_pipeline(neffs)
        source = getattr(model, "_loaded", model)
        self.neuron_check = source.neuron_check
        self.neffs = list(neffs.values())
        self.neuron_info = source.neuron_info
        self.neuron_form = tf.Variable(source.neuron_form.numpy(), dtype=tf.string,
                                       trainable=False, name="neuron_form")
        self.neuron_ratio = tf.Variable(source.neuron_ratio.numpy(), dtype=tf.float64,
                                        trainable=False, name="neuron_ratio")
        self.neuron_graph = tf.Variable(gd.SerializeToString(), dtype=tf.string, trainable=False,
                                        name="neuron_graph")
        self.neuron_io = tf.Variable(source.neuron_io.numpy(), dtype=tf.string, trainable=False,
                                     name="neuron_io")
        self.neuron_cores = tf.Variable(cores, dtype=tf.int32, trainable=False,
                                        name="neuron_cores")
        self.turn = tf.Variable(0, dtype=tf.int64, trainable=False, name="neuron_turn")
        self.cores = list(cores)
        self._form = self.neuron_form.numpy().decode()
        self.on_neuron_ratio = float(self.neuron_ratio.numpy())
        replicas = [make_function(gd, cap, outputs, specs, neffs, core=c)[1] for c in cores]
        flat = [specs[n] for n in names]
        self.aws_neuron_function = tf.function(
            functools.partial(_round_robin, replicas, self.turn, tuple(names)),
            input_signature=flat, autograph=False)
        sample = tf.nest.pack_sequence_as(structure, outputs)   # the output structure
        form = source.__call__.get_concrete_function().structured_input_signature[0]
        self.__call__ = tf.function(functools.partial(_structured, self.aws_neuron_function,
                                                      sample),
                                    input_signature=list(form), autograph=False)

    def __call__(self, *args, **kwargs):   # noqa: D102 (the instance attribute is saved)
        value = pack_call(self._form, args, kwargs, "the multicore model")
        return self.__dict__["__call__"](*(list(value) if self._form == "tuple" else [value]))

    def save(self, path, *args, **kwargs) -> None:
        """Write a SavedModel that keeps the replicas and their turns."""
        del args, kwargs
        tf.saved_model.save(self, str(path))


def auto_multicore(model, example_inputs, num_cores: int = 1):
    """Replicate a traced model on `num_cores` NeuronCores (the first ones visible to this
    process); the returned model runs each call on the next core in turn.

    Args:
        model: what tfn.trace returned, or the tf.saved_model.load / tf.keras.models.load_model
            of its directory.
        example_inputs: inputs as the model takes them; each replica runs them once, which loads
            the model onto its core.
        num_cores: how many NeuronCores (at least 1, at most those visible).

    Example:
        >>> multicore = tfn.auto_multicore(model_neuron, x, num_cores=4)   # doctest: +SKIP
        >>> multicore(x)                                                    # doctest: +SKIP
    """
    cores = _cores(num_cores)
    multi = MulticoreModel(model, cores)
    value = example_inputs
    args = list(value) if multi._form == "tuple" else [value]    # noqa: SLF001
    try:
        for _ in cores:
            if multi._form == "dict":   # noqa: SLF001
                multi(**value)
            else:
                multi(*args)
    except (TypeError, ValueError) as exc:
        raise BadInputError(f"auto_multicore: example_inputs do not fit the traced model "
                            f"({type(exc).__name__}: {str(exc).splitlines()[0]}); give inputs "
                            "as the model was traced with") from None
    return multi
