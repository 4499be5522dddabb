"""neuron-profile: operator time tables of the profiles written with NEURON_PROFILE=DIR.

    NEURON_PROFILE=prof python serve.py          # every Model.run writes prof/<model>-pid<pid>-<n>.trace.json
    neuron-profile view prof                     # the newest profile: time per operator, on-core vs host
    neuron-profile view prof --csv ops.csv       # the same table as CSV
    neuron-profile view prof/x.trace.json --by-type --top 10

The trace files themselves open in chrome://tracing or https://ui.perfetto.dev.
"""
from __future__ import annotations

import argparse
import logging
import sys

from ..errors import NeuronError

log = logging.getLogger("Neuron")


def cmd_view(args) -> int:
    from ..runtime.profile import find_trace, format_table, load_trace, operator_table, write_csv
    path = find_trace(args.profile)
    trace = load_trace(path)
    rows = operator_table(trace, by_type=args.by_type)
    if args.csv:
        try:
            write_csv(rows, args.csv)
        except OSError as exc:
            raise NeuronError(f"cannot write --csv {args.csv!r}: {exc}") from None
        print(f"{len(rows)} operators of {path} written to {args.csv}")
    else:
        print(format_table(trace, rows, str(path), args.top or None))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="neuron-profile", description="Show the profiles of "
                                     "executions on the simulated NeuronCore (NEURON_PROFILE=DIR).")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    p = sub.add_parser("view", help="time per operator (on-core vs host) of a profile")
    p.add_argument("profile", help="a profile directory (its newest trace) or a .trace.json file")
    p.add_argument("--csv", metavar="FILE", help="write the table as CSV instead of printing it")
    p.add_argument("--by-type", action="store_true", help="one row per op type")
    p.add_argument("--top", type=int, default=30, metavar="N",
                   help="print the N largest rows (default 30; 0 for all)")
    p.set_defaults(fn=cmd_view)
    return parser


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.fn(args)
    except NeuronError as exc:
        print(f"neuron-profile: error: {exc}", file=sys.stderr)
        return 1
    except BrokenPipeError:
        return 0
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
