"""The whole-program kernels (runtime/graph.py, the default kernel set "fast") against the reference
kernels, and the user cache that keeps what they build (runtime/cache.py).

The oracle is the reference executor on the same NEFF. An op whose graph kernel is "exact" or
"probed" must give the reference's bits (a NaN may be any NaN); a "summed" one adds the same fp32
products in another order, so in hardware precision a result may cross one bf16 rounding boundary
(one bf16 ulp), and in fp32 it may differ by a few fp32 ulps of the partial sums.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import onnx
import pytest
from onnx import helper

from neuron_core import dtypes, runtime
from neuron_core.compiler import compile_graph, parse_compiler_args
from neuron_core.frontends.onnx_import import from_onnx
from neuron_core.ops import get_op
from neuron_core.runtime import cache, probe
from tests.core.conformance import applicable_cases, run_case
from tests.core.test_fast_kernels import _model
from tests.core.test_onnx_conformance import REJECTED

BF16_ULP = 2.0 ** -7


pytestmark = pytest.mark.usefixtures("fresh_runtime")


def _neff(model) -> bytes:
    return compile_graph(from_onnx(model), parse_compiler_args([])).to_bytes()


def _both(neff: bytes, feed: dict, precision: str = "hardware"):
    """(graph outputs, reference outputs, the graph executor)."""
    with runtime.load(neff, precision=precision, kernels="fast") as m:
        fast, executor = m.run(feed), m._executor
    with runtime.load(neff, precision=precision, kernels="reference") as m:
        ref = m.run(feed)
    return fast, ref, executor


def _same_numbers(a, b) -> None:
    assert a.shape == b.shape and a.dtype == b.dtype
    if a.dtype.kind != "f":
        np.testing.assert_array_equal(a, b)
        return
    same = probe.same_numbers(np.asarray(a, np.float32), np.asarray(b, np.float32))
    assert same.all(), f"{(~same).sum()} of {a.size} values differ from the reference's bits"


def _within_one_bf16_ulp(a, b) -> None:
    assert a.shape == b.shape and a.dtype == b.dtype
    np.testing.assert_array_equal(np.isnan(a), np.isnan(b))
    ok = ~np.isnan(a)
    largest = np.maximum(np.abs(a[ok]), np.abs(b[ok]))
    ulp = np.ldexp(np.float32(1), np.frexp(largest)[1] - 8)
    bad = ~((a[ok] == b[ok]) | (np.abs(a[ok] - b[ok]) <= ulp))
    assert not bad.any(), f"{bad.sum()} of {a.size} outputs differ by more than one bf16 ulp"


# -- every value a bf16 activation can hold --------------------------------------------------------
UNARY = ["Relu", "LeakyRelu", "Elu", "Selu", "Sigmoid", "Tanh", "Erf", "Gelu", "HardSigmoid",
         "HardSwish", "Softplus", "Exp", "Log", "Sqrt", "Reciprocal", "Neg", "Abs"]


@pytest.mark.parametrize("op_type", UNARY)
def test_unary_gives_the_reference_bits_on_every_bf16_value(op_type):
    """All 65,536 bf16 inputs through one op in hardware precision: the graph path's bits are the
    reference's, whatever this CPU's onnxruntime computes (a probed kernel that differs here
    stays on the reference)."""
    assert get_op(op_type).graph_kernel in ("exact", "probed")
    x = probe.stored_values(dtypes.BF16).reshape(256, 256)
    nodes = [helper.make_node("Relu", ["x"], ["r"]),   # an fp32 input is cast to bf16 first;
             helper.make_node(op_type, ["x"], ["y"])]  # the Relu keeps the cast inside a graph
    model = _model(nodes, {"x": x}, ["y", "r"], {})
    with np.errstate(all="ignore"):
        fast, ref, executor = _both(_neff(model), {"x": x})
    for a, b in zip(fast, ref):
        _same_numbers(a, b)
    assert executor.graph_instructions >= 2  # the cast and the Relu, at least, ran in a graph


# -- the conformance cases ---------------------------------------------------------------------------
SINGLE = {name: case for name, case in applicable_cases().items()
          if name not in REJECTED and len(case.model.graph.node) == 1}


def _kind(case) -> str:
    op = case.model.graph.node[0].op_type
    return get_op(op).graph_kernel or "reference"


@pytest.mark.parametrize("name", sorted(SINGLE))
def test_conformance_case_against_the_reference_kernels(name, monkeypatch):
    """Every single-node conformance case in hardware precision, graph kernels against the
    reference kernels: bit for bit, or within one bf16 ulp where the op sums."""
    case = SINGLE[name]
    runs = {}
    with np.errstate(all="ignore"):
        for kernels in ("fast", "reference"):
            monkeypatch.setenv("NEURON_SIM_KERNELS", kernels)
            runs[kernels] = [actual for actual, _ in run_case(case, precision="hardware")]
    for fast, ref in zip(runs["fast"], runs["reference"]):
        for a, b in zip(fast, ref):
            if _kind(case) == "summed":
                _within_one_bf16_ulp(a, b)
            else:
                _same_numbers(a, b)


def test_conformance_cases_mostly_run_in_graphs():
    kinds = [_kind(c) for c in SINGLE.values()]
    assert kinds.count("reference") < len(kinds) / 2


# -- MaxPool and NaN -------------------------------------------------------------------------------
def test_a_nan_reaching_a_maxpool_gives_the_references_result():
    """onnxruntime's blocked MaxPool drops a NaN in its window; the graph reports it (a guard
    output) and the run is redone on the reference kernels, so the NaN wins as it does there."""
    rng = np.random.default_rng(1)
    x = rng.standard_normal((1, 16, 8, 8)).astype(np.float32)
    nodes = [helper.make_node("Conv", ["x", "w"], ["c"], pads=[1, 1, 1, 1]),
             helper.make_node("MaxPool", ["c"], ["p"], kernel_shape=[2, 2], strides=[2, 2]),
             helper.make_node("Conv", ["p", "w"], ["y"], pads=[1, 1, 1, 1])]
    w = (rng.standard_normal((16, 16, 3, 3)) / 12).astype(np.float32)
    neff = _neff(_model(nodes, {"x": x}, ["y"], {"w": w}))
    fast, ref, executor = _both(neff, {"x": x}, "fp32")
    np.testing.assert_allclose(fast[0], ref[0], rtol=1e-4, atol=1e-5)
    assert "reference" not in executor._fallback
    x[0, 3, 2, 5] = np.nan
    fast, ref, executor = _both(neff, {"x": x}, "fp32")
    np.testing.assert_array_equal(np.isnan(fast[0]), np.isnan(ref[0]))
    assert np.isnan(fast[0]).any()
    finite = ~np.isnan(ref[0])
    np.testing.assert_allclose(fast[0][finite], ref[0][finite], rtol=1e-4, atol=1e-5)


def test_the_fused_relu_probe_can_tell_a_difference():
    """The probe of the blocked convolutions' fused Relu accepts it only where its bits are
    np.maximum's: a LeakyRelu of slope 0 (which gives -0 for negatives) and a Clip to a finite
    top are refused on any CPU."""
    from neuron_core.runtime.kernels import nchwc_block
    block = nchwc_block()
    if block is None:
        pytest.skip("onnxruntime has no blocked convolutions on this CPU")
    assert not probe._probe_fused_relu(block, "LeakyRelu", [0.0])
    assert not probe._probe_fused_relu(block, "Clip", [0.0, 1e30])
    assert probe.fused_relu_holds(block) == probe._probe_fused_relu(block)


@pytest.mark.parametrize("precision", ["fp32", "hardware"])
def test_conv_relu_chains_keep_nan_and_the_sign_of_zero(precision):
    """NaN, infinities and zeros through blocked Conv + Relu (fused into the kernel where the
    probe allows it): the graph path gives the reference's NaNs and zeros, bit for bit."""
    from neuron_core.runtime.kernels import nchwc_block
    rng = np.random.default_rng(5)
    x = rng.standard_normal((1, 16, 6, 6)).astype(np.float32)
    x[0, 2, 1, 1], x[0, 5, 3, 4], x[0, 7, 5, 5] = np.nan, np.inf, -np.inf
    nodes = [helper.make_node("Conv", ["x", "w1"], ["c1"]),
             helper.make_node("Relu", ["c1"], ["r1"]),
             helper.make_node("Conv", ["r1", "w2"], ["c2"], pads=[1, 1, 1, 1]),
             helper.make_node("Relu", ["c2"], ["y"])]
    w1 = np.eye(16, dtype=np.float32).reshape(16, 16, 1, 1)  # NaN and inf stay in one channel
    w2 = (rng.standard_normal((16, 16, 3, 3)) / 12).astype(np.float32)
    neff = _neff(_model(nodes, {"x": x}, ["y", "r1"], {"w1": w1, "w2": w2}))
    with np.errstate(all="ignore"):
        fast, ref, executor = _both(neff, {"x": x}, precision)
    y, r1 = fast
    _same_numbers(r1, ref[1])  # identity conv + Relu: exact
    np.testing.assert_array_equal(np.isnan(y), np.isnan(ref[0]))
    assert np.isnan(y).any() and (y == 0).any()
    assert not np.signbit(y[y == 0]).any() and not np.signbit(r1[r1 == 0]).any()
    if nchwc_block() is not None:
        model = onnx.load_from_string(executor.segments[0].model)
        fused = [n for n in model.graph.node if n.op_type == "Conv"
                 and any(a.name == "activation" for a in n.attribute)]
        assert bool(fused) == probe.fused_relu_holds(nchwc_block())


def test_a_profile_runs_on_the_instruction_kernels():
    x = np.ones((2, 8), np.float32)
    model = _model([helper.make_node("MatMul", ["x", "w"], ["y"])], {"x": x}, ["y"],
                   {"w": np.full((8, 4), 0.5, np.float32)})
    with runtime.load(_neff(model), precision="fp32") as m:
        timings: list = []
        y, = m._executor.run([x], timings)
        assert len(timings) == len(m._executor.program.instrs)
        np.testing.assert_array_equal(y, np.full((2, 4), 4.0, np.float32))


# -- the cache ---------------------------------------------------------------------------------------
def _small_cnn():
    rng = np.random.default_rng(3)
    x = rng.standard_normal((1, 8, 6, 6)).astype(np.float32)
    nodes = [helper.make_node("Conv", ["x", "w"], ["c"], pads=[1, 1, 1, 1]),
             helper.make_node("Relu", ["c"], ["r"]),
             helper.make_node("Sigmoid", ["r"], ["y"])]
    w = (rng.standard_normal((16, 8, 3, 3)) / 8).astype(np.float32)
    return _neff(_model(nodes, {"x": x}, ["y"], {"w": w})), x


def test_the_second_load_reads_the_cache_and_a_broken_entry_is_rebuilt(tmp_path, monkeypatch):
    monkeypatch.setenv("NEURON_SIM_CACHE_DIR", str(tmp_path))
    neff, x = _small_cnn()
    results = []
    for expect_cached in (False, True):
        with runtime.load(neff) as m:
            assert m._executor.from_cache is expect_cached
            results.append(m.run({"x": x})[0])
    _same_numbers(results[0], results[1])
    entry, = [p for p in tmp_path.iterdir() if not p.name.startswith(".")]
    for f in entry.glob("*.onnx"):
        f.write_bytes(b"not a model")
    with runtime.load(neff) as m:  # onnxruntime refuses the entry: built anew and stored again
        assert m._executor.from_cache is False
        _same_numbers(m.run({"x": x})[0], results[0])
    with runtime.load(neff) as m:
        assert m._executor.from_cache is True
    (entry / "segments.json").write_text("{")
    with runtime.load(neff) as m:
        assert m._executor.from_cache is False
    with runtime.load(neff, precision="fp32") as m:  # another precision, another entry
        assert m._executor.from_cache is False
    assert len([p for p in tmp_path.iterdir() if not p.name.startswith(".")]) == 2


def test_the_cache_can_be_turned_off(tmp_path, monkeypatch):
    monkeypatch.setenv("NEURON_SIM_CACHE_DIR", "off")
    assert cache.cache_dir() is None
    neff, x = _small_cnn()
    for _ in range(2):
        with runtime.load(neff) as m:
            assert m._executor.from_cache is False


def test_the_cache_keeps_within_its_size(tmp_path, monkeypatch):
    monkeypatch.setenv("NEURON_SIM_CACHE_DIR", str(tmp_path))
    monkeypatch.setenv("NEURON_SIM_CACHE_MAX_MB", "0.000001")  # every entry is over the limit
    neff, x = _small_cnn()
    with runtime.load(neff) as m:
        m.run({"x": x})
    assert not [p for p in tmp_path.iterdir() if not p.name.startswith(".")]


FRESH_PROCESS = textwrap.dedent("""
    import json, sys, time
    started = time.perf_counter()
    import neuron_core
    import numpy as np
    model = neuron_core.runtime.load(sys.argv[1])
    loaded = time.perf_counter()
    x = np.load(sys.argv[2])
    y = model.run({"x": x})[0]
    np.save(sys.argv[3], y)
    print(json.dumps({"from_cache": model._executor.from_cache,
                      "numba": "numba" in sys.modules, "onnx": "onnx" in sys.modules}))
""")


def test_a_fresh_process_loads_from_the_cache_without_numba(tmp_path):
    """Two fresh processes load and run one NEFF: the first builds and stores its graphs, the
    second reads them; neither imports numba (0.5 s of imports) and both give the same bits."""
    neff, x = _small_cnn()
    (tmp_path / "m.neff").write_bytes(neff)
    np.save(tmp_path / "x.npy", x)
    env = dict(os.environ, NEURON_SIM_CACHE_DIR=str(tmp_path / "cache"))
    env.pop("NEURON_SIM_KERNELS", None)
    reports = []
    for k in range(2):
        out = subprocess.run([sys.executable, "-c", FRESH_PROCESS, str(tmp_path / "m.neff"),
                              str(tmp_path / "x.npy"), str(tmp_path / f"y{k}.npy")],
                             capture_output=True, text=True, env=env, timeout=120)
        assert out.returncode == 0, out.stderr
        reports.append(json.loads(out.stdout.strip().splitlines()[-1]))
    assert [r["from_cache"] for r in reports] == [False, True]
    assert not any(r["numba"] for r in reports)
    assert not reports[1]["onnx"], "a load from the cache needs no onnx (only onnxruntime)"
    _same_numbers(np.load(tmp_path / "y0.npy"), np.load(tmp_path / "y1.npy"))


def test_float16_and_bfloat16_model_inputs_run_on_every_kernel_set(tmp_path):
    """A program whose inputs are fp16/bf16 (a model with Optimization.FLOAT32_TO_FLOAT16, a TF
    fp16 model) runs on the graph kernels too: they hold floats in float32 containers."""
    import ml_dtypes
    import numpy as np

    from neuron_core.compiler import compile_graph, parse_compiler_args
    from neuron_core.ir import Graph, TensorType
    from neuron_core.runtime import load
    for dtype, np_dtype in (("float16", np.float16), ("bfloat16", ml_dtypes.bfloat16)):
        g = Graph("half_io")
        x = g.add_input("x", TensorType((2, 8), dtype))
        # elementwise only: each kernel set gives the same bits on any CPU (no summation order)
        w = g.add_const("w", np.linspace(-1, 1, 16, dtype=np.float32).reshape(2, 8))
        wide, = g.add_node("Cast", [x], {"to": 1}).outputs
        y, = g.add_node("Mul", [wide, w]).outputs
        r, = g.add_node("Relu", [y]).outputs
        g.outputs = [r]
        path = tmp_path / f"{dtype}.neff"
        compile_graph(g, parse_compiler_args([])).save(path)
        feed = np.linspace(-2, 2, 16, dtype=np.float32).reshape(2, 8).astype(np_dtype)
        got = {k: load(path, kernels=k).run([feed])[0] for k in ("fast", "instruction",
                                                                   "reference")}
        assert all(v.dtype == np.float32 for v in got.values())
        np.testing.assert_array_equal(got["fast"], got["reference"])
        np.testing.assert_array_equal(got["instruction"], got["reference"])
