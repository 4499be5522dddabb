"""MXNet stores every operator attribute as a string ("(3, 3)", "True", "1e-05", "None"); `Attrs`
parses them on demand with the operator's defaults, and carries the shapes MXNet inferred for the
node, which several rules use instead of re-deriving MXNet's shape codes."""
from __future__ import annotations

import ast

from neuron_core.bridge import Unsupported


class Attrs:
    """One MXNet node's attributes plus its inferred output shapes and dtypes."""

    def __init__(self, op: str, name: str, raw: dict, out_shapes: list, out_dtypes: list):
        self.op = op
        self.name = name
        self.raw = dict(raw)
        self.out_shapes = [tuple(s) if s is not None else None for s in out_shapes]
        self.out_dtypes = list(out_dtypes)

    def __repr__(self) -> str:
        return f"Attrs({self.op} {self.name!r} {self.raw})"

    def has(self, key: str) -> bool:
        return key in self.raw and self.raw[key] not in ("None", "")

    def str(self, key: str, default: str | None = None) -> str | None:
        value = self.raw.get(key)
        return default if value in (None, "None") else value

    def bool(self, key: str, default: bool = False) -> bool:
        value = self.raw.get(key)
        if value in (None, "None"):
            return default
        return value.strip().lower() in ("true", "1")

    def int(self, key: str, default: int | None = None) -> int | None:
        value = self.raw.get(key)
        return default if value in (None, "None") else int(float(value))

    def float(self, key: str, default: float | None = None) -> float | None:
        value = self.raw.get(key)
        return default if value in (None, "None") else float(value)

    def ints(self, key: str, default: tuple | None = None) -> tuple | None:
        value = self.raw.get(key)
        if value in (None, "None", ""):
            return default
        parsed = ast.literal_eval(value.replace("L", ""))
        if isinstance(parsed, (int, float)):
            return (int(parsed),)
        return tuple(int(v) if v is not None else None for v in parsed)

    def shape(self, i: int = 0) -> tuple:
        """The output shape MXNet inferred for output `i` (for rules that must match it)."""
        shape = self.out_shapes[i] if i < len(self.out_shapes) else None
        if shape is None or any(d == 0 for d in shape):
            raise Unsupported(f"MXNet could not infer the shape of {self.op} {self.name!r} "
                              "output for the given inputs")
        return shape

    def require(self, key: str, allowed: tuple, default: str | None = None) -> str | None:
        """The attribute's value, or Unsupported naming the variants that are lowered."""
        value = self.str(key, default)
        if value not in allowed:
            raise Unsupported(f"{self.op} {key}={value!r} is not lowered to Neuron (supported: "
                              f"{', '.join(repr(a) for a in allowed)})")
        return value
