"""Compiler options (the neuron-cc flags) and the casting policy they select.

`--fast-math` takes one or more of: all, none, fp32-cast-all, fp32-cast-all-fp16, fp32-cast-matmult,
fp32-cast-matmult-bf16, fp32-cast-matmult-fp16, fast-relayout, no-fast-relayout. `--fp32-cast X` is the
same cast choice without the prefix. Model inputs and outputs are never cast.
"""
from __future__ import annotations

import argparse
import logging
import shlex
from dataclasses import dataclass, field

from ..dtypes import BF16, FP16, FP32
from ..errors import CompilerOptionError

log = logging.getLogger("Neuron")


@dataclass(frozen=True)
class CastPolicy:
    """Which dtype each kind of work runs in: matmul inputs, other ops, PE-array transposes."""

    matmul: str = BF16
    other: str = BF16
    transpose: str | None = BF16  # None: transposes are exact (no-fast-relayout)

    def describe(self) -> str:
        t = self.transpose or "exact"
        return f"matmul inputs {self.matmul}, other ops {self.other}, transposes {t}"


#: cast choice -> (matmul dtype, other-op dtype, dtype of PE-array transposes under fast-relayout)
CAST_CHOICES = {
    "fp32-cast-all": (BF16, BF16, BF16),
    "fp32-cast-all-fp16": (FP16, FP16, FP16),
    "fp32-cast-matmult": (BF16, FP32, FP16),
    "fp32-cast-matmult-bf16": (BF16, FP32, BF16),
    "fp32-cast-matmult-fp16": (FP16, FP32, FP16),
}
RELAYOUT_CHOICES = ("fast-relayout", "no-fast-relayout")
FAST_MATH_VALUES = ("all", "none", *CAST_CHOICES, *RELAYOUT_CHOICES)
VERBOSE_LEVELS = ("DEBUG", "INFO", "WARN", "WARNING", "ERROR")
#: neuron-cc flags of the Inf1 tools that scripts pass and that change nothing a simulated
#: NeuronCore computes or times: accepted, recorded in the NEFF's options, and said so
COMPAT_FLAGS = {
    "--enable-fast-loading-neuron-binaries": "accepted for compatibility: NEFF loading on the "
                                             "device; nothing changes in the simulator",
    "--enable-fast-context-switch": "accepted for compatibility: model switching on the device; "
                                    "nothing changes in the simulator",
    "--enable-saturate-infinity": "accepted for compatibility: the device's saturation of "
                                  "+/-inf in some ops is not simulated (a warning says so)",
}


@dataclass(frozen=True)
class CompilerOptions:
    """Everything that changes what the compiler produces."""

    fast_math: tuple = ("all",)
    pipeline_cores: int = 1
    verbose: str = "WARN"
    policy: CastPolicy = field(default_factory=CastPolicy)
    #: a directory to write the IR to after every compiler pass (not part of what is produced)
    dump_passes: str | None = None
    #: the COMPAT_FLAGS given (without their dashes), e.g. ("enable-saturate-infinity",)
    compat: tuple = ()

    def to_json(self) -> dict:
        out = {"fast_math": list(self.fast_math), "neuroncore_pipeline_cores": self.pipeline_cores,
               "policy": {"matmul": self.policy.matmul, "other": self.policy.other,
                          "transpose": self.policy.transpose}}
        if self.compat:
            out["accepted_flags"] = list(self.compat)
        return out


def resolve_policy(fast_math) -> CastPolicy:
    """The casting policy for a list of --fast-math values."""
    cast, relayout = "fp32-cast-all", "fast-relayout"
    for value in fast_math:
        if value == "all":
            cast, relayout = "fp32-cast-all", "fast-relayout"
        elif value == "none":
            cast, relayout = "fp32-cast-matmult-bf16", "no-fast-relayout"
        elif value in CAST_CHOICES:
            cast = value
        elif value in RELAYOUT_CHOICES:
            relayout = value
        else:
            raise CompilerOptionError(f"--fast-math value {value!r} is not valid; choose from "
                                      f"{', '.join(FAST_MATH_VALUES)}")
    matmul, other, transpose = CAST_CHOICES[cast]
    return CastPolicy(matmul, other, transpose if relayout == "fast-relayout" else None)


def add_compiler_arguments(parser: argparse.ArgumentParser) -> None:
    """The options shared by `neuron-cc compile` and the plugins' `compiler_args`."""
    parser.add_argument("--fast-math", nargs="+", metavar="VALUE", default=None,
                        help="casting/relayout trade-offs: " + ", ".join(FAST_MATH_VALUES))
    parser.add_argument("--fp32-cast", metavar="MODE", default=None,
                        choices=[c.removeprefix("fp32-cast-") for c in CAST_CHOICES],
                        help="shorthand for --fast-math fp32-cast-MODE")
    parser.add_argument("--neuroncore-pipeline-cores", type=int, default=1, metavar="N",
                        help="shard the model over N NeuronCores as a pipeline")
    parser.add_argument("--verbose", default="WARN", type=str.upper, choices=VERBOSE_LEVELS,
                        help="log level of the compiler")
    parser.add_argument("--dump-passes", metavar="DIR", default=None,
                        help="write the IR after every compiler pass to DIR/NN-pass.txt")
    for flag, what in COMPAT_FLAGS.items():
        parser.add_argument(flag, action="store_true", help=what)


def options_from_namespace(ns: argparse.Namespace) -> CompilerOptions:
    fast_math = tuple(ns.fast_math or ("all",))
    if ns.fp32_cast:
        fast_math = fast_math + (f"fp32-cast-{ns.fp32_cast}",)
    from ..hw import INF1, INF1_INSTANCES
    most = max(INF1_INSTANCES.values()) * INF1.cores_per_chip
    if not 1 <= ns.neuroncore_pipeline_cores <= most:
        raise CompilerOptionError(f"--neuroncore-pipeline-cores must be 1 to {most} (the "
                                  f"NeuronCores of the largest Inf1 instance), got "
                                  f"{ns.neuroncore_pipeline_cores}")
    compat = tuple(f[2:] for f in COMPAT_FLAGS if getattr(ns, f[2:].replace("-", "_"), False))
    if "enable-saturate-infinity" in compat:
        log.warning("--enable-saturate-infinity: the simulated NeuronCore does not saturate "
                    "+/-inf; values are computed as without the flag")
    return CompilerOptions(fast_math, ns.neuroncore_pipeline_cores, ns.verbose,
                           resolve_policy(fast_math), getattr(ns, "dump_passes", None), compat)


class _Parser(argparse.ArgumentParser):
    def error(self, message):
        raise CompilerOptionError(f"bad compiler argument: {message}. Valid options: "
                                  f"{', '.join(a for act in self._actions for a in act.option_strings if a not in ('-h', '--help'))}")


def parse_compiler_args(args=None) -> CompilerOptions:
    """Parse neuron-cc style arguments given as a list or one string.

    >>> parse_compiler_args("--fast-math fp32-cast-matmult no-fast-relayout").policy.transpose is None
    True
    """
    if args is None:
        args = []
    if isinstance(args, str):
        args = shlex.split(args)
    parser = _Parser(prog="compiler_args", add_help=False)
    add_compiler_arguments(parser)
    return options_from_namespace(parser.parse_args([str(a) for a in args]))


@dataclass(frozen=True)
class EnvFlags:
    """What `NEURON_CC_FLAGS` asks of a plugin's compile: compiler arguments, and the flags the
    Neuron tracing APIs take from it themselves (`--workdir DIR`, `--dynamic-batch-size`,
    `--extract-weights INSTANCE`)."""

    compiler_args: tuple = ()
    workdir: str | None = None
    dynamic_batch_size: bool = False
    extract_weights: str | None = None


#: the variable the Neuron plugins read extra compiler flags from
CC_FLAGS_VAR = "NEURON_CC_FLAGS"


def env_flags(environ=None) -> EnvFlags:
    """`NEURON_CC_FLAGS` split into compiler arguments and the tracing APIs' own flags.

    >>> env_flags({"NEURON_CC_FLAGS": "--workdir ./artifacts --fast-math none"}).workdir
    './artifacts'
    """
    import os
    text = (os.environ if environ is None else environ).get(CC_FLAGS_VAR, "")
    try:
        words = shlex.split(text)
    except ValueError as exc:
        raise CompilerOptionError(f"{CC_FLAGS_VAR}={text!r} does not parse as shell words "
                                  f"({exc}); fix its quoting") from None
    rest, found, i = [], {}, 0
    while i < len(words):
        word = words[i]
        name, eq, value = word.partition("=")
        if name in ("--workdir", "--extract-weights"):
            if not eq:
                if i + 1 >= len(words):
                    raise CompilerOptionError(f"{CC_FLAGS_VAR}: {name} needs a value, e.g. "
                                              f"{CC_FLAGS_VAR}='{name} ./artifacts'")
                i, value = i + 1, words[i + 1]
            found[name] = value
        elif word == "--dynamic-batch-size":
            found[word] = True
        else:
            rest.append(word)
        i += 1
    if rest:
        try:
            parse_compiler_args(rest)
        except CompilerOptionError as exc:
            raise CompilerOptionError(f"{CC_FLAGS_VAR}={text!r}: {exc}") from None
    if "--extract-weights" in found:
        log.warning("%s --extract-weights %s: accepted; a NEFF always carries its weights here "
                    "(there is no 2 GB protobuf limit to work around)", CC_FLAGS_VAR,
                    found["--extract-weights"])
    return EnvFlags(tuple(rest), found.get("--workdir"), bool(found.get("--dynamic-batch-size")),
                    found.get("--extract-weights"))


def with_env_args(compiler_args, flags: EnvFlags) -> list:
    """A plugin's `compiler_args` followed by those of `NEURON_CC_FLAGS` (which win, as later
    flags do on a command line)."""
    if compiler_args is None:
        args = []
    elif isinstance(compiler_args, str):
        args = shlex.split(compiler_args)
    else:
        args = [str(a) for a in compiler_args]
    return args + list(flags.compiler_args)
