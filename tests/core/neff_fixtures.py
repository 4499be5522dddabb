"""Fixtures shared by the runtime-tool tests (profiles, neuron-ls/top/monitor, estimates)."""
from __future__ import annotations

import pytest

from neuron_core.compiler import compile_graph, parse_compiler_args
from neuron_core.frontends.onnx_import import from_onnx
from neuron_core.models.builders import small_cnn


@pytest.fixture(scope="module")
def neff(tmp_path_factory):
    """The bundled small CNN compiled with the default options, saved as cnn.neff."""
    path = tmp_path_factory.mktemp("neff") / "cnn.neff"
    compile_graph(from_onnx(small_cnn()), parse_compiler_args([])).save(path)
    return path
