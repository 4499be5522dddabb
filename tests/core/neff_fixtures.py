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


def rewrite(path, edit) -> bytes:
    """The NEFF at `path` with `edit(metadata, program)` applied to copies of its JSON sections,
    re-written with the public writer (so every section hash is valid)."""
    import copy

    from neuron_core.neff import read_neff, to_bytes
    original = read_neff(path)
    metadata, program = copy.deepcopy(original.metadata), copy.deepcopy(original.program)
    edit(metadata, program)
    return to_bytes(metadata, program, dict(original.weights),
                    compiler_version=original.compiler_version)
