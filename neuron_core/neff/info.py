"""A NEFF described for people: what `neuron-cc info` (and `format_info`) prints."""
from __future__ import annotations

import json

from .format import Neff


def _tensor_specs(value) -> list[tuple[str, list, str]] | None:
    """(name, shape, dtype) per tensor when `value` lists tensors ({name: [shape, dtype]} or
    {name: {shape, dtype}} or [{name, shape, dtype}, ...]), else None."""
    items = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
    specs = []
    for key, x in items:
        if isinstance(x, dict) and isinstance(x.get("shape"), list) and isinstance(x.get("dtype"), str):
            specs.append((x.get("name", key), x["shape"], x["dtype"]))
        elif isinstance(x, list) and len(x) == 2 and isinstance(x[0], list) and isinstance(x[1], str):
            specs.append((key, x[0], x[1]))
        else:
            return None
    return specs or None


def _format_item(key: str, value, indent: int, lines: list[str]) -> None:
    pad = "  " * indent
    specs = _tensor_specs(value)
    if specs is not None:
        lines.append(f"{pad}{key}: ({len(specs)})")
        width = max(len(str(name)) for name, _, _ in specs)
        lines += [f"{pad}  {str(name):<{width}}  [{','.join(map(str, shape))}]  {dtype}"
                  for name, shape, dtype in specs]
    elif isinstance(value, dict) and value:
        lines.append(f"{pad}{key}:")
        for k, v in value.items():
            _format_item(k, v, indent + 1, lines)
    else:
        text = json.dumps(value, ensure_ascii=False)
        lines.append(f"{pad}{key}: {text if len(text) <= 100 else text[:97] + '...'}")


def format_info(neff: Neff) -> str:
    """A readable summary of a NEFF's header and metadata (what `neuron-cc info` prints).

    Example:
        >>> from neuron_core.neff import read_neff, to_bytes
        >>> print(format_info(read_neff(to_bytes({"inputs": {"x:0": [[1, 3], "float32"]}}, {}, {},
        ...                                      compiler_version="0.1"))).splitlines()[0])
        NEFF format 1.2, written by compiler 0.1
    """
    lines = [f"NEFF format {neff.version[0]}.{neff.version[1]}, written by compiler {neff.compiler_version}",
             f"file: {neff.path or '<bytes>'} ({neff.nbytes:,} bytes)", "sections:"]
    lines += [f"  {s.name:<14} {s.size:>14,} bytes  at {s.offset:<12,} sha256 {s.sha256.hex()[:16]}"
              for s in neff.sections]
    total = sum(w.nbytes for w in neff.weights.values())
    lines.append(f"weights: {len(neff.weights)} arrays, {total / 2**20:.2f} MiB ({total:,} bytes)")
    lines.append("metadata:" if neff.metadata else "metadata: (empty)")
    for key, value in neff.metadata.items():
        _format_item(key, value, 1, lines)
    return "\n".join(lines)
