"""`tf_neuron.estimate`: latency and throughput of a compiled model on Inf1 sizes, from the timing
model of its NeuronOps plus the TensorFlow work between them.

The host work is measured when the model is compiled (the best of two runs of example inputs,
minus the time spent in NeuronOps) and saved with the model in a `NeuronInfo` next to its NEFF
variables, so `estimate` works on a model loaded in another process.

    import tf_neuron
    tf_neuron.saved_model.compile("model_sm", "model_neuron")
    print(tf_neuron.estimate("model_neuron").format())
"""
from __future__ import annotations

import os

import tensorflow as tf

from neuron_core.errors import NeuronError
from neuron_core.estimate import Compiled, estimate_compiled, measure_host_ms
from neuron_core.estimate import summary as _summary


__all__ = ["NeuronInfo", "estimate", "measure_host", "summary"]


class NeuronInfo(tf.Module):
    """What `estimate` reads from a compiled function, saved with it: its NEFF variables in
    sub-graph order, the host work per call (ms) measured at compile time, and a name."""

    def __init__(self, neffs: list, name: str):
        super().__init__(name="neuron_info")
        self.neffs = list(neffs)
        self.host_ms = tf.Variable(0.0, dtype=tf.float64, trainable=False, name="neuron_host_ms")
        self.model_name = tf.Variable(name, dtype=tf.string, trainable=False, name="model_name")


def example_feed(specs: dict, feed: dict | None = None) -> dict:
    """name -> tensor for `specs`: the array given in `feed` (under the name or name:0) when its
    shape fits, else zeros (valid for every dtype, token ids included)."""
    out = {}
    for name, spec in specs.items():
        given = (feed or {}).get(name, (feed or {}).get(f"{name}:0"))
        if given is not None and spec.shape.is_compatible_with(getattr(given, "shape", ())):
            out[name] = tf.convert_to_tensor(given, dtype=spec.dtype)
        else:
            out[name] = tf.zeros(spec.shape, spec.dtype)
    return out


def measure_host(info: NeuronInfo, fn, *args, **kwargs) -> None:
    """Store in `info` the host work of `fn(*args, **kwargs)` (ms): its wall time minus the time
    every thread spent in NeuronOps, the best of two runs (the first one also warms TensorFlow
    up)."""
    info.host_ms.assign(measure_host_ms(lambda: fn(*args, **kwargs)))


def _compiled(model, signature_def_key) -> Compiled:
    """Where a compiled function keeps its NEFFs and host time: its `NeuronInfo`."""
    info = _info(model, signature_def_key)
    return Compiled([v.numpy() for v in info.neffs], float(info.host_ms.numpy()),
                    info.model_name.numpy().decode())


def _info(model, signature_def_key):
    if isinstance(model, (str, os.PathLike)):
        if not os.path.exists(os.path.join(model, "saved_model.pb")):
            raise NeuronError(f"{str(model)!r} holds no saved_model.pb; give the directory written "
                              "by tf_neuron.saved_model.compile or a traced model's .save")
        model = tf.saved_model.load(str(model))
    info = getattr(model, "neuron_info", None)
    if info is None:
        raise NeuronError(f"estimate takes a model compiled by tf_neuron.saved_model.compile or "
                          f"tf_neuron.trace (the object, its directory or tf.saved_model.load of "
                          f"it), got {type(model).__name__} without Neuron information; compile "
                          "it (again) with this tf_neuron")
    if hasattr(info, "host_ms"):   # a traced model: one function
        return info
    key = signature_def_key or ("serving_default" if "serving_default" in info else min(info))
    if key not in info:
        raise NeuronError(f"signature_def_key={key!r} is not in the compiled model; it has "
                          f"{sorted(info)}")
    return info[key]


def estimate(model_or_dir, instance: str | None = None, cores: int | None = None,
             batch_size: int | None = None, host_ms: float | None = None,
             signature_def_key: str | None = None):
    """Latency P50 and throughput of a compiled model on Inf1 sizes (timing model): its NeuronOps
    one after another plus the TensorFlow work measured at compile time (or `host_ms`).

    Args:
        model_or_dir: a compiled SavedModel's directory or its `tf.saved_model.load` result, or
            the model `tf_neuron.trace` returned (or its reload).
        instance: one Inf1 size, e.g. "inf1.xlarge" (default: all of them).
        cores: NeuronCores to use (default: all of the instance's).
        batch_size: samples per request (default: the compiled batch).
        host_ms: host work per request in ms, instead of the measured one.
        signature_def_key: the signature of a compiled SavedModel (default: serving_default).

    Returns:
        A `neuron_core.estimate.Estimate` (`.format()`, `.to_json()`, `.instances`).

    Example:
        >>> import tf_neuron
        >>> est = tf_neuron.estimate("resnet_neuron")                      # doctest: +SKIP
        >>> est.instances["inf1.xlarge"].latency_ms_p50                     # doctest: +SKIP
    """
    return estimate_compiled(_compiled(model_or_dir, signature_def_key), instance, cores,
                             batch_size, host_ms)


def summary(model, call: str, signature_def_key: str | None = None) -> str:
    """One line for the end of a compile: the estimate on the smallest Inf1 size."""
    return _summary(_compiled(model, signature_def_key), call)
