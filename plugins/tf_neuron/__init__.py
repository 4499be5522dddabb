"""The TensorFlow plugin of neuron-sim: compile SavedModels and Keras models for the (simulated)
NeuronCore; the compiled regions become NeuronOps, the rest stays TensorFlow.

    import tf_neuron
    tf_neuron.saved_model.compile("model_sm", "model_neuron")       # {'OnNeuronRatio': ...}
    pred = tf_neuron.predictor.from_saved_model("model_neuron")
    traced = tf_neuron.trace(keras_model, example_inputs)           # TF2 tracing
    traced.save("traced_sm")
    print(tf_neuron.estimate("model_neuron").format())             # latency, throughput on Inf1

Importing it registers the NeuronOp runner (a compiled SavedModel needs it in every process that
loads it) and makes `tf.neuron` available (and `tf.contrib.predictor`, which TF1 scripts load
compiled models with); `tf.keras.models.save_model` / `load_model` then write and read traced
models (keras_io.py). Import it before tensorflow/numpy where you can: the
simulator's speed depends on the BLAS kernel numpy picks when it loads.
"""
from __future__ import annotations

import types

import neuron_core  # noqa: F401  (first: it picks numpy's BLAS kernel before numpy loads)
import tensorflow as tf  # noqa: E402

from neuron_core import logs as _logs  # noqa: E402

from . import op as _op
from . import predictor, saved_model
from .convert import TABLE
from .estimate import estimate
from .plugin import PLUGIN
from .trace import TracedModel, analyze_model, trace
from .multicore import auto_multicore
from . import keras_io

_op.register()
_logs.install()   # INFO:Neuron: lines on stderr until the application configures logging
keras_io.install()

__all__ = ["saved_model", "predictor", "trace", "analyze_model", "auto_multicore", "estimate",
           "TracedModel", "supported_operators", "PLUGIN"]


def supported_operators() -> list:
    """The TensorFlow op types the conversion table lowers to Neuron, sorted."""
    return TABLE.supported()


tf.neuron = types.SimpleNamespace(saved_model=saved_model, predictor=predictor, trace=trace,
                                  analyze_model=analyze_model, auto_multicore=auto_multicore,
                                  estimate=estimate, supported_operators=supported_operators)
if not hasattr(tf, "contrib"):
    # TF1 scripts of the Neuron SDK load compiled models with tf.contrib.predictor, which
    # TensorFlow 2 no longer has
    tf.contrib = types.SimpleNamespace(predictor=predictor)
