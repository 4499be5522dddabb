"""The NEFF container: round trips, zero-copy reads, and every kind of damage caught as NeffFormatError."""
from __future__ import annotations

import hashlib
import mmap
import os
import struct

import ml_dtypes
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from neuron_core.errors import NeffFormatError, NeffVersionError, NeuronError
from neuron_core.neff import (FORMAT_VERSION, MAGIC, NeffBytes, format_info, neff_key, read_neff,
                              to_bytes, write_neff)
from neuron_core.neff.format import _assemble

META = {"name": "tiny", "inputs": {"x:0": [[1, 3, 4, 4], "float32"]},
        "outputs": [{"name": "y:0", "shape": [1, 8], "dtype": "float32"}], "fast_math": "all"}
PROGRAM = {"instructions": [{"op": "matmul", "args": ["x", "w"]}], "text": "résumé ✓"}


def _weights() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    return {
        "w_f32": rng.standard_normal((3, 5)).astype(np.float32),
        "w_f16": rng.standard_normal((7,)).astype(np.float16),
        "w_bf16": rng.standard_normal((2, 3, 4)).astype(ml_dtypes.bfloat16),
        "i64": np.arange(-5, 5, dtype=np.int64),
        "i32": np.array([[1, -2], [3, 2**31 - 1]], dtype=np.int32),
        "i8": np.array([-128, 0, 127], dtype=np.int8),
        "u8": np.arange(200, 256, dtype=np.uint8),
        "mask": np.array([True, False, True]),
        "scalar": np.array(2.5, dtype=np.float32),
        "empty": np.zeros((0, 4), dtype=np.float32),
        "empty_bf16": np.zeros((3, 0), dtype=ml_dtypes.bfloat16),
    }


@pytest.fixture(scope="module")
def data() -> bytes:
    return to_bytes(META, PROGRAM, _weights(), compiler_version="neuron-sim 0.1.0")


def _hand_made(metadata: bytes = b"{}", program: bytes = b"{}", index: bytes = b"{}", weights: bytes = b"",
               version: tuple[int, int] = FORMAT_VERSION) -> bytes:
    """A NEFF built from raw section bytes, with valid hashes over whatever they hold."""
    header, chunks = _assemble({"metadata": [metadata], "program": [program], "weights.index": [index],
                                "weights": [weights]}, "hand", version)
    return header + b"".join(chunks)


def _base_object(arr: np.ndarray):
    while isinstance(arr, np.ndarray) and arr.base is not None:
        arr = arr.base
    return arr.obj if isinstance(arr, memoryview) else arr


def test_round_trip_every_dtype(tmp_path, data):
    path = tmp_path / "m.neff"
    n = write_neff(path, META, PROGRAM, _weights(), compiler_version="neuron-sim 0.1.0")
    assert n == os.path.getsize(path) == len(data)
    assert path.read_bytes() == data
    for neff in (read_neff(path), read_neff(data)):
        assert neff.version == FORMAT_VERSION and neff.compiler_version == "neuron-sim 0.1.0"
        assert neff.metadata == META and neff.program == PROGRAM and neff.nbytes == len(data)
        assert list(neff.weights) == list(_weights())
        for name, expected in _weights().items():
            got = neff.weights[name]
            assert got.dtype == expected.dtype and got.shape == expected.shape, name
            assert got.tobytes() == expected.tobytes(), name
    assert read_neff(path).path == str(path)


def test_round_trip_non_contiguous_and_big_endian():
    w = {"t": np.arange(12, dtype=np.float32).reshape(3, 4).T, "be": np.arange(4, dtype=">i4")}
    neff = read_neff(to_bytes({}, {}, w, compiler_version="x"))
    np.testing.assert_array_equal(neff.weights["t"], w["t"])
    np.testing.assert_array_equal(neff.weights["be"], w["be"])
    assert neff.weights["be"].dtype == np.int32


def test_weights_are_aligned_read_only_views_of_the_mmap(tmp_path):
    path = tmp_path / "m.neff"
    write_neff(path, META, PROGRAM, _weights(), compiler_version="x")
    neff = read_neff(path)
    for name, arr in neff.weights.items():
        assert isinstance(_base_object(arr), mmap.mmap), name
        assert not arr.flags.writeable, name
        assert arr.ctypes.data % 64 == 0 or arr.nbytes == 0, name
    with pytest.raises(ValueError):
        neff.weights["w_f32"][0, 0] = 1.0
    mapped = _base_object(neff.weights["w_f32"])
    whole = np.frombuffer(mapped, dtype=np.uint8)
    assert np.shares_memory(whole, neff.weights["w_f32"]) and np.shares_memory(whole, neff.weights["i8"])


def test_weights_from_bytes_are_read_only_views():
    raw = bytearray(to_bytes({}, {}, {"w": np.ones(4, np.float32)}, compiler_version="x"))
    arr = read_neff(raw).weights["w"]
    assert not arr.flags.writeable
    assert np.shares_memory(arr, np.frombuffer(raw, np.uint8))


def test_truncated_at_every_point_is_a_format_error(data):
    cuts = sorted(set(range(0, 400)) | set(range(400, len(data), 7)) | {len(data) - 1})
    for cut in cuts:
        with pytest.raises(NeffFormatError) as info:
            read_neff(data[:cut])
        assert type(info.value) is NeffFormatError, cut


def test_truncated_file_names_the_section(tmp_path, data):
    path = tmp_path / "cut.neff"
    path.write_bytes(data[:-100])
    with pytest.raises(NeffFormatError, match=rf"truncated: section 'weights' ends at byte {len(data)} "
                                              rf"but the file has {len(data) - 100} bytes"):
        read_neff(path)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(pos=st.integers(min_value=0), bit=st.integers(min_value=0, max_value=7))
def test_bit_flip_anywhere_is_a_format_error(data, pos, bit):
    damaged = bytearray(data)
    damaged[pos % len(data)] ^= 1 << bit
    with pytest.raises(NeffFormatError):
        read_neff(bytes(damaged))


def test_bit_flip_in_every_byte_is_caught(data):
    for pos in range(len(data)):
        damaged = bytearray(data)
        damaged[pos] ^= 1 << (pos % 8)
        with pytest.raises(NeffFormatError):
            read_neff(bytes(damaged))


def test_bit_flip_in_weights_names_the_section(data):
    damaged = bytearray(data)
    damaged[-70] ^= 1
    with pytest.raises(NeffFormatError, match=r"section 'weights' .* sha256"):
        read_neff(bytes(damaged))
    read_neff(bytes(damaged), verify=False)  # the caller asked not to hash the sections


def test_appended_bytes_are_a_format_error(data):
    with pytest.raises(NeffFormatError, match="unexpected bytes after the last section"):
        read_neff(data + b"\0" * 64)


def test_wrong_magic(tmp_path):
    path = tmp_path / "model.onnx"
    path.write_bytes(b"\x08\x07\x12\x07pytorch" + bytes(100))
    with pytest.raises(NeffFormatError, match=r"not a NEFF file: .*model.onnx.* starts with .* expected"):
        read_neff(path)


def test_empty_file(tmp_path):
    path = tmp_path / "empty.neff"
    path.write_bytes(b"")
    with pytest.raises(NeffFormatError, match="truncated"):
        read_neff(path)


def test_major_version_mismatch_message():
    with pytest.raises(NeffVersionError) as info:
        read_neff(_hand_made(version=(2, 0)))
    assert str(info.value).startswith("NEFF version mismatch supported: 1.2 received: 2.0")
    assert "recompile" in str(info.value)


def test_higher_minor_version_loads():
    neff = read_neff(_hand_made(b'{"k": 1}', version=(1, 9)))
    assert neff.version == (1, 9) and neff.metadata == {"k": 1}


def test_unknown_extra_section_is_ignored():
    header, chunks = _assemble({"metadata": [b"{}"], "program": [b"{}"], "weights.index": [b"{}"],
                                "weights": [b""], "debug.future": [b"anything"]}, "x", (1, 3))
    neff = read_neff(header + b"".join(chunks))
    assert [s.name for s in neff.sections][-1] == "debug.future"


@pytest.mark.parametrize("section, raw", [
    ("metadata", b'{"name": '),
    ("program", b"[1, 2]"),
    ("program", b"\xff\xfe not utf-8"),
    ("weights.index", b"null"),
])
def test_bad_json_with_valid_hash(section, raw):
    with pytest.raises(NeffFormatError, match=rf"section '{section}'"):
        read_neff(_hand_made(**{{"weights.index": "index"}.get(section, section): raw}))


@pytest.mark.parametrize("entry, message", [
    ({"dtype": "float32", "shape": [4], "offset": 0}, "expected"),
    ({"dtype": "complex64", "shape": [4], "offset": 0, "nbytes": 32}, "unsupported dtype"),
    ({"dtype": "float32", "shape": [4], "offset": 0, "nbytes": 12}, "does not match shape"),
    ({"dtype": "float32", "shape": [-4], "offset": 0, "nbytes": 16}, "non-negative ints"),
    ({"dtype": "float32", "shape": [4], "offset": 8, "nbytes": 16}, "multiple of 64"),
    ({"dtype": "float32", "shape": [32], "offset": 0, "nbytes": 128}, "outside the weights section"),
])
def test_inconsistent_weights_index(entry, message):
    import json
    raw = _hand_made(index=json.dumps({"w": entry}).encode(), weights=bytes(64))
    with pytest.raises(NeffFormatError, match=message):
        read_neff(raw)


def test_overlapping_weights():
    index = (b'{"a": {"dtype": "int8", "shape": [64], "offset": 0, "nbytes": 64},'
             b' "b": {"dtype": "int8", "shape": [8], "offset": 0, "nbytes": 8}}')
    with pytest.raises(NeffFormatError, match="overlap"):
        read_neff(_hand_made(index=index, weights=bytes(64)))


def test_header_hash_is_checked(data):
    header_len = struct.unpack_from("<I", data, 12)[0]
    damaged = bytearray(data)
    damaged[header_len - 40] ^= 1  # header padding: covered by the header hash
    with pytest.raises(NeffFormatError, match="corrupted header"):
        read_neff(bytes(damaged))
    body = bytes(damaged[:header_len - 32])
    damaged[header_len - 32:header_len] = hashlib.sha256(body).digest()
    assert read_neff(bytes(damaged)).metadata == META  # padding itself carries no meaning


def test_missing_file_names_the_path(tmp_path):
    path = tmp_path / "nope.neff"
    with pytest.raises(NeffFormatError, match="nope.neff"):
        read_neff(path)


def test_directory_is_a_format_error(tmp_path):
    with pytest.raises(NeffFormatError, match="cannot read NEFF file"):
        read_neff(tmp_path)


def test_unsupported_dtype_leaves_the_old_file(tmp_path):
    path = tmp_path / "m.neff"
    write_neff(path, META, PROGRAM, {"w": np.ones(3, np.float32)}, compiler_version="x")
    before = path.read_bytes()
    with pytest.raises(NeffFormatError, match="unsupported dtype 'object'"):
        write_neff(path, META, PROGRAM, {"w": np.array([object()], dtype=object)}, compiler_version="x")
    with pytest.raises(NeffFormatError, match="not JSON-serializable"):
        write_neff(path, {"f": {1, 2}}, PROGRAM, {}, compiler_version="x")
    assert path.read_bytes() == before and os.listdir(tmp_path) == ["m.neff"]


def test_failed_replace_leaves_the_old_file_and_no_temp(tmp_path, monkeypatch):
    path = tmp_path / "m.neff"
    write_neff(path, META, PROGRAM, {"w": np.ones(3, np.float32)}, compiler_version="x")
    before = path.read_bytes()

    def broken_replace(src, dst):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", broken_replace)
    with pytest.raises(OSError, match="No space left"):
        write_neff(path, META, PROGRAM, _weights(), compiler_version="x")
    assert path.read_bytes() == before and os.listdir(tmp_path) == ["m.neff"]


def test_old_mapping_survives_a_rewrite(tmp_path):
    path = tmp_path / "m.neff"
    write_neff(path, {}, {}, {"w": np.full(4, 7, np.int32)}, compiler_version="x")
    old = read_neff(path)
    write_neff(path, {}, {}, {"w": np.full(4, 9, np.int32)}, compiler_version="x")
    assert old.weights["w"].tolist() == [7] * 4 and read_neff(path).weights["w"].tolist() == [9] * 4


def test_errors_are_neuron_errors():
    assert issubclass(NeffVersionError, NeffFormatError) and issubclass(NeffFormatError, NeuronError)
    assert MAGIC.startswith(b"NEFF") and len(MAGIC) == 8


def test_format_info(data):
    text = format_info(read_neff(data))
    assert text.splitlines()[0] == "NEFF format 1.2, written by compiler neuron-sim 0.1.0"
    for expected in ("metadata", "program", "weights.index", "weights: 11 arrays", "name: \"tiny\"",
                     "x:0  [1,3,4,4]  float32", "y:0  [1,8]  float32", "fast_math: \"all\""):
        assert expected in text, expected


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(edits=st.lists(st.tuples(st.integers(min_value=16), st.integers(0, 255)), min_size=1, max_size=3))
def test_forged_header_with_matching_hash_never_escapes(data, edits):
    header_len = struct.unpack_from("<I", data, 12)[0]
    forged = bytearray(data)
    for pos, value in edits:
        forged[16 + pos % (header_len - 48)] = value
    forged[header_len - 32:header_len] = hashlib.sha256(bytes(forged[:header_len - 32])).digest()
    try:
        read_neff(bytes(forged))  # e.g. a renamed compiler version is a valid file
    except NeffFormatError:
        pass


def test_neff_key_is_the_header_hash_and_damage_is_named():
    data = to_bytes(META, PROGRAM, _weights(), compiler_version="0.1")
    (header_len,) = struct.unpack_from("<I", data, 12)
    assert neff_key(data) == data[header_len - 32:header_len]
    assert neff_key(np.frombuffer(data, np.uint8)) == neff_key(bytearray(data))
    with pytest.raises(NeffFormatError, match="too short to hold a header"):
        neff_key(data[:10])
    with pytest.raises(NeffFormatError, match="outside the 100-byte buffer"):
        neff_key(data[:100])


def test_neff_bytes_reads_once_and_checks_what_it_read():
    data = to_bytes(META, PROGRAM, _weights(), compiler_version="0.1")
    cache, reads = NeffBytes(), []
    for _ in range(3):
        assert cache.get(neff_key(data), lambda: reads.append(1) or data, "damaged") is data
    assert reads == [1]
    other = to_bytes(META, PROGRAM, {}, compiler_version="0.1")
    with pytest.raises(NeffFormatError, match="^damaged$"):
        cache.get(neff_key(other), lambda: data, "damaged")
