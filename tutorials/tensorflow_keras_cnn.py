"""Tutorial: compile a Keras CNN for the (simulated) NeuronCore with tf_neuron.

Run it with `python tutorials/tensorflow_keras_cnn.py [workdir]`. It

1. builds a Keras MobileNetV2 (random weights, 64x64 images) and exports it as a SavedModel,
2. compiles that SavedModel with `tf_neuron.saved_model.compile` (the Neuron SDK's TF API),
3. loads the compiled model with the predictor (or `tf.saved_model.load`) and predicts,
4. compares with TensorFlow: exactly in the simulator's full-fp32 mode, and within BF16
   rounding in the default "hardware" precision (the NeuronCore computes in BF16),
5. shows `tf_neuron.trace`, the TF2 path for Keras models and functions,
6. estimates latency and throughput on each Inf1 size with `tf_neuron.estimate`.
"""
from __future__ import annotations

import logging
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

import tf_neuron  # noqa: E402  (registers the NeuronOp runner; also makes tf.neuron available)


def main(workdir: Path) -> None:
    logging.basicConfig(level=logging.WARNING)
    # 1. a Keras model, exported as a SavedModel (Keras 3: model.export)
    model = keras.applications.MobileNetV2(weights=None, input_shape=(64, 64, 3), alpha=0.35,
                                           classifier_activation=None)
    model.export(str(workdir / "mobilenet"), verbose=False)

    # 2. compile it: supported regions become NeuronOps, the rest stays TensorFlow
    started = time.perf_counter()
    result = tf_neuron.saved_model.compile(workdir / "mobilenet", workdir / "mobilenet_neuron",
                                           batch_size=1, overwrite=True)
    print(f"compiled in {time.perf_counter() - started:.1f} s: {result}")

    # 3. load and predict with a feed dict (any process: just `import tf_neuron` first)
    predictor = tf_neuron.predictor.from_saved_model(workdir / "mobilenet_neuron")
    name = next(iter(predictor.feed_tensors))
    images = np.random.default_rng(0).standard_normal((1, 64, 64, 3)).astype(np.float32)
    reference = model(images).numpy()

    # 4. compare with TensorFlow; the precision is read each time a NEFF runs
    for precision in ("fp32", "hardware"):
        os.environ["NEURON_SIM_PRECISION"] = precision
        logits = predictor({name: images})["output_0"]
        err = np.abs(logits - reference).max() / np.abs(reference).max()
        print(f"{precision:>8} precision: max error relative to TensorFlow {err:.2e}, "
              f"same top-1 class: {bool(logits.argmax() == reference.argmax())}")
    os.environ.pop("NEURON_SIM_PRECISION")

    # 5. TF2 tracing of a Keras model, saved and loaded back as a callable
    traced = tf_neuron.trace(model, images)
    print(f"traced: on_neuron_ratio={traced.on_neuron_ratio:.3f}")
    traced.save(workdir / "traced")
    restored = tf.saved_model.load(str(workdir / "traced"))
    agree = np.allclose(restored(images).numpy(), traced(images).numpy())
    print(f"traced model saved and reloaded; outputs agree: {agree}")

    # 6. latency and throughput on Inf1 sizes: the timing model of the NeuronOps plus the
    # TensorFlow work measured at compile time (saved with the model)
    print(tf_neuron.estimate(workdir / "mobilenet_neuron").format())


if __name__ == "__main__":
    if len(sys.argv) > 1:
        target = Path(sys.argv[1])
        target.mkdir(parents=True, exist_ok=True)
        main(target)
    else:
        with tempfile.TemporaryDirectory() as tmp:
            main(Path(tmp))
