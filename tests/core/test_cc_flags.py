"""NEURON_CC_FLAGS: compiler arguments and the tracing APIs' own flags, as the Neuron docs use it."""
from __future__ import annotations

import pytest

from neuron_core.compiler.options import env_flags, parse_compiler_args, with_env_args
from neuron_core.errors import CompilerOptionError


def test_special_flags_are_taken_out_and_the_rest_are_compiler_arguments():
    flags = env_flags({"NEURON_CC_FLAGS": "--workdir ./artifacts --dynamic-batch-size "
                                          "--neuroncore-pipeline-cores=4 --fast-math none"})
    assert flags.workdir == "./artifacts" and flags.dynamic_batch_size
    assert flags.compiler_args == ("--neuroncore-pipeline-cores=4", "--fast-math", "none")
    options = parse_compiler_args(with_env_args(["--fast-math", "fp32-cast-matmult"], flags))
    assert options.pipeline_cores == 4 and options.fast_math == ("none",)   # the variable wins


def test_unset_or_empty_changes_nothing():
    for env in ({}, {"NEURON_CC_FLAGS": "  "}):
        flags = env_flags(env)
        assert flags.compiler_args == () and flags.workdir is None
        assert not flags.dynamic_batch_size


def test_extract_weights_is_accepted_with_a_warning(caplog):
    flags = env_flags({"NEURON_CC_FLAGS": "--extract-weights inf1.2xlarge"})
    assert flags.extract_weights == "inf1.2xlarge" and flags.compiler_args == ()
    assert "carries its weights" in caplog.text


@pytest.mark.parametrize("value, match", [
    ("--bogus-flag", r"NEURON_CC_FLAGS='--bogus-flag': bad compiler argument"),
    ("--workdir", r"--workdir needs a value"),
    ("--fast-math 'none", r"does not parse as shell words"),
])
def test_bad_values_name_the_variable(value, match):
    with pytest.raises(CompilerOptionError, match=match):
        env_flags({"NEURON_CC_FLAGS": value})
