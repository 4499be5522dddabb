"""`tf_neuron.predictor.from_saved_model`: the TF1 `tf.contrib.predictor` idiom over a (compiled)
SavedModel: call the predictor with a feed dict, get a dict of numpy outputs."""
from __future__ import annotations

import numpy as np
import tensorflow as tf

from neuron_core.errors import BadInputError, NeuronError

__all__ = ["Predictor", "from_saved_model"]


class Predictor:
    """Calls one signature of a loaded SavedModel with a feed dict.

    Attributes:
        feed_tensors: input name -> tf.TensorSpec.
        fetch_tensors: output name -> tf.TensorSpec.
    """

    def __init__(self, loaded, signature_def_key: str):
        self._loaded = loaded   # keeps the model's resources alive
        self._fn = loaded.signatures[signature_def_key]
        self.signature_def_key = signature_def_key
        self.feed_tensors = dict(self._fn.structured_input_signature[1])
        self.fetch_tensors = dict(self._fn.structured_outputs)

    def __call__(self, feed_dict: dict) -> dict:
        if not isinstance(feed_dict, dict):
            raise BadInputError(f"the predictor takes a feed dict of input name -> array, got "
                                f"{type(feed_dict).__name__}; inputs: {sorted(self.feed_tensors)}")
        missing = sorted(set(self.feed_tensors) - set(feed_dict))
        stray = sorted(set(feed_dict) - set(self.feed_tensors))
        if missing or stray:
            raise BadInputError(f"feed dict keys {sorted(feed_dict)} do not match signature "
                                f"{self.signature_def_key!r}: missing {missing}, unknown {stray}")
        args = {}
        for name, spec in self.feed_tensors.items():
            arr = np.asarray(feed_dict[name])
            if not spec.shape.is_compatible_with(arr.shape):
                raise BadInputError(f"input {name!r} has shape {arr.shape}, the signature expects "
                                    f"{tuple(spec.shape)}")
            want = spec.dtype.as_numpy_dtype
            kinds = {"f": "f", "i": "iu", "u": "iu", "b": "b"}.get(np.dtype(want).kind, "")
            if kinds and arr.dtype.kind not in kinds:
                raise BadInputError(f"input {name!r} has dtype {arr.dtype.name}, the signature "
                                    f"expects {spec.dtype.name}; convert it (e.g. "
                                    f".astype(np.{np.dtype(want).name})) rather than have it cast "
                                    "silently")
            args[name] = tf.convert_to_tensor(arr, dtype=spec.dtype)
        return {k: v.numpy() for k, v in self._fn(**args).items()}


def from_saved_model(export_dir, signature_def_key: str = "serving_default", tags=None) -> Predictor:
    """Load a SavedModel (compiled or not) and return a predictor for one signature.

    Example:
        >>> import tf_neuron
        >>> pred = tf_neuron.predictor.from_saved_model("resnet_neuron")
        >>> pred({"input_1": images})["predictions"].shape
        (1, 1000)
    """
    loaded = tf.saved_model.load(str(export_dir), tags=tags)
    if signature_def_key not in loaded.signatures:
        raise NeuronError(f"signature_def_key={signature_def_key!r} is not in {str(export_dir)!r}; "
                          f"it has {sorted(loaded.signatures)}")
    return Predictor(loaded, signature_def_key)
