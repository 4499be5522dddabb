"""The fast kernels against the reference kernels: TensorEngine instructions on onnxruntime's packed
weights (runtime/kernels/) and the compiled bf16 rounding (dtypes.round_to).

Both kernel sets sum the same fp32 products of the same stored operands, in different orders. In
fp32 mode that is a few ulps of the partial sums (the ops' own tolerance against onnxruntime, rtol
1e-4 / atol 1e-5 for sums of up to ~600 terms); in hardware mode the difference can only move a
result across a rounding boundary, so one instruction's outputs agree to within one bf16 ulp.
"""
from __future__ import annotations

import ml_dtypes
import numpy as np
import pytest
from onnx import TensorProto, helper, numpy_helper

from neuron_core import NeuronError, dtypes, runtime
from neuron_core.compiler import compile_graph, parse_compiler_args
from neuron_core.frontends.onnx_import import from_onnx
from neuron_core.models.builders import resnet
from neuron_core.runtime import context, kernels
from tests.core.ops.test_conv import CONV, CONV_TRANSPOSE, TOL
from tests.core.ops.test_conv import _data as conv_data


@pytest.fixture(autouse=True)
def fresh_devices(fresh_runtime, monkeypatch):
    # these tests look inside the per-instruction kernels; the whole-program graphs that run by
    # default are checked against the same references in test_graph_kernels.py
    monkeypatch.setenv("NEURON_SIM_KERNELS", "instruction")
    dtypes.load_jit()  # what the instruction kernels do first; vector_kernel is called directly


def _model(nodes, inputs: dict, outputs: list, consts: dict):
    graph = helper.make_graph(
        nodes, "g",
        [helper.make_tensor_value_info(n, TensorProto.FLOAT, a.shape) for n, a in inputs.items()],
        [helper.make_tensor_value_info(n, TensorProto.FLOAT, None) for n in outputs],
        [numpy_helper.from_array(a, n) for n, a in consts.items()])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def _single(op_type: str, data: list, attrs: dict, const: tuple):
    """One node; the operands at positions `const` are initializers, the others graph inputs."""
    names = [f"{'c' if i in const else 'x'}{i}" for i in range(len(data))]
    node = helper.make_node(op_type, names, ["y"], **attrs)
    feed = {n: a for n, a in zip(names, data) if n[0] == "x"}
    return _model([node], feed, ["y"], {n: a for n, a in zip(names, data) if n[0] == "c"}), feed


def _run_both(model, feed: dict, precision: str) -> tuple:
    """(fast outputs, reference outputs, instructions on the fast kernels)."""
    neff = compile_graph(from_onnx(model), parse_compiler_args([])).to_bytes()
    results = []
    for kernels in ("instruction", "reference"):
        with runtime.load(neff, precision=precision, kernels=kernels) as m:
            results.append((m.run(feed), m._executor.fast_kernels))
    (fast, n_fast), (ref, n_ref) = results
    assert n_ref == 0
    return fast, ref, n_fast


def _within_one_bf16_ulp(a: np.ndarray, b: np.ndarray, floor: float = 0.0) -> None:
    """|a - b| within one bf16 ulp of the larger, or within `floor`."""
    assert a.shape == b.shape
    largest = np.maximum(np.abs(a), np.abs(b))
    ulp = np.ldexp(np.float32(1), np.frexp(largest)[1] - 8)  # bf16 spacing: 8 significant bits
    ulp = np.maximum(ulp, floor)
    bad = np.abs(a - b) > ulp
    assert not bad.any(), f"{bad.sum()} of {a.size} outputs differ by more than one bf16 ulp"


def _check(model, feed: dict, expect_fast: int) -> None:
    fast, ref, n_fast = _run_both(model, feed, "fp32")
    assert n_fast == expect_fast
    for a, b in zip(fast, ref):
        np.testing.assert_allclose(a, b, **TOL)
    fast, ref, _ = _run_both(model, feed, "hardware")
    for a, b in zip(fast, ref):
        _within_one_bf16_ulp(a, b)


@pytest.mark.parametrize("weights", ["const", "fed"])
@pytest.mark.parametrize("bias", [True, False], ids=["bias", "nobias"])
@pytest.mark.parametrize("variant", list(CONV))
def test_conv_fast_matches_reference(variant, bias, weights):
    x_shape, w_shape, attrs = CONV[variant]
    data = conv_data(x_shape, w_shape, bias)
    const = tuple(range(1, len(data))) if weights == "const" else ()
    _check(*_single("Conv", data, attrs, const), expect_fast=1)


@pytest.mark.parametrize("variant", list(CONV_TRANSPOSE))
def test_convtranspose_fast_matches_reference(variant):
    x_shape, w_shape, attrs = CONV_TRANSPOSE[variant]
    data = conv_data(x_shape, w_shape, False)
    data.append(np.linspace(-1, 1, w_shape[1] * attrs.get("group", 1), dtype=np.float32))
    _check(*_single("ConvTranspose", data, attrs, (1, 2)), expect_fast=1)


MATMUL = {"2d": ((3, 64), (64, 5)), "vec_mat": ((64,), (64, 5)), "mat_vec": ((3, 64), (64,)),
          "batch_mat": ((2, 3, 64), (64, 5)), "broadcast": ((2, 1, 3, 4), (5, 4, 6)),
          "mat_batch": ((3, 4), (2, 4, 5)), "bert_ffn": ((1, 16, 96), (96, 384))}


@pytest.mark.parametrize("weights", ["const", "fed"])
@pytest.mark.parametrize("variant", list(MATMUL))
def test_matmul_fast_matches_reference(variant, weights):
    rng = np.random.default_rng(0)
    data = [rng.standard_normal(s).astype(np.float32) for s in MATMUL[variant]]
    _check(*_single("MatMul", data, {}, (1,) if weights == "const" else ()), expect_fast=1)


@pytest.mark.parametrize("attrs", [{}, {"transA": 1}, {"transB": 1}, {"transA": 1, "transB": 1},
                                   {"alpha": 0.5, "beta": -2.0}, {"alpha": 2.5, "beta": 0.0}],
                         ids=["plain", "tA", "tB", "tAB", "alpha_beta", "beta0"])
def test_gemm_fast_matches_reference(attrs):
    rng = np.random.default_rng(1)
    a = rng.standard_normal((4, 32) if not attrs.get("transA") else (32, 4)).astype(np.float32)
    b = rng.standard_normal((32, 6) if not attrs.get("transB") else (6, 32)).astype(np.float32)
    c = rng.standard_normal((6,)).astype(np.float32)
    _check(*_single("Gemm", [a, b, c], attrs, (1, 2)), expect_fast=1)


def test_epilogue_split_between_kernel_and_executor():
    """Bias add and Relu run in the fast kernel; a Div after them stays with the executor."""
    rng = np.random.default_rng(2)
    w = (rng.standard_normal((8, 4, 3, 3)) / 6).astype(np.float32)
    nodes = [helper.make_node("Conv", ["x", "w"], ["c"], pads=[1, 1, 1, 1]),
             helper.make_node("Add", ["c", "b"], ["s"]),
             helper.make_node("Relu", ["s"], ["r"]),
             helper.make_node("Div", ["r", "d"], ["y"])]
    consts = {"w": w, "b": rng.standard_normal((1, 8, 1, 1)).astype(np.float32),
              "d": np.full((1, 8, 1, 1), 3.0, np.float32)}
    x = rng.standard_normal((1, 4, 6, 6)).astype(np.float32)
    model = _model(nodes, {"x": x}, ["y"], consts)
    _check(model, {"x": x}, expect_fast=1)
    compiled = compile_graph(from_onnx(model), parse_compiler_args([]))
    conv, = [i for i in compiled.program.instrs if i.op == "Conv"]
    assert [p["op"] for p in conv.post] == ["Add", "Relu", "Div"]


def test_resnet_runs_every_matmul_on_the_fast_kernels():
    model = resnet(18, image=32, width=8)
    x = np.random.default_rng(3).standard_normal((1, 3, 32, 32)).astype(np.float32)
    compiled = compile_graph(from_onnx(model), parse_compiler_args([]))
    pe = sum(i.engine == "TensorEngine" for i in compiled.program.instrs)
    fast, ref, n_fast = _run_both(model, {"input": x}, "fp32")
    pools = sum(i.op == "MaxPool" for i in compiled.program.instrs)
    # the stem's MaxPool runs on the blocked kernel when its 8 channels fill whole blocks
    block = kernels.nchwc_block()
    blocked_pools = pools if block is not None and 8 % block == 0 else 0
    assert n_fast == pe + blocked_pools and pe > 15
    np.testing.assert_allclose(fast[0], ref[0], rtol=1e-4, atol=1e-4)


def test_kernels_choice_and_bad_value(monkeypatch):
    model, feed = _single("MatMul", [np.ones((2, 3), np.float32), np.ones((3, 2), np.float32)],
                          {}, (1,))
    neff = compile_graph(from_onnx(model), parse_compiler_args([])).to_bytes()
    monkeypatch.setenv("NEURON_SIM_KERNELS", "reference")
    with runtime.load(neff) as m:
        assert m.kernels == "reference" and m._executor.fast_kernels == 0
    monkeypatch.setenv("NEURON_SIM_KERNELS", "fastest")
    with pytest.raises(NeuronError, match="kernels 'fastest' is not valid; choose from fast, "
                                          "instruction, reference"):
        runtime.load(neff)
    monkeypatch.setenv("NEURON_SIM_KERNELS", "instruction")
    with runtime.load(neff) as m:
        assert m.kernels == "instruction" and m._executor.fast_kernels == 1
    monkeypatch.delenv("NEURON_SIM_KERNELS")
    with runtime.load(neff) as m:  # the default: the whole program as onnxruntime graphs
        assert m.kernels == "fast"
        assert m._executor.graph_instructions == len(m._executor.program.instrs) == 2


@pytest.mark.parametrize("ops", [["Reshape"], ["Relu"], ["Identity", "Relu"]])
def test_rounding_in_place_never_touches_the_callers_input(ops):
    """Outputs are rounded in place only when the executor owns them; a model input (or a view of
    it, as Reshape returns) is never overwritten."""
    x = np.random.default_rng(4).standard_normal((2, 6)).astype(np.float32)
    before = x.copy()
    nodes, prev = [], "x"
    for k, op in enumerate(ops):
        inputs = [prev, "shape"] if op == "Reshape" else [prev]
        nodes.append(helper.make_node(op, inputs, [f"t{k}"]))
        prev = f"t{k}"
    nodes.append(helper.make_node("Mul", [prev, "two"], ["y"]))
    consts = {"two": np.float32(2) * np.ones((1,), np.float32)}
    if "Reshape" in ops:
        consts["shape"] = np.array([3, 4], np.int64)
    graph = helper.make_graph(
        nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, x.shape)],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
        [numpy_helper.from_array(np.asarray(a), n) for n, a in consts.items()])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    neff = compile_graph(from_onnx(model), parse_compiler_args([])).to_bytes()
    with runtime.load(neff) as m:
        y, = m.run({"x": x})
    np.testing.assert_array_equal(x.view(np.uint32), before.view(np.uint32))
    expected = before.astype(ml_dtypes.bfloat16).astype(np.float32)
    if "Relu" in ops:
        expected = np.maximum(expected, 0)
    np.testing.assert_array_equal(y.reshape(-1), (2 * expected).reshape(-1))


#: float32 bit patterns: a stride through all 2^32 plus every special neighbourhood
_SPECIAL = np.array([0, 0x80000000, 0x7F800000, 0xFF800000, 0x7F800001, 0xFF800001, 0x7FBFFFFF,
                     0x7FC00000, 0xFFFFFFFF, 0x7F7FFFFF, 0x7F7F8000, 0x7F7F7FFF, 0x00000001,
                     0x00008000, 0x00018000, 0x3F808000, 0x3F818000, 0x3F807FFF, 0x3F817FFF],
                    np.uint32)
BITS = np.concatenate([np.arange(0, 1 << 32, 65_537, dtype=np.uint64).astype(np.uint32),
                       _SPECIAL]).view(np.float32)


def test_round_bf16_bit_identical_to_ml_dtypes():
    with np.errstate(invalid="ignore"):
        expected = BITS.astype(ml_dtypes.bfloat16).astype(np.float32)
    got = dtypes.round_to(BITS, dtypes.BF16)
    np.testing.assert_array_equal(got.view(np.uint32), expected.view(np.uint32))


def test_round_bf16_copies_unless_told_and_able():
    x = np.random.default_rng(5).standard_normal((4, 6)).astype(np.float32)
    before = x.copy()
    y = dtypes.round_to(x, dtypes.BF16)
    assert y is not x and np.array_equal(x, before)
    strided = x[:, ::2]
    z = dtypes.round_to(strided, dtypes.BF16, inplace=True)  # not contiguous: a new array
    assert z is not strided and np.array_equal(x, before)
    w = dtypes.round_to(x, dtypes.BF16, inplace=True)
    assert w is x and np.array_equal(x, y)
    np.testing.assert_array_equal(z, y[:, ::2])


# -- the blocked (NCHWc) layout between convolutions -----------------------------------------------

def _conv(name, x, w, attrs=None, relu=False, bias=None):
    inputs = [x, f"{name}_w"] + ([f"{name}_b"] if bias is not None else [])
    nodes = [helper.make_node("Conv", inputs, [name if not relu else f"{name}_c"], **(attrs or {}))]
    if relu:
        nodes.append(helper.make_node("Relu", [f"{name}_c"], [name]))
    return nodes


def _blocked_model(case: str):
    """Small graphs whose activations the fast kernels keep blocked, with every way back to NCHW."""
    rng = np.random.default_rng(7)
    weights = {}

    def w(name, shape, bias=True):
        weights[f"{name}_w"] = (rng.standard_normal(shape) / np.sqrt(np.prod(shape[1:]))).astype(
            np.float32)
        if bias:
            weights[f"{name}_b"] = rng.standard_normal(shape[0]).astype(np.float32)
        return weights.get(f"{name}_b")

    x = rng.standard_normal((2, 3, 20, 20)).astype(np.float32)
    nodes = []
    if case == "bottleneck":  # stem from 3 channels, blocked MaxPool, a residual Add + Relu
        nodes += _conv("stem", "x", None, {"kernel_shape": [5, 5], "pads": [2] * 4,
                                           "strides": [2, 2]}, True, w("stem", (16, 3, 5, 5)))
        nodes.append(helper.make_node("MaxPool", ["stem"], ["pool"], kernel_shape=[3, 3],
                                      pads=[1] * 4, strides=[2, 2]))
        nodes += _conv("a", "pool", None, {"kernel_shape": [1, 1]}, True, w("a", (8, 16, 1, 1)))
        nodes += _conv("b", "a", None, {"kernel_shape": [3, 3], "pads": [1] * 4}, True,
                       w("b", (8, 8, 3, 3)))
        nodes += _conv("c", "b", None, {"kernel_shape": [1, 1]}, False, w("c", (16, 8, 1, 1)))
        nodes += [helper.make_node("Add", ["c", "pool"], ["sum"]),
                  helper.make_node("Relu", ["sum"], ["y"])]
    elif case == "depthwise":  # MobileNet: depthwise 3x3, Relu6 (Clip with scalar inputs)
        nodes += _conv("a", "x", None, {"kernel_shape": [1, 1]}, True, w("a", (16, 3, 1, 1)))
        nodes += _conv("dw", "a", None, {"kernel_shape": [3, 3], "pads": [1] * 4, "group": 16,
                                         "strides": [2, 2]}, False, w("dw", (16, 1, 3, 3)))
        weights["lo"], weights["hi"] = np.float32(0), np.float32(6)
        nodes += [helper.make_node("Clip", ["dw", "lo", "hi"], ["clip"])]
        nodes += _conv("p", "clip", None, {"kernel_shape": [1, 1]}, False, w("p", (24, 16, 1, 1)))
        nodes += [helper.make_node("Sigmoid", ["p"], ["y"])]
    elif case == "mixed":  # readers that need NCHW: an odd conv, a fused residual, Concat, Flatten
        nodes += _conv("a", "x", None, {"kernel_shape": [3, 3], "pads": [1] * 4}, True,
                       w("a", (16, 3, 3, 3)))
        nodes += _conv("odd", "a", None, {"kernel_shape": [1, 1]}, True, w("odd", (12, 16, 1, 1)))
        nodes += _conv("b", "a", None, {"kernel_shape": [1, 1]}, False, w("b", (16, 16, 1, 1)))
        nodes += _conv("c", "b", None, {"kernel_shape": [1, 1]}, False, w("c", (16, 16, 1, 1)))
        nodes += [helper.make_node("Add", ["c", "a"], ["res"]),
                  helper.make_node("Concat", ["res", "odd"], ["cat"], axis=1),
                  helper.make_node("GlobalAveragePool", ["cat"], ["gap"]),
                  helper.make_node("Flatten", ["gap"], ["y"]),
                  helper.make_node("Identity", ["b"], ["side"])]
    weights = {k: np.asarray(v) for k, v in weights.items()}
    outputs = ["y", "side"] if case == "mixed" else ["y"]
    return _model(nodes, {"x": x}, outputs, weights), {"x": x}


@pytest.mark.parametrize("case", ["bottleneck", "depthwise", "mixed"])
def test_blocked_layout_matches_reference(case):
    """Fast kernels with activations blocked between convolutions against the NumPy references:
    fp32 tight, hardware within one bf16 ulp; every blocked buffer a reader needs in NCHW is
    converted back (a missed one fails with a shape error or wrong values)."""
    from neuron_core.runtime.kernels import nchwc_block
    model, feed = _blocked_model(case)
    with runtime.load(_neff(model), precision="fp32") as m:
        blocked = m._executor.blocked
    if nchwc_block() is not None:
        assert blocked, "no activation was kept blocked"
    for precision in ("fp32", "hardware"):
        fast, ref, _ = _run_both(model, feed, precision)
        for a, b in zip(fast, ref):
            assert a.shape == b.shape and a.dtype == b.dtype
            if precision == "fp32":
                np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)
            else:
                _within_one_bf16_ulp(a, b)


def _neff(model) -> bytes:
    return compile_graph(from_onnx(model), parse_compiler_args([])).to_bytes()


@pytest.mark.parametrize("block", [8, 16])
def test_blocked_plan_follows_the_block_size(block, monkeypatch):
    """Which buffers stay blocked depends on the CPU's channel block (8 with AVX2, 16 with
    AVX-512): a Conv is blocked when its output channels are a multiple of the block. The probe's
    answer is faked, so both plans are checked on any host (only planned, not run: a layout the
    CPU does not use would give wrong numbers)."""
    monkeypatch.setitem(context.default().memo("kernels.nchwc_block"), "block", block)
    model, _ = _blocked_model("bottleneck")
    compiled = compile_graph(from_onnx(model), parse_compiler_args([]))
    with runtime.load(compiled.to_bytes(), precision="fp32") as m:
        blocked, steps = m._executor.blocked, m._executor.steps
    instrs = compiled.program.instrs
    assert [i.op for i in instrs[1:]] == ["Conv", "MaxPool", "Conv", "Conv", "Conv", "Add",
                                           "Relu"]
    stem, pool, a, b, c, add, relu = (set(i.outputs) for i in instrs[1:])
    # stem and c have 16 output channels, a and b 8; c reads b plain when b is not blocked
    expect = stem | pool | c | add | relu | (a | b if 8 % block == 0 else set())
    assert blocked == expect
    # the only way back to NCHW: conv a (8 outputs) reads the pool plain when it cannot be blocked
    converted = {bid for step in steps for bid in step.unblock}
    assert converted == (set() if 8 % block == 0 else pool)


def test_blocked_layout_is_found_and_round_trips():
    import platform

    from neuron_core.runtime.kernels import nchwc_block, to_blocked, to_plain
    block = nchwc_block()
    if platform.machine() in ("x86_64", "AMD64"):
        assert block in (8, 16)
    block = block or 8
    x = np.random.default_rng(8).standard_normal((2, 4 * block, 5, 3)).astype(np.float32)
    b = to_blocked(x, block)
    assert b.shape == (2, 4, 5, 3, block) and b.flags.c_contiguous
    np.testing.assert_array_equal(b[1, 2, 3, 1], x[1, 2 * block:3 * block, 3, 1])
    np.testing.assert_array_equal(to_plain(b), x)


# -- the fused elementwise kernel ------------------------------------------------------------------

_EDGE = np.array([0.0, -0.0, np.inf, -np.inf, np.nan, -np.nan, 1e-45, -1e-45, 3.4e38, -3.4e38,
                  1.0039062, 1.0117188, -2.5], np.float32)


#: (op, Relu epilogue, the operand the result is written into, the operand that is one value):
#: Relu has one operand and no epilogue
_FUSED_CASES = [(op, relu, alias, single) for op in ("Add", "Sub", "Mul", "Div")
                for relu in (False, True) for alias in (None, 0, 1) for single in (None, 0, 1)
                if alias is None or alias != single] + [
    ("Relu", False, None, None), ("Relu", False, 0, None)]


@pytest.mark.parametrize("rounding", [None, dtypes.BF16])
@pytest.mark.parametrize("op,relu,alias,single", _FUSED_CASES)
def test_fused_elementwise_bit_identical_to_reference(op, relu, alias, single, rounding):
    """vector_kernel against the ops' references, then dtypes.round_to: every bit, NaN, -0, zero
    divisors and overflow included, for sizes that do and do not fill whole chunks, with either
    operand a single value, into a new array or into either operand. A NaN meets only numbers:
    which of two NaNs an add returns is not defined (NumPy's own loops differ)."""
    from types import SimpleNamespace

    from neuron_core.ops import get_op
    from neuron_core.runtime.kernels import vector_kernel
    rng = np.random.default_rng(9)
    n = 5000
    a = np.concatenate([_EDGE, rng.standard_normal(n) * 100]).astype(np.float32)
    b = np.concatenate([_EDGE[::-1], rng.standard_normal(n) * 100]).astype(np.float32)
    if single is not None:  # a (1,) operand broadcast against the (n,) one
        if single == 0:
            a = a[7:8].copy()  # -1e-45
        else:
            b = b[-5:-4].copy()  # 3.4e38
    args = [a, b] if op != "Relu" else [a]
    post = [{"op": "Relu", "attrs": {}, "inputs": [-1]}] if relu else []
    instr = SimpleNamespace(op=op, outputs=[0], post=post)
    run = vector_kernel(instr, [rounding])
    assert run is not None
    with np.errstate(all="ignore"):
        expected = get_op(op).reference(*args)
        if relu:
            expected = np.maximum(expected, 0)
        expected = dtypes.round_to(expected, rounding) if rounding else expected
        copies = [x.copy() for x in args]
        out = run(copies, None if alias is None else copies[alias])
    if alias is not None:
        assert out is copies[alias]
    assert out.shape == expected.shape
    np.testing.assert_array_equal(out.view(np.uint32), expected.view(np.uint32))


def test_fused_elementwise_declines_what_it_does_not_take():
    from types import SimpleNamespace

    from neuron_core.runtime.kernels import vector_kernel
    add = SimpleNamespace(op="Add", outputs=[0], post=[])
    assert vector_kernel(add, [dtypes.FP16]) is None  # fp16 rounding: the executor's own
    assert vector_kernel(SimpleNamespace(op="Pow", outputs=[0], post=[]), [None]) is None
    run = vector_kernel(add, [None])
    a = np.ones((3, 4), np.float32)
    assert run([a, np.ones((1, 4), np.float32)], None) is None  # broadcast: the reference's
    assert run([np.ones((3, 1), np.float32), np.ones((1,), np.float32)], None) is not None
    assert run([np.ones((1,), np.float32), np.ones((2, 1, 1), np.float32)], None).shape == (2, 1, 1)
    assert run([a, np.ones((0,), np.float32)], None) is None
    assert run([a, a.T.copy().T], None) is None  # not C-contiguous
    assert run([a, np.ones((3, 4), np.float64)], None) is None


_BLOCKABLE = [k for k, (x, w, attrs) in CONV.items()
              if len(x) == 4 and attrs.get("group", 1) in (1, x[1])]


@pytest.mark.parametrize("variant", _BLOCKABLE)
def test_blocked_conv_every_attribute(variant):
    """Each 2-d dense or depthwise Conv variant of the op tests, its channels rounded up to
    multiples of 16, reading the blocked result of a 1x1 Conv (and read blocked by an Add): pads,
    auto_pad, strides and dilations on the blocked kernel against the references (fp32: the layout
    must not move a single value)."""
    x_shape, w_shape, attrs = CONV[variant]
    c_in, c_out = 16 * -(-x_shape[1] // 16), 16 * -(-w_shape[0] // 16)
    attrs = dict(attrs)
    if attrs.get("group", 1) > 1:
        attrs["group"] = c_out = c_in
    rng = np.random.default_rng(10)
    x = rng.standard_normal((x_shape[0], c_in, *x_shape[2:])).astype(np.float32)
    consts = {"w0": (rng.standard_normal((c_in, c_in, 1, 1)) / 4).astype(np.float32),
              "w1": (rng.standard_normal((c_out, w_shape[1] if attrs.get("group", 1) > 1 else c_in,
                                          *w_shape[2:])) / 8).astype(np.float32),
              "b1": rng.standard_normal(c_out).astype(np.float32)}
    nodes = [helper.make_node("Conv", ["x", "w0"], ["a"]),
             helper.make_node("Conv", ["a", "w1", "b1"], ["c"], **attrs),
             helper.make_node("Add", ["c", "c"], ["y"])]  # reads c blocked: c is blocked
    model = _model(nodes, {"x": x}, ["y"], consts)
    neff = compile_graph(from_onnx(model), parse_compiler_args([])).to_bytes()
    with runtime.load(neff, precision="fp32") as m:
        blocked = m._executor.blocked
    from neuron_core.runtime.kernels import nchwc_block
    if nchwc_block() is not None:
        assert len(blocked) == 3, "the second Conv did not run on the blocked kernel"
    fast, ref, n_fast = _run_both(model, {"x": x}, "fp32")
    assert n_fast == 2
    np.testing.assert_allclose(fast[0], ref[0], rtol=TOL["rtol"], atol=2 * TOL["atol"])  # y = 2c


def test_without_a_blocked_layout_every_conv_runs_plain(monkeypatch):
    """Where onnxruntime has no blocked kernels (the probe finds none), nothing is kept blocked and
    the results are the same."""
    model, feed = _blocked_model("bottleneck")
    with_blocks, _, _ = _run_both(model, feed, "fp32")
    monkeypatch.setitem(context.default().memo("kernels.nchwc_block"), "block", None)
    neff = compile_graph(from_onnx(model), parse_compiler_args([])).to_bytes()
    with runtime.load(neff, precision="fp32") as m:
        assert not m._executor.blocked
        plain = m.run(feed)
    np.testing.assert_allclose(plain[0], with_blocks[0], rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("axis", [-1, 1, 0])
def test_softmax_fast_matches_reference(axis):
    """Softmax on onnxruntime against the reference, a fully masked row (-inf: NaN in both) and
    large values included. onnxruntime's exp gives 0 where the true result is below float32's
    normal range (NumPy's gives the subnormal), hence the absolute floor of float32's tiny."""
    x = np.random.default_rng(11).standard_normal((3, 5, 40)).astype(np.float32) * 8
    x[1, 2, :] = -np.inf
    x[2, 0, 3] = 80.0
    model, feed = _single("Softmax", [x], {"axis": axis}, ())
    for precision in ("fp32", "hardware"):
        fast, ref, n_fast = _run_both(model, feed, precision)
        assert n_fast == 1
        np.testing.assert_array_equal(np.isnan(fast[0]), np.isnan(ref[0]))
        finite = ~np.isnan(ref[0])
        if precision == "fp32":
            np.testing.assert_allclose(fast[0][finite], ref[0][finite], rtol=1e-5, atol=1e-7)
        else:
            _within_one_bf16_ulp(fast[0][finite], ref[0][finite], np.finfo(np.float32).tiny)


@pytest.mark.parametrize("axis,bias", [(-1, True), (-1, False), (1, True)])
def test_layernorm_fast_matches_reference(axis, bias):
    rng = np.random.default_rng(12)
    x = (rng.standard_normal((2, 6, 48)) * 3 + 1).astype(np.float32)
    scale = rng.standard_normal(x.shape[axis:] if axis != -1 else x.shape[-1:]).astype(np.float32)
    data = [x, scale] + ([rng.standard_normal(scale.shape).astype(np.float32)] if bias else [])
    model, feed = _single("LayerNormalization", data, {"axis": axis, "epsilon": 1e-5},
                          tuple(range(1, len(data))))
    _check(model, feed, expect_fast=1)


def test_blocked_maxpool_keeps_nan():
    """onnxruntime's blocked maximum drops NaN; the kernel then defers to the reference, where a
    NaN in a window wins (np.maximum), as with the reference kernels."""
    rng = np.random.default_rng(13)
    x = rng.standard_normal((1, 16, 6, 6)).astype(np.float32)
    x[0, :, 2, 2] = np.nan
    x[0, 3, 5, 0] = -np.nan
    eye = np.eye(16, dtype=np.float32).reshape(16, 16, 1, 1)
    nodes = [helper.make_node("Conv", ["x", "eye"], ["c"]),
             helper.make_node("MaxPool", ["c"], ["y"], kernel_shape=[2, 2], strides=[2, 2])]
    model = _model(nodes, {"x": x}, ["y"], {"eye": eye})
    for precision in ("fp32", "hardware"):
        fast, ref, n_fast = _run_both(model, {"x": x}, precision)
        assert n_fast == 2 or _nchwc_block_absent()
        assert np.isnan(ref[0]).sum() == 32  # 0 x NaN: both NaN pixels reach every channel
        np.testing.assert_array_equal(fast[0].view(np.uint32), ref[0].view(np.uint32))


def _nchwc_block_absent() -> bool:
    from neuron_core.runtime.kernels import nchwc_block
    return nchwc_block() is None


def _chain_model():
    """Elementwise instructions of every form the fused pass takes: same shape, one operand a
    single value on either side, a Relu reading a result that dies with it (written in place), a
    Relu of a model input (never written to), and Div by zero."""
    rng = np.random.default_rng(14)
    x = (rng.standard_normal((2, 3, 700)) * 50).astype(np.float32)
    x[0, 0, :4] = [0.0, -0.0, np.inf, np.nan]
    z = (rng.standard_normal((2, 3, 700)) * 50).astype(np.float32)
    consts = {"h": np.array(0.5, np.float32), "k": np.array([3.0], np.float32),
              "zero": np.array(0.0, np.float32)}
    nodes = [helper.make_node("Add", ["x", "z"], ["a"]),
             helper.make_node("Relu", ["a"], ["r"]),
             helper.make_node("Mul", ["r", "h"], ["m"]),
             helper.make_node("Sub", ["k", "m"], ["s"]),
             helper.make_node("Div", ["s", "z"], ["d"]),
             helper.make_node("Div", ["d", "zero"], ["q"]),
             helper.make_node("Relu", ["x"], ["rx"]),
             helper.make_node("Mul", ["d", "rx"], ["y"])]
    return _model(nodes, {"x": x, "z": z}, ["y", "q", "rx"], consts), {"x": x, "z": z}


@pytest.mark.parametrize("precision", ["fp32", "hardware"])
def test_fused_elementwise_in_the_executor_is_bit_identical(precision):
    model, feed = _chain_model()
    before = {k: v.copy() for k, v in feed.items()}
    with np.errstate(all="ignore"):
        fast, ref, _ = _run_both(model, feed, precision)
    for a, b in zip(fast, ref):
        np.testing.assert_array_equal(a.view(np.uint32), b.view(np.uint32))
    for k in feed:
        np.testing.assert_array_equal(feed[k].view(np.uint32), before[k].view(np.uint32))


def test_a_conv_nothing_reads_blocked_runs_plain():
    """A Conv whose result only a layout-bound op (Flatten) or the caller reads is not blocked:
    converting it back would cost what the blocked kernel saves."""
    rng = np.random.default_rng(15)
    x = rng.standard_normal((1, 16, 5, 5)).astype(np.float32)
    nodes = [helper.make_node("Conv", ["x", "w"], ["c"]),
             helper.make_node("Flatten", ["c"], ["f"]),
             helper.make_node("Conv", ["x", "w"], ["y"])]
    model = _model(nodes, {"x": x}, ["f", "y"],
                   {"w": rng.standard_normal((16, 16, 1, 1)).astype(np.float32)})
    neff = compile_graph(from_onnx(model), parse_compiler_args([])).to_bytes()
    with runtime.load(neff, precision="fp32") as m:
        assert not m._executor.blocked and m._executor.fast_kernels == 2


@pytest.mark.parametrize("x_shape,bias_shape,relu", [
    ((2, 5, 32), (12,), False), ((2, 5, 32), (1, 12), True), ((3, 2, 4, 32), (1, 1, 12), True),
    ((7, 32), (12,), True), ((7, 32), (7, 12), False), ((7, 32), (1, 1, 12), False),
    ((2, 5, 32), None, True)],
    ids=["3d", "3d_relu", "4d_relu", "2d_relu", "full_bias", "bias_adds_a_dim", "no_bias"])
def test_matmul_bias_relu_as_gemm(x_shape, bias_shape, relu):
    """A projection (activation x constant weight, + bias, Relu) runs as one Gemm over the rows;
    a bias that is not a plain vector over N (full, or adding a dimension) stays with the
    executor. fp32 tight, hardware within one bf16 ulp, shapes exact."""
    rng = np.random.default_rng(16)
    x = rng.standard_normal(x_shape).astype(np.float32)
    consts = {"w": (rng.standard_normal((32, 12)) / 4).astype(np.float32)}
    nodes, last = [helper.make_node("MatMul", ["x", "w"], ["m"])], "m"
    if bias_shape is not None:
        consts["b"] = rng.standard_normal(bias_shape).astype(np.float32)
        nodes.append(helper.make_node("Add", ["b", last], ["a"]))  # the bias on either side
        last = "a"
    if relu:
        nodes.append(helper.make_node("Relu", [last], ["r"]))
        last = "r"
    nodes.append(helper.make_node("Identity", [last], ["y"]))
    model = _model(nodes, {"x": x}, ["y"], consts)
    compiled = compile_graph(from_onnx(model), parse_compiler_args([]))
    matmul, = [i for i in compiled.program.instrs if i.op == "MatMul"]
    widens = bias_shape is not None and len(bias_shape) > len(x_shape)
    if not widens:  # (a bias that adds a dimension is an instruction of its own)
        assert len(matmul.post) == (bias_shape is not None) + relu  # the epilogue is fused
    _check(model, {"x": x}, expect_fast=1)
