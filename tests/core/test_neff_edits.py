"""NEFFs edited and re-written with the public writer: hostile attributes and nesting are
NeffFormatErrors, not memory blow-ups or RecursionErrors; careless run() arguments are
BadInputErrors."""
from __future__ import annotations

import re

import numpy as np
import pytest

from neuron_core.errors import BadInputError, NeffFormatError
from neuron_core.neff import read_neff
from neuron_core.runtime import load

from .neff_fixtures import neff, rewrite  # noqa: F401  (neff: a fixture)


def _conv(program) -> dict:
    return next(i for i in program["instrs"] if i["op"] == "Conv")


@pytest.mark.parametrize("kernels", ["fast", "instruction"])
def test_an_attribute_of_a_huge_string_dtype_is_refused_before_allocating(neff, kernels):  # noqa: F811
    def edit(metadata, program):
        _conv(program)["attrs"]["pads"] = {"__ndarray__": ["x"], "dtype": "U250000000"}
    data = rewrite(neff, edit)
    with pytest.raises(NeffFormatError, match=r"attrs\.pads .*must be a list of int64s"):
        load(data, kernels=kernels)


def test_an_attribute_with_too_many_elements_is_refused(neff):  # noqa: F811
    def edit(metadata, program):
        _conv(program)["attrs"]["pads"] = [0] * (1 << 20 | 1)
    with pytest.raises(NeffFormatError, match="more than 1048576 items"):
        load(rewrite(neff, edit), kernels="instruction")


@pytest.mark.parametrize("value, message", [
    ({"__ndarray__": ["x"], "dtype": "U250000000"}, "dtype 'U250000000'"),
    ({"__ndarray__": [0] * (1 << 20 | 1), "dtype": "int64"}, "more than 1048576 elements"),
    ({"__ndarray__": [[1, 2], [3]], "dtype": "int64"}, "not a int64 array"),
    ({"a": [[[[[[[[[[1]]]]]]]]]]}, "nested more than 8 levels"),
])
def test_attribute_decoding_makes_plain_arrays_within_the_limits(value, message):
    """What an attribute the schema allows to hold a tagged array or nested lists may decode
    to (neff/verify.decode_attrs), checked before numpy allocates anything."""
    from neuron_core.neff.verify import decode_attrs
    with pytest.raises(NeffFormatError, match=message):
        decode_attrs(value)


def test_deeply_nested_json_is_a_format_error(neff, monkeypatch):  # noqa: F811
    """json.dumps cannot write 100,000 levels either, so the writer's output is edited: the
    placeholder becomes the nested lists, and the section hashes are the writer's own."""
    import json

    import neuron_core.neff.format as fmt
    deep = "[" * 100_000 + "]" * 100_000
    real = json.dumps

    def dumps(obj, **kw):
        return real(obj, **kw).replace('"DEEP"', deep)
    monkeypatch.setattr(fmt.json, "dumps", dumps)

    def edit(metadata, program):
        metadata["deep"] = "DEEP"
    data = rewrite(neff, edit)
    monkeypatch.undo()
    with pytest.raises(NeffFormatError, match="not valid UTF-8 JSON"):
        read_neff(data)


def test_run_arguments_that_are_not_arrays_are_bad_input(neff):  # noqa: F811
    model = load(neff)
    for wrong in (None, 5, "x"):
        with pytest.raises(BadInputError, match="run\\(\\) takes one array"):
            model.run(wrong)
    model.unload()


def test_a_big_endian_input_runs_as_its_values(neff):  # noqa: F811
    model = load(neff)
    name, shape, _ = model.inputs[0]
    x = np.random.default_rng(0).standard_normal(shape).astype(np.float32)
    want, = model.run([x])
    got, = model.run([x.astype(">f4")])
    np.testing.assert_array_equal(got, want)
    model.unload()


@pytest.mark.parametrize("field, edit", [
    ("metadata.outputs[0]", lambda m, p: m["outputs"][0].update(dtype="int8")),
    ("program.inputs", lambda m, p: p.update(inputs=[])),
    ("metadata.outputs", lambda m, p: (m.update(outputs=[]), p.update(outputs=[]))),
    ("metadata.inputs[0]", lambda m, p: m["inputs"][0].update(shape=[1, 2, 3])),
    ("buffers[1].storage", lambda m, p: p["buffers"][1].update(storage="bogus")),
    ("attrs.to", lambda m, p: next(i for i in p["instrs"] if i["op"] == "_cast")["attrs"]
     .update(to="int8")),
])
def test_metadata_and_program_that_disagree_are_refused_at_load(neff, field, edit):  # noqa: F811
    data = rewrite(neff, edit)
    with pytest.raises(NeffFormatError, match=re.escape(field)):
        load(data)
