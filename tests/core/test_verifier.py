"""The program verifier at load (neuron_core/neff/verify.py): a NEFF edited and re-written with the
public writer has valid hashes, so each fault below is caught by the field it breaks, with a
NeffFormatError naming that field, in every kernel set."""
from __future__ import annotations

import re

import numpy as np
import pytest

from neuron_core.errors import NeffFormatError
from neuron_core.neff import read_neff
from neuron_core.neff.verify import verify
from neuron_core.runtime import load

from .neff_fixtures import neff, rewrite  # noqa: F401  (neff: a fixture)


def _compute(program) -> list:
    """Indices of the instructions that are not casts."""
    return [k for k, i in enumerate(program["instrs"]) if i["op"] != "_cast"]


def _internal(program) -> dict:
    return next(b for b in program["buffers"] if b["kind"] == "internal")


def _renumber(m, p):
    p["buffers"][2]["id"] = 7


def _read_undefined(m, p):
    k = _compute(p)[1]
    later = p["instrs"][-1]["outputs"][0]
    p["instrs"][k]["inputs"][0] = later


def _write_twice(m, p):
    a, b = _compute(p)[1:3]
    p["instrs"][b]["outputs"] = list(p["instrs"][a]["outputs"])


def _write_a_weight(m, p):
    k = _compute(p)[0]
    p["instrs"][k]["outputs"] = [next(b["id"] for b in p["buffers"] if b["kind"] == "weight")]


def _free_early(m, p):
    """Free the first conv's output right after it: the next instruction reads it."""
    k = _compute(p)[0]
    p["instrs"][k]["free"].append(p["instrs"][k]["outputs"][0])


def _free_an_output(m, p):
    p["instrs"][-1]["free"].append(p["outputs"][0])


def _wrong_shape(m, p):
    """The first conv's output halved in width, its byte count made to agree: only the op's own
    shape inference can tell."""
    k = _compute(p)[0]
    b = p["buffers"][p["instrs"][k]["outputs"][0]]
    b["shape"] = b["shape"][:-1] + [b["shape"][-1] // 2]
    b["nbytes"] //= 2


def _conv_attrs(m, p):
    p["instrs"][_compute(p)[0]]["attrs"]["strides"] = [1, 1]


def _rename_weight(m, p):
    next(b for b in p["buffers"] if b["kind"] == "weight")["name"] = "not_in_the_file"


def _memory_total(m, p):
    p["memory"]["total_bytes"] -= 64


def _offset(m, p):
    _internal(p)["offset"] = p["memory"]["total_bytes"]


def _engine(m, p):
    p["instrs"][0]["engine"] = "WarpEngine"


def _op(m, p):
    p["instrs"][_compute(p)[0]]["op"] = "Frobnicate"


def _storage_of_int(m, p):
    _internal(p)["storage"] = "int8"


def _nbytes(m, p):
    _internal(p)["nbytes"] += 1


def _rank(m, p):
    m["inputs"][0]["shape"] = [1] * 17


def _bool_as_count(m, p):
    p["instrs"][0]["flops"] = True


def _post_without_chain(m, p):
    k = next(k for k, i in enumerate(p["instrs"]) if i["post"])
    p["instrs"][k]["post"][0]["inputs"] = []


def _post_off_the_chain(m, p):
    k = next(k for k, i in enumerate(p["instrs"]) if i["post"])
    p["instrs"][k]["post"][0]["inputs"] = [0]


def _extra_instr_field(m, p):
    p["instrs"][0]["speed"] = "fast"


def _duplicate_input_name(m, p):
    m["inputs"].append(dict(m["inputs"][0]))


def _unknown_attr(m, p):
    k = next(k for k, i in enumerate(p["instrs"]) if i["op"] == "Add")
    p["instrs"][k]["attrs"]["to"] = "float32"


def _string_for_a_float(m, p):
    k = next(k for k, i in enumerate(p["instrs"]) if i["op"] == "Gemm")
    p["instrs"][k]["attrs"]["alpha"] = "inf"


def _bias_of_another_shape(m, p):
    k = next(k for k, i in enumerate(p["instrs"]) if i["op"] == "Conv" and len(i["inputs"]) == 3)
    p["instrs"][k]["inputs"][2] = p["instrs"][k]["inputs"][1]     # the filter as the bias


def _pads_of_another_rank(m, p):
    p["instrs"][_compute(p)[0]]["attrs"]["pads"] = [1, 1, 1, 1, 1]


FAULTS = [
    (r"program\.buffers\[2\]\.id", _renumber),
    (r"program\.instrs\[\d+\]\.inputs\[0\] .*before any instruction writes it", _read_undefined),
    (r"program\.instrs\[\d+\]\.outputs\[0\] .*written before", _write_twice),
    (r"program\.instrs\[\d+\]\.outputs\[0\] .*a weight", _write_a_weight),
    (r"program\.instrs\[\d+\]\.inputs\[\d\] .*freed after instruction", _free_early),
    (r"program\.instrs\[\d+\]\.free\[\d\] .*not a scratch buffer", _free_an_output),
    (r"program\.instrs\[\d+\]\.outputs .*Conv of .* gives f32\[1,8,16,16\], the program says "
     r"f32\[1,8,16,8\]", _wrong_shape),
    (r"program\.instrs\[\d+\]\.outputs .*Conv", _conv_attrs),
    (r"program\.buffers\[\d+\] .*weight 'not_in_the_file' has no array", _rename_weight),
    (r"program\.memory\.total_bytes", _memory_total),
    (r"program\.buffers\[\d+\]\.offset .*outside", _offset),
    (r"program\.instrs\[0\]\.engine .*WarpEngine", _engine),
    (r"program\.instrs\[\d+\]\.op .*'Frobnicate' is not an op", _op),
    (r"program\.buffers\[\d+\]\.storage .*int8 cannot hold a float32", _storage_of_int),
    (r"program\.buffers\[\d+\]\.nbytes", _nbytes),
    (r"metadata\.inputs\[0\]\.shape .*at most 16", _rank),
    (r"program\.instrs\[0\]\.flops .*valid integer", _bool_as_count),
    (r"program\.instrs\[\d+\]\.post\[0\] .*takes 1\.\.1 inputs", _post_without_chain),
    (r"program\.instrs\[\d+\]\.post\[0\]\.inputs .*chained value", _post_off_the_chain),
    (r"program\.instrs\[0\]\.speed .*Extra inputs", _extra_instr_field),
    (r"metadata\.inputs|program\.inputs", _duplicate_input_name),
    (r"program\.instrs\[\d+\]\.attrs\.to .*Add has no attribute 'to'", _unknown_attr),
    (r"program\.instrs\[\d+\]\.attrs\.alpha .*must be a finite number, got 'inf'",
     _string_for_a_float),
    (r"program\.instrs\[\d+\] .*the bias has shape \[8, 3, 7, 7\]", _bias_of_another_shape),
    (r"program\.instrs\[\d+\] .*pads \[1, 1, 1, 1, 1\] has 5 values", _pads_of_another_rank),
]


@pytest.mark.parametrize("pattern, edit", FAULTS, ids=[f.__name__.strip("_") for _, f in FAULTS])
def test_each_fault_is_named_by_its_field(neff, pattern, edit):  # noqa: F811
    data = rewrite(neff, edit)
    with pytest.raises(NeffFormatError, match=pattern) as caught:
        load(data, kernels="reference")
    assert "<bytes>" in str(caught.value) and "compile the model again" in str(caught.value)


@pytest.mark.parametrize("kernels", ["fast", "instruction"])
def test_every_kernel_set_runs_behind_the_verifier(neff, kernels):  # noqa: F811
    data = rewrite(neff, _wrong_shape)
    with pytest.raises(NeffFormatError, match=re.escape("the program says f32[1,8,16,8]")):
        load(data, kernels=kernels)


def test_edits_that_change_nothing_the_program_means_still_load(neff):  # noqa: F811
    """Profiling fields (the node names, FLOP and byte counts) and extra metadata are free text
    to the runtime: an edit of them loads and runs to the same output."""
    def edit(m, p):
        m["note"] = "edited"
        for i in p["instrs"]:
            i["node"], i["flops"] = "renamed", i["flops"] + 1
    x = np.random.default_rng(0).standard_normal((1, 3, 32, 32), np.float32)
    same = load(rewrite(neff, edit)).run([x])[0]
    np.testing.assert_array_equal(same, load(neff).run([x])[0])


def test_the_verifier_accepts_what_the_compiler_writes(neff):  # noqa: F811
    program = verify(read_neff(neff))
    assert len(program.instrs) == read_neff(neff).metadata["num_instructions"]
