"""`tf.keras.models.save_model` / `load_model` for traced models, as the Neuron SDK's TF2 docs use
them:

    model_neuron = tfn.trace(model, example_inputs)
    tf.keras.models.save_model(model_neuron, './resnet50_inf1/1')     # or model_neuron.save(dir)
    reloaded = tf.keras.models.load_model('./resnet50_inf1/1')
    reloaded(example_inputs)

The Neuron SDK's Keras 2 read and wrote SavedModel directories itself. Keras 3 reads and writes
only .keras and .h5 files, so `import tf_neuron` wraps those two functions: a traced model (or
its multicore form) is written as a SavedModel directory, and a directory holding one is read
back as a callable `LoadedModel`. Every other model and path goes to Keras unchanged.
"""
from __future__ import annotations

import functools
import os

__all__ = ["install"]

#: the public modules that export Keras' save_model / load_model (tf.keras.models is keras.models)
MODULES = ("keras.saving", "keras.models")


def _saved_model_dir(path) -> bool:
    return isinstance(path, (str, os.PathLike)) and \
        os.path.isfile(os.path.join(path, "saved_model.pb"))


def _save(original, model, filepath, *args, **kwargs):
    from .multicore import is_traced
    if is_traced(model) and hasattr(model, "save"):
        return model.save(filepath)
    return original(model, filepath, *args, **kwargs)


def _load(original, filepath, *args, **kwargs):
    if _saved_model_dir(filepath):
        import tensorflow as tf
        from .multicore import LoadedModel, is_traced
        loaded = tf.saved_model.load(str(filepath))
        if is_traced(loaded):
            return LoadedModel(loaded)
    return original(filepath, *args, **kwargs)


def install() -> None:
    """Wrap keras' save_model and load_model (once) where the public modules export them."""
    import importlib
    for name in MODULES:
        module = importlib.import_module(name)
        for attr, hook in (("save_model", _save), ("load_model", _load)):
            current = getattr(module, attr)
            if getattr(current, "_neuron_hook", False):
                continue
            wrapped = functools.wraps(current)(functools.partial(hook, current))
            wrapped._neuron_hook = True
            setattr(module, attr, wrapped)
