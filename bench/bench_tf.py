"""TensorFlow plugin benchmark: Keras ResNet-50 (224 px, batch 1) and a BERT-base-sized Keras
encoder compiled with tf_neuron.saved_model.compile, run on the simulated NeuronCore (hardware
precision) against the original SavedModel on TensorFlow's CPU kernels, interleaved in one run;
then the OnNeuronRatio of each keras.applications family.

    python bench/bench_tf.py [--repeat 10] [--models resnet50 bert_base] [--no-families]

Run times are medians of interleaved calls (so the shared machine's noise hits both sides alike)
of the loaded SavedModels' serving signatures; compile time covers the whole
`saved_model.compile` (load, freeze, convert, partition, compile, rewrite, save).
"""
from __future__ import annotations

import argparse
import logging
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
import tf_neuron  # noqa: E402  (first: neuron_core picks the BLAS kernel before numpy loads)

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from bench_core import settle, simulator_kernels, verdict  # noqa: E402

TARGETS = {"run_ratio": 1.5, "compile_s": {"resnet50": 15.0}, "on_neuron": 0.95}
L = keras.layers


def bert_encoder(layers=12, hidden=768, heads=12, ffn=3072, seq=128):
    """A BERT-base-sized Keras encoder on embedded inputs (post-LN, GELU)."""
    x0 = keras.Input((seq, hidden))
    x = x0
    for _ in range(layers):
        a = L.MultiHeadAttention(heads, hidden // heads)(x, x)
        x = L.LayerNormalization(epsilon=1e-12)(x + a)
        f = L.Dense(hidden)(L.Dense(ffn, activation="gelu")(x))
        x = L.LayerNormalization(epsilon=1e-12)(x + f)
    return keras.Model(x0, x, name="bert_base_encoder")


MODELS = {
    "resnet50": (lambda: keras.applications.ResNet50(weights=None, input_shape=(224, 224, 3),
                                                     classifier_activation=None),
                 (1, 224, 224, 3)),
    "bert_base": (bert_encoder, (1, 128, 768)),
}
FAMILIES = {
    "ResNet50": lambda: keras.applications.ResNet50(weights=None, input_shape=(64, 64, 3)),
    "MobileNetV2": lambda: keras.applications.MobileNetV2(weights=None, input_shape=(64, 64, 3)),
    "MobileNetV3Small": lambda: keras.applications.MobileNetV3Small(weights=None,
                                                                    input_shape=(64, 64, 3)),
    "EfficientNetB0": lambda: keras.applications.EfficientNetB0(weights=None,
                                                                input_shape=(64, 64, 3)),
    "DenseNet121": lambda: keras.applications.DenseNet121(weights=None, input_shape=(64, 64, 3)),
    "InceptionV3": lambda: keras.applications.InceptionV3(weights=None, input_shape=(75, 75, 3)),
    "VGG16": lambda: keras.applications.VGG16(weights=None, input_shape=(64, 64, 3)),
    "Transformer": lambda: bert_encoder(layers=2, hidden=64, heads=4, ffn=128, seq=16),
}


def _signature(path):
    fn = tf.saved_model.load(str(path)).signatures["serving_default"]
    return fn, next(iter(fn.structured_input_signature[1]))


def bench(name: str, build, shape, repeat: int, tmp: Path) -> dict:
    build().export(str(tmp / name), verbose=False)
    started = time.perf_counter()
    result = tf_neuron.saved_model.compile(tmp / name, tmp / f"{name}_neuron",
                                           signature_def_key="serving_default")
    compile_s = time.perf_counter() - started
    (ref, arg), (ours, _) = _signature(tmp / name), _signature(tmp / f"{name}_neuron")
    x = tf.constant(np.random.default_rng(0).standard_normal(shape).astype(np.float32))
    want, got = ref(**{arg: x}), ours(**{arg: x})   # warm-up both (first call loads the NEFF)
    t_sim, t_tf = [], []
    for _ in range(repeat):
        settle()
        started = time.perf_counter()
        got = ours(**{arg: x})
        t_sim.append(time.perf_counter() - started)
        settle()
        started = time.perf_counter()
        want = ref(**{arg: x})
        t_tf.append(time.perf_counter() - started)
    a, b = next(iter(got.values())).numpy(), next(iter(want.values())).numpy()
    return {"compile_s": compile_s, "ratio_on": result["OnNeuronRatio"],
            "sim_ms": 1e3 * statistics.median(t_sim), "tf_ms": 1e3 * statistics.median(t_tf),
            "run_ratio": statistics.median(t_sim) / statistics.median(t_tf),
            "rel_err": float(np.linalg.norm(a - b) / np.linalg.norm(b))}


def families(tmp: Path) -> None:
    print(f"\n{'family':18s} {'OnNeuronRatio':>13s} {'TF ops':>7s} {'on Neuron':>9s}  left on TF")
    for name, build in FAMILIES.items():
        model = build()
        x = np.zeros((1,) + tuple(model.input_shape[1:]), np.float32)
        info = tf_neuron.analyze_model(model, x)
        traced = tf_neuron.trace(model, x)
        left = ", ".join(f"{k}: {v}" for k, v in info["unsupported_operators"].items()) or "-"
        print(f"{name:18s} {traced.on_neuron_ratio:13.3f} {info['total_count']:7d} "
              f"{info['supported_count']:9d}  {left}")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=10)
    parser.add_argument("--models", nargs="+", default=list(MODELS))
    parser.add_argument("--no-families", action="store_true")
    args = parser.parse_args(argv)
    logging.getLogger("Neuron").setLevel(logging.WARNING)
    print(f"{simulator_kernels()}; TensorFlow {tf.__version__} CPU "
          f"(intra-op threads: {tf.config.threading.get_intra_op_parallelism_threads() or 'auto'})")
    print(f"{'model':10s} {'compile s':>9s} {'on Neuron':>9s} {'sim ms':>8s} {'TF ms':>8s} "
          f"{'sim/TF':>7s} {'bf16 err':>8s}")
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.models:
            build, shape = MODELS[name]
            r = bench(name, build, shape, args.repeat, Path(tmp))
            print(f"{name:10s} {r['compile_s']:9.2f} {r['ratio_on']:9.3f} {r['sim_ms']:8.1f} "
                  f"{r['tf_ms']:8.1f} {r['run_ratio']:7.2f} {r['rel_err']:8.2e}")
            notes = [f"run ratio target <= {TARGETS['run_ratio']}: "
                     f"{verdict(r['run_ratio'] <= TARGETS['run_ratio'])}",
                     f"OnNeuronRatio target >= {TARGETS['on_neuron']}: "
                     f"{verdict(r['ratio_on'] >= TARGETS['on_neuron'])}"]
            if name in TARGETS["compile_s"]:
                t = TARGETS["compile_s"][name]
                notes.append(f"compile target <= {t} s: "
                             f"{verdict(r['compile_s'] <= t)}")
            print("           " + "; ".join(notes))
        if not args.no_families:
            families(Path(tmp))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
