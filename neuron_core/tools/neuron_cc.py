"""neuron-cc: compile a model into a NEFF, list the supported operators, describe a NEFF.

    neuron-cc compile model.onnx --framework ONNX --io-config '{"inputs": {"x": [[1,3,224,224], "float32"]}}'
    neuron-cc list-operators --framework ONNX     (or PYTORCH, TENSORFLOW, MXNET: the plugin's ops;
                                                 plugins are found by module name, bridge.plugin)
    neuron-cc info model.neff
    neuron-cc estimate model.neff [--instance inf1.xlarge] [--batch-size N] [--cores N] [--json]
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
from pathlib import Path

from .. import __version__
from ..errors import CompilerOptionError, NeuronError

#: the framework neuron-cc compiles itself; the others are the plugins' (found by module name)
CORE_FRAMEWORK = "ONNX"

log = logging.getLogger("Neuron")


def frameworks() -> tuple:
    """The --framework values: ONNX and the framework of every plugin found."""
    from ..bridge.plugin import plugins
    return (CORE_FRAMEWORK, *sorted(plugins()))


def _framework(value: str) -> str:
    upper = value.upper()
    known = frameworks()
    if upper not in known:
        raise argparse.ArgumentTypeError(
            f"{value!r} is not one of {', '.join(known)}: ONNX, and the framework of each "
            "installed plugin (a package named *_neuron with a plugin.py record)")
    return upper


def _read_model(paths: list[str], framework: str, io_config: dict | None):
    """The IR graph of the files given to `neuron-cc compile`: ONNX here, others by their plugin."""
    if framework != CORE_FRAMEWORK:
        from ..bridge.plugin import find
        return find(framework).read_model(paths, io_config)
    if len(paths) != 1:
        raise NeuronError(f"--framework ONNX compiles one .onnx file, got {len(paths)}: "
                          f"{' '.join(paths)}")
    from ..frontends.onnx_import import from_onnx
    return from_onnx(paths[0], io_config)


def load_io_config(text: str | None) -> dict | None:
    """--io-config as inline JSON or a path to a JSON file."""
    if text is None:
        return None
    source = "--io-config"
    if not text.lstrip().startswith("{"):
        path = Path(text)
        if not path.is_file():
            raise NeuronError(f"--io-config {text!r} is neither inline JSON nor an existing file")
        source, text = str(path), path.read_text()
    try:
        config = json.loads(text)
    except json.JSONDecodeError as exc:
        raise NeuronError(f"{source} is not valid JSON: {exc}. Expected e.g. "
                          '{"inputs": {"x:0": [[1,3,224,224], "float32"]}, "outputs": ["y:0"]}')
    if not isinstance(config, dict) or not isinstance(config.get("inputs", {}), dict):
        raise NeuronError(f"{source} must be an object with an \"inputs\" object, got {config!r}")
    return config


def _is_neff(path: Path) -> bool:
    """Only a file that parses fully as a NEFF may be replaced: anything else may be something
    the user wants to keep."""
    from ..neff import read_neff
    read_neff(str(path))
    return True


def cmd_compile(args) -> int:
    from ..compiler import compile_graph
    from ..compiler.options import options_from_namespace
    from ..fileio import atomic_write, check_destination
    options = options_from_namespace(args)
    out = Path(args.output)
    check_destination(out, _is_neff, overwrite=False, what="a NEFF written by neuron-sim",
                      advice="choose another --output or remove the file")
    started = time.perf_counter()
    graph = _read_model(args.model, args.framework, load_io_config(args.io_config))
    compiled = compile_graph(graph, options, framework=args.framework,
                             source=Path(args.model[0]).name)
    seconds = time.perf_counter() - started
    meta = compiled.metadata
    summary = estimate_summary(compiled.program, meta, out)   # may fail: before --output is touched
    size = atomic_write(out, compiled.to_bytes())
    mem = meta["memory"]
    print(f"Compiled {meta['num_nodes']} operators into {meta['num_instructions']} instructions "
          f"({', '.join(f'{k}: {v}' for k, v in sorted(meta['engine_counts'].items()))}) "
          f"in {seconds:.2f} s")
    print(f"Casting: {options.policy.describe()}; {meta['cast_points']} cast points")
    print(f"Device memory: {mem['total_bytes'] / 2**20:.1f} MiB "
          f"(weights {mem['weights_bytes'] / 2**20:.1f} MiB, scratch peak "
          f"{mem['scratch_peak_bytes'] / 2**20:.1f} MiB)")
    print(f"NEFF written to {out} ({size / 2**20:.2f} MiB)")
    if options.dump_passes:
        print(f"IR after every compiler pass written to {options.dump_passes}")
    print(summary)
    return 0


def estimate_summary(program, metadata: dict, path) -> str:
    """Two lines for the end of a compile: one replica's latency and throughput, and one instance's."""
    from ..estimate import estimate_program
    from ..hw import INF1, INF1_INSTANCES
    pipeline = int(metadata["options"].get("neuroncore_pipeline_cores", 1))
    fits = [n for n, chips in INF1_INSTANCES.items() if chips * INF1.cores_per_chip >= pipeline]
    if not fits:
        return (f"Estimate: a pipeline over {pipeline} NeuronCores fits no Inf1 instance "
                f"(at most {max(INF1_INSTANCES.values()) * INF1.cores_per_chip} cores)")
    inst = fits[0]
    one = estimate_program(program, metadata, instance=inst, cores=pipeline).instances[inst]
    full = estimate_program(program, metadata, instance=inst).instances[inst]
    where = f"{pipeline} NeuronCores (pipeline)" if pipeline > 1 else "1 NeuronCore"
    return (f"Estimated on Inf1 (timing model, batch {one.batch_size}): P50 "
            f"{one.latency_ms_p50:.2f} ms, {one.throughput_per_s:.1f}/s on {where}; {inst} "
            f"({full.cores} cores): {full.throughput_per_s:.1f}/s, P50 {full.latency_ms_p50:.2f} ms"
            f"\n  every instance size: neuron-cc estimate {path}")


def cmd_list_operators(args) -> int:
    from ..bridge.plugin import find
    from ..ops import op_names
    names = op_names() if args.framework == CORE_FRAMEWORK else \
        find(args.framework).supported_operators()
    print("\n".join(names))
    return 0


def cmd_info(args) -> int:
    from ..neff import format_info, read_neff
    print(format_info(read_neff(args.neff)))
    return 0


def cmd_estimate(args) -> int:
    from ..estimate import estimate_program, read_program
    program, metadata = read_program(args.neff)
    est = estimate_program(program, metadata, instance=args.instance, cores=args.cores,
                           batch_size=args.batch_size, host_ms=args.host_ms,
                           inflight=args.inflight, name=Path(args.neff).name)
    print(json.dumps(est.to_json(), indent=2) if args.json else est.format())
    return 0


def _positive(value: str) -> int:
    if not value.isdigit() or int(value) < 1:
        raise argparse.ArgumentTypeError(f"{value!r} is not a positive integer")
    return int(value)


def _milliseconds(value: str) -> float:
    try:
        ms = float(value)
    except ValueError:
        ms = -1.0
    if not ms >= 0:
        raise argparse.ArgumentTypeError(f"{value!r} is not a number of milliseconds >= 0")
    return ms


def build_parser() -> argparse.ArgumentParser:
    from ..compiler.options import VERBOSE_LEVELS, add_compiler_arguments
    parser = argparse.ArgumentParser(prog="neuron-cc", description="Compile models for a simulated "
                                     "Inferentia NeuronCore and inspect NEFF files.")
    parser.add_argument("-V", "--version", action="version",
                        version=f"neuron-cc {__version__} (neuron-sim, NEFF format "
                                f"{'.'.join(map(str, _neff_version()))})")
    parser.add_argument("--verbose", dest="top_verbose", type=str.upper, default=None,
                        choices=VERBOSE_LEVELS, help="log level, as in `neuron-cc --verbose INFO "
                        "compile ...` (the same as the command's own --verbose)")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    known = "|".join(frameworks())
    p = sub.add_parser("compile", help="compile a model into a NEFF")
    p.add_argument("model", nargs="+", help="model file(s): model.onnx (ONNX), model.pb "
                   "or a SavedModel directory (TENSORFLOW), NAME-symbol.json NAME-0000.params "
                   "(MXNET)")
    p.add_argument("--framework", required=True, type=_framework, help=known)
    p.add_argument("--io-config", help="inputs' shapes and dtypes, outputs: JSON or a JSON file")
    p.add_argument("--output", default="out.neff", help="NEFF to write (default: out.neff)")
    add_compiler_arguments(p)
    p.set_defaults(fn=cmd_compile)
    p = sub.add_parser("list-operators", help="print the supported operators, one a line")
    p.add_argument("--framework", required=True, type=_framework, help=known)
    p.set_defaults(fn=cmd_list_operators)
    p = sub.add_parser("info", help="print a NEFF's header and metadata")
    p.add_argument("neff")
    p.set_defaults(fn=cmd_info)
    from ..hw import INF1_INSTANCES
    p = sub.add_parser("estimate", help="estimate latency (P50) and throughput on Inf1 sizes",
                       description="Latency and throughput of a NEFF on Inf1 instance sizes, from "
                       "the timing model of the simulated NeuronCore (nothing is run). A batch "
                       "size other than the compiled batch runs as back-to-back executions.")
    p.add_argument("neff")
    p.add_argument("--instance", choices=list(INF1_INSTANCES), help="one size (default: all)")
    p.add_argument("--batch-size", type=_positive, metavar="N",
                   help="samples per request (default: the compiled batch)")
    p.add_argument("--cores", type=_positive, metavar="N",
                   help="NeuronCores used on each instance (default: all)")
    p.add_argument("--inflight", type=_positive, default=1, metavar="N",
                   help="requests outstanding per replica (default 1)")
    p.add_argument("--host-ms", type=_milliseconds, default=0.0, metavar="MS",
                   help="host time per request, e.g. host-fallback ops (default 0)")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(fn=cmd_estimate)
    return parser


def _neff_version():
    from ..neff import FORMAT_VERSION
    return FORMAT_VERSION


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.top_verbose and getattr(args, "verbose", "WARN") == "WARN":
        args.verbose = args.top_verbose   # given before the command
    level = getattr(args, "verbose", "WARN")
    logging.basicConfig(level=logging.WARNING if level == "WARN" else getattr(logging, level),
                        format="%(levelname)s %(name)s: %(message)s")
    try:
        return args.fn(args)
    except (NeuronError, CompilerOptionError) as exc:
        print(f"neuron-cc: error: {exc}", file=sys.stderr)
        return 1
    except BrokenPipeError:  # output piped into `head`
        return 0
    except OSError as exc:
        print(f"neuron-cc: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("neuron-cc: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # a bug: say so in one line; the traceback under --verbose DEBUG
        if level == "DEBUG" or os.environ.get("NEURON_CC_TRACEBACK"):
            raise
        print(f"neuron-cc: internal error: {type(exc).__name__}: {exc} (rerun with --verbose DEBUG "
              "for the traceback)", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
