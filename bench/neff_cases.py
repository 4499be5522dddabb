"""The cases of the NEFF fuzz harness and census: seed models, running a NEFF or a `.neuron.onnx`
model, judging the outcome, and raw byte mutations (with an optional re-hash so that a mutation
reaches the JSON and the loader instead of stopping at the first sha256 check)."""
from __future__ import annotations

import contextlib
import hashlib
import math
import os
import random
import struct
import tempfile
import traceback

import numpy as np

KERNELS = ("fast", "instruction", "reference")
MAX_INPUT_ELEMENTS = 1 << 16      # inputs built from a damaged model's declarations stay small
CASE_TIMEOUT_S = 20.0
FIRST_CASE_TIMEOUT_S = 180.0      # the first case also compiles the seeds and warms the JIT
FLOATS = ("float32", "float16", "bfloat16")


def quiet_environment() -> None:
    """No user cache writes, no published state in the shared temp dir, one thread."""
    os.environ.setdefault("NEURON_SIM_CACHE_DIR", "off")
    os.environ.setdefault("NEURON_SIM_HOST_DIR", os.path.join(tempfile.gettempdir(),
                                                               f"neff-fuzz-state-{os.getuid()}"))
    for var in ("OMP_NUM_THREADS", "NUMBA_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ.setdefault(var, "1")


# --------------------------------------------------------------------------------- seed models

class Seed:
    """A small valid NEFF, its inputs, and its outputs per kernel set (computed on first use)."""

    def __init__(self, name: str, data: bytes, inputs: list):
        self.name, self.data, self.inputs = name, data, inputs
        self._baseline: dict = {}

    def baseline(self, kernels: str) -> list:
        if kernels not in self._baseline:
            self._baseline[kernels] = run_neff(self.data, self.inputs, kernels)
        return self._baseline[kernels]


def tiny_gemm_onnx():
    """Gemm + LeakyRelu on a [2, 8] input: two instructions (a cast and a fused Gemm)."""
    from onnx import TensorProto, helper, numpy_helper
    rng = np.random.default_rng(1)
    w = numpy_helper.from_array(rng.standard_normal((8, 4)).astype(np.float32), "w")
    b = numpy_helper.from_array(rng.standard_normal(4).astype(np.float32), "b")
    nodes = [helper.make_node("Gemm", ["x", "w", "b"], ["g"], name="gemm"),
             helper.make_node("LeakyRelu", ["g"], ["y"], alpha=0.01, name="leakyrelu")]
    graph = helper.make_graph(nodes, "tiny", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 8])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2, 4])], [w, b])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def _fixed_time(data: bytes) -> bytes:
    """NEFF bytes with a fixed creation time, so that a case is the same in every run."""
    from neuron_core.neff import read_neff, to_bytes
    neff = read_neff(data)
    metadata = dict(neff.metadata, created="2026-01-01T00:00:00+00:00")
    return to_bytes(metadata, neff.program, dict(neff.weights), compiler_version=neff.compiler_version)


def _compile(model) -> bytes:
    from neuron_core.compiler import compile_graph, parse_compiler_args
    from neuron_core.frontends.onnx_import import from_onnx
    return _fixed_time(compile_graph(from_onnx(model), parse_compiler_args([])).to_bytes())


_SEEDS: list = []


def seeds() -> list:
    """The tiny Gemm model and the bundled small CNN (41 instructions), compiled once."""
    if not _SEEDS:
        from neuron_core.models.builders import small_cnn
        rng = np.random.default_rng(0)
        _SEEDS.append(Seed("gemm", _compile(tiny_gemm_onnx()),
                           [rng.standard_normal((2, 8)).astype(np.float32)]))
        _SEEDS.append(Seed("cnn", _compile(small_cnn()),
                           [rng.standard_normal((1, 3, 32, 32)).astype(np.float32)]))
    return _SEEDS


def fallback_onnx_bytes() -> bytes:
    """A `.neuron.onnx` model: the Gemm model on the NeuronCore, then Softsign on the host."""
    from onnx import helper
    import neuron_core.onnx as nonnx
    model = tiny_gemm_onnx()
    model.graph.node.append(helper.make_node("Softsign", ["y"], ["probs"], name="softsign"))
    model.graph.output[0].name = "probs"
    compiled = nonnx.compile(model, cost_aware=False)
    try:
        for node in compiled.proto.graph.node:
            for attr in node.attribute:
                if node.domain == nonnx.DOMAIN and attr.name == "neff":
                    attr.s = _fixed_time(attr.s)
        return compiled.proto.SerializeToString()
    finally:
        compiled.unload()


# ---------------------------------------------------------------------------------- executing

def inputs_for(declared) -> list | None:
    """Deterministic arrays for a model's own (name, shape, dtype) declarations, or None when
    they are too big to build (the load alone is then what is tested)."""
    arrays = []
    for _, shape, dtype in declared:
        shape = tuple(shape)
        if not all(isinstance(d, int) and 0 <= d for d in shape) or math.prod(shape) > MAX_INPUT_ELEMENTS:
            return None
        from neuron_core import dtypes
        arrays.append((np.arange(math.prod(shape)) % 7 - 3).astype(dtypes.to_numpy(dtype)).reshape(shape))
    return arrays


HEADROOM_BYTES = 8 << 30


@contextlib.contextmanager
def memory_headroom(extra: int = HEADROOM_BYTES):
    """Cap the process's address space at what it maps now plus `extra`, for the duration: an
    allocation a damaged model asks for fails as MemoryError instead of swamping the host (an
    untouched calloc'ed array is not counted by an RSS limit). Linux; a no-op elsewhere."""
    try:
        import resource
        with open("/proc/self/status") as f:
            mapped = next(int(line.split()[1]) * 1024 for line in f if line.startswith("VmSize:"))
    except (ImportError, OSError, StopIteration):
        yield
        return
    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    limit = mapped + extra if hard == resource.RLIM_INFINITY else min(hard, mapped + extra)
    resource.setrlimit(resource.RLIMIT_AS, (limit, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_AS, (soft, hard))


def run_neff(data: bytes, inputs: list | None, kernels: str) -> list:
    """Load NEFF bytes, run them once (on `inputs`, or on arrays built from the model's own
    declarations when None), unload. Returns the outputs."""
    from neuron_core.runtime import load
    with memory_headroom():
        model = load(data, kernels=kernels)
        try:
            args = inputs if inputs is not None else inputs_for(model.inputs)
            return [] if args is None else model.run(list(args))
        finally:
            model.unload()


def run_onnx(data: bytes) -> list:
    """Load `.neuron.onnx` bytes from a temporary file and run them once on small inputs."""
    import neuron_core.onnx as nonnx
    fd, path = tempfile.mkstemp(suffix=".neuron.onnx")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        with memory_headroom():
            model = nonnx.load(path)
            try:
                args = inputs_for(model.inputs)
                return [] if args is None else model.run(args)
            finally:
                model.unload()
    finally:
        os.unlink(path)


def same_outputs(got, want) -> bool:
    if not isinstance(got, list) or len(got) != len(want):
        return False
    return all(isinstance(g, np.ndarray) and g.dtype == w.dtype and g.shape == w.shape
               and g.tobytes() == w.tobytes() for g, w in zip(got, want))


def innermost_frame(exc: BaseException) -> str:
    """file:line of the innermost neuron_core frame of the traceback (else the innermost one)."""
    where = "?"
    for frame, line in traceback.walk_tb(exc.__traceback__):
        name = frame.f_code.co_filename.replace(os.sep, "/")
        if "/neuron_core/" in name:
            where = "neuron_core/" + name.rsplit("/neuron_core/", 1)[1] + f":{line}"
        elif where == "?":
            where = f"{os.path.basename(name)}:{line}"
    return where


def classify(action, want=None) -> tuple[str, str]:
    """Run `action()`: ("identical" | "ran" | "NeuronError:<class>" | "other" | "different",
    detail). `want`: the expected outputs, or None when outputs are not judged."""
    from neuron_core.errors import NeuronError
    try:
        got = action()
    except NeuronError as exc:
        return f"NeuronError:{type(exc).__name__}", str(exc)[:200]
    except Exception as exc:    # noqa: BLE001  (every other exception is the finding)
        return "other", f"{type(exc).__module__}.{type(exc).__name__} at {innermost_frame(exc)}: {str(exc)[:300]}"
    if want is None:
        return "ran", ""
    if same_outputs(got, want):
        return "identical", ""
    return "different", _difference(got, want)


def _difference(got, want) -> str:
    if len(got) != len(want):
        return f"{len(got)} outputs instead of {len(want)}"
    for k, (g, w) in enumerate(zip(got, want)):
        if g.dtype != w.dtype or g.shape != w.shape:
            return f"output {k}: {g.dtype}{list(g.shape)} instead of {w.dtype}{list(w.shape)}"
        if g.tobytes() != w.tobytes():
            err = float(np.max(np.abs(g.astype(np.float64) - w.astype(np.float64)))) if g.size else 0.0
            return f"output {k}: values differ (max abs diff {err:.3g})"
    return "?"



# ------------------------------------------------------------------------------ raw mutations

_PREFIX = struct.Struct("<8sHHI")
_ENTRY = struct.Struct("<QQ32s")


def section_table(data: bytes) -> tuple[int, list] | None:
    """(header_len, [(name, offset, size, entry_pos)]) of NEFF bytes, or None if unreadable.
    Bounded: at most as many entries as fit in the header."""
    try:
        _, _, _, header_len = _PREFIX.unpack_from(data, 0)
        (cv,) = struct.unpack_from("<H", data, _PREFIX.size)
        pos = _PREFIX.size + 2 + cv
        (count,) = struct.unpack_from("<H", data, pos)
        pos += 2
        table = []
        for _ in range(min(count, 64)):
            size = data[pos]
            name = data[pos + 1:pos + 1 + size]
            pos += 1 + size
            offset, length, _ = _ENTRY.unpack_from(data, pos)
            table.append((name, offset, length, pos))
            pos += _ENTRY.size
    except (struct.error, IndexError):
        return None
    if not 0 < header_len <= len(data) or pos > header_len - 32:
        return None
    return header_len, table


def rehash(data: bytes) -> bytes:
    """Recompute every section sha256 the table points at, then the header's own sha256, so a
    mutation reaches the JSON and the loader instead of stopping at a hash check."""
    parsed = section_table(data)
    if parsed is None:
        return data
    header_len, table = parsed
    out = bytearray(data)
    for _, offset, length, pos in table:
        if offset + length <= len(out):
            out[pos + 16:pos + 48] = hashlib.sha256(out[offset:offset + length]).digest()
    out[header_len - 32:header_len] = hashlib.sha256(out[:header_len - 32]).digest()
    return bytes(out)


def raw_mutation(rng: random.Random, data: bytes, other: bytes) -> tuple[str, bytes]:
    """One raw mutation of NEFF bytes: bit flips, byte changes, truncation, splice, swap."""
    buf = bytearray(data)
    n = len(buf)
    parsed = section_table(data)
    kind = rng.choice(["bitflip", "bytes", "truncate", "splice", "swap", "header"])
    if kind == "header" and parsed:       # a byte of the header, where the structure is
        k = rng.randrange(parsed[0])
        buf[k] = rng.randrange(256)
        return f"header byte {k} = {buf[k]}", bytes(buf)
    if kind == "bitflip":
        flips = [rng.randrange(n * 8) for _ in range(rng.choice([1, 1, 2, 8]))]
        for bit in flips:
            buf[bit // 8] ^= 1 << (bit % 8)
        return f"bit flips at {flips[:4]}", bytes(buf)
    if kind == "bytes":
        k = rng.randrange(n)
        count = min(rng.choice([1, 4, 16]), n - k)
        buf[k:k + count] = bytes(rng.choice([0, 0xFF, rng.randrange(256)]) for _ in range(count))
        return f"{count} bytes at {k} changed", bytes(buf)
    if kind == "truncate":
        k = rng.choice([0, 1, 8, 16, 63, 64, rng.randrange(n), n - 1, n - 64])
        return f"truncated to {k} bytes", bytes(buf[:max(0, k)])
    if kind == "splice":
        k, j = rng.randrange(n), rng.randrange(len(other))
        length = rng.choice([1, 64, 1000])
        return f"splice of {length} bytes of another NEFF at {k}", bytes(buf[:k] + other[j:j + length] + buf[k:])
    if parsed and len(parsed[1]) >= 2:    # swap two sections' bytes (the table stays as it was)
        a, b = rng.sample(parsed[1], 2)
        sa, sb = data[a[1]:a[1] + a[2]], data[b[1]:b[1] + b[2]]
        first, second = sorted([a, b], key=lambda s: s[1])
        s1, s2 = (sa, sb) if first is a else (sb, sa)
        out = data[:first[1]] + s2 + data[first[1] + first[2]:second[1]] + s1 + data[second[1] + second[2]:]
        return f"sections {a[0].decode(errors='replace')} and {b[0].decode(errors='replace')} swapped", out
    return "empty", b""


