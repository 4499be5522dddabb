"""Careless inputs get clear errors: an empty precision, non-ASCII core ids, a malformed
--io-config shape, a directory for a model file, an impossible pipeline size."""
from __future__ import annotations

import pytest

from neuron_core.compiler import parse_compiler_args
from neuron_core.errors import CompilerOptionError, FrontendError, NeuronError
from neuron_core.frontends.onnx_import import from_onnx
from neuron_core.models.builders import small_cnn
from neuron_core.runtime.device import parse_core_list
from neuron_core.runtime.executor import resolve_precision


def test_an_empty_precision_is_an_error_everywhere(monkeypatch):
    with pytest.raises(NeuronError, match=r"precision '' \(from argument precision=\).*hardware, fp32"):
        resolve_precision("")
    monkeypatch.setenv("NEURON_SIM_PRECISION", "")
    with pytest.raises(NeuronError, match=r"from \$NEURON_SIM_PRECISION"):
        resolve_precision(None)
    monkeypatch.delenv("NEURON_SIM_PRECISION")
    assert resolve_precision(None) == "hardware" and resolve_precision("fp32") == "fp32"


def test_onnx_compile_checks_its_precision_before_compiling():
    import neuron_core.onnx as neuron_onnx
    with pytest.raises(NeuronError, match="'bogus'"):
        neuron_onnx.compile(small_cnn(), precision="bogus")


@pytest.mark.parametrize("text", ["\u0663", "0-\u0663", "\uff11"])
def test_core_ids_are_ascii_digits(text):
    with pytest.raises(NeuronError, match="is invalid"):
        parse_core_list(text)


@pytest.mark.parametrize("shape", ["ab", [1, "3", 8, 8], [1, -3, 8, 8], [True, 3, 8, 8]])
def test_io_config_shapes_are_integers(shape):
    with pytest.raises(FrontendError, match="non-negative integers"):
        from_onnx(small_cnn(), {"inputs": {"input": [shape, "float32"]}})


def test_a_directory_is_not_a_model_file(tmp_path):
    with pytest.raises(FrontendError, match="is a directory"):
        from_onnx(tmp_path)


def test_pipeline_cores_beyond_the_largest_instance_are_refused():
    assert parse_compiler_args(["--neuroncore-pipeline-cores", "64"]).pipeline_cores == 64
    with pytest.raises(CompilerOptionError, match="must be 1 to 64"):
        parse_compiler_args(["--neuroncore-pipeline-cores", "1000000000"])


def test_a_neff_may_be_given_as_a_uint8_array_and_nothing_else_odd():
    """A NEFF held in a numpy array (a framework tensor's .numpy(), a 0-d bytes object array)
    loads like its bytes; other objects are a NeffSourceError (also a TypeError) saying what a
    NEFF may be given as."""
    import numpy as np

    from neuron_core.compiler import compile_graph
    from neuron_core.errors import NeffSourceError
    from neuron_core.runtime import load
    data = compile_graph(from_onnx(small_cnn()), parse_compiler_args([])).to_bytes()
    x = np.ones((1, 3, 32, 32), np.float32)
    want = load(data).run([x])[0]
    for held in (np.frombuffer(data, np.uint8), np.frombuffer(data, np.uint8).reshape(-1, 64),
                 np.array(data, dtype=object)):
        np.testing.assert_array_equal(load(held).run([x])[0], want)
    for odd, said in ((12, "got int"), (None, "got NoneType"),
                      (np.zeros(3, np.float32), "got a float32 array"),
                      (np.frombuffer(data, np.uint8)[::2], "non-contiguous uint8")):
        with pytest.raises(NeffSourceError, match=said):
            load(odd)
    assert issubclass(NeffSourceError, (NeuronError, TypeError))
