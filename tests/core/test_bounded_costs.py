"""Costs a NEFF cannot blow up: the threads of the instruction kernels stay within the process's
budget however many instructions a program has, and the verifier's limits refuse sizes before
anything is allocated from them."""
from __future__ import annotations

import resource

import numpy as np
import pytest
from onnx import TensorProto, helper

from neuron_core.compiler import compile_graph, parse_compiler_args
from neuron_core.errors import NeffFormatError
from neuron_core.frontends.onnx_import import from_onnx
from neuron_core.neff import verify as verifier
from neuron_core.runtime import load
from neuron_core.runtime.kernels import session

from .neff_fixtures import neff, rewrite  # noqa: F401  (neff: a fixture)


def _threads() -> int:
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("Threads:"))


def _softmax_chain(n: int) -> bytes:
    nodes = [helper.make_node("Softmax", [f"t{i}"], [f"t{i + 1}"], axis=-1) for i in range(n)]
    graph = helper.make_graph(nodes, "chain",
                              [helper.make_tensor_value_info("t0", TensorProto.FLOAT, [1, 16])],
                              [helper.make_tensor_value_info(f"t{n}", TensorProto.FLOAT, [1, 16])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    return compile_graph(from_onnx(model), parse_compiler_args(["--fast-math", "none"])).to_bytes()


def test_instruction_kernels_share_a_bounded_number_of_threads():
    n = 3 * session.THREAD_BUDGET          # a session each: unbounded, 3x the budget in threads
    data = _softmax_chain(n)
    before, held_before = _threads(), session.threads_held()
    model = load(data, kernels="instruction")
    grown = _threads() - before     # onnxruntime's environment may start a thread of its own
    assert grown <= session.THREAD_BUDGET + 4, grown
    assert session.threads_held() <= session.THREAD_BUDGET
    x = np.random.default_rng(0).standard_normal((1, 16), np.float32)
    reference = load(data, kernels="reference")
    np.testing.assert_array_equal(model.run([x])[0], reference.run([x])[0])
    model.unload()
    del model
    import gc
    gc.collect()
    assert session.threads_held() == held_before      # the sessions gave their threads back


def test_a_huge_declared_tensor_is_refused_before_allocating(neff):  # noqa: F811
    """A buffer of 2^40 floats (4 TiB) with a consistent byte count: refused by the tensor-size
    limit, and the process's peak memory does not move."""
    def edit(metadata, program):
        b = next(b for b in program["buffers"] if b["kind"] == "internal")
        b["shape"], b["nbytes"] = [1 << 20, 1 << 20], (1 << 40) * 2
    data = rewrite(neff, edit)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    with pytest.raises(NeffFormatError, match=r"program\.buffers\[\d+\]\.shape.*more than one "
                                              "tensor may hold"):
        load(data)
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - peak < 64 * 1024   # KiB


def test_more_instructions_than_the_limit_are_refused_by_the_schema(neff):  # noqa: F811
    def edit(metadata, program):
        program["instrs"] = program["instrs"][:1] * (verifier.MAX_INSTRUCTIONS + 1)
    with pytest.raises(NeffFormatError, match=r"program\.instrs of .*at most 65536"):
        load(rewrite(neff, edit))
