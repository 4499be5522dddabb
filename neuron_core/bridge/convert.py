"""Native graph -> core IR through one conversion table per framework.

A rule receives the converter and the native op's arguments with every native tensor replaced by its
core `Value`, and returns the core Value (or a list, one per native output) it computes:

    @table.register("aten.hardtanh.default")
    def _hardtanh(cv, x, lo=-1.0, hi=1.0):
        return cv.op("Clip", [x, cv.const(lo, x), cv.const(hi, x)])

A native op with no rule, or whose rule raises `Unsupported(reason)`, becomes one opaque core node
(op type `"<prefix>::<native op>"`, which the registry does not know), so the partitioner leaves it to
the host framework and the report names it with the reason.
"""
from __future__ import annotations

import logging
from typing import Any, Callable, Iterable

import numpy as np

from .. import dtypes
from ..compiler.fold import add_folded
from ..errors import FrontendError, NeuronError
from ..ir import Graph, TensorType, Value, verify

log = logging.getLogger("Neuron")


class Unsupported(NeuronError):
    """Raised by a rule for a variant of its native op that has no Neuron lowering."""


class ConversionTable:
    """native op name -> rule. The plugin's supported-op list is derived from it.

    `framework` is the framework's one name (what its NEFFs record, the neuron-cc --framework
    value); `title` how messages name it (default: `framework`). A plugin builds its table from
    its record: `ConversionTable.of(PLUGIN)`."""

    def __init__(self, framework: str, prefix: str, title: str | None = None):
        self.framework = framework
        self.prefix = prefix
        self.title = title or framework
        self.rules: dict[str, Callable] = {}

    @classmethod
    def of(cls, plugin) -> "ConversionTable":
        """The (empty) table of a plugin's `Plugin` record."""
        return cls(plugin.framework, plugin.prefix, plugin.title)

    def register(self, *names: str):
        def deco(rule: Callable) -> Callable:
            for name in names:
                if name in self.rules:
                    raise NeuronError(f"{self.title} op {name!r} has two conversion rules")
                self.rules[name] = rule
            return rule
        return deco

    def supported(self) -> list[str]:
        """The native op names this table converts, sorted."""
        return sorted(self.rules)


class Converter:
    """Builds one core Graph from native nodes; remembers which native value each Value holds."""

    def __init__(self, table: ConversionTable, graph_name: str = "main"):
        self.table = table
        self.graph = Graph(graph_name)
        self.values: dict[Any, Value] = {}     # native key -> core Value
        self.origin: dict[int, Any] = {}       # id(core Value) -> first native key bound to it
        self.native_names: dict[int, tuple[str, str]] = {}   # id(core node) -> (name, op)
        self.output_keys: list = []
        #: id(Value) -> dtype of native values no NeuronCore dtype holds (complex64, ...)
        self.foreign: dict[int, str] = {}
        self.node: Any = None                  # the native node being converted
        self._name = ""
        self._scope = ""
        self._op = ""

    # -- graph boundary ---------------------------------------------------------------------------
    def add_input(self, key, name: str, shape: Iterable, dtype) -> Value:
        v = self.graph.add_input(self.graph.unique_name(name), TensorType(tuple(shape), _dt(dtype)))
        self.bind(key, v)
        return v

    def add_const(self, key, array, name: str) -> Value:
        v = self.graph.add_const(name, np.asarray(array))
        self.bind(key, v)
        return v

    def bind(self, key, value: Value | None) -> None:
        if value is None:
            return
        self.values[key] = value
        self.origin.setdefault(id(value), key)

    def has(self, key) -> bool:
        return key in self.values

    def value(self, key) -> Value:
        try:
            return self.values[key]
        except KeyError:
            raise FrontendError(f"{self.table.title} value {key!r} is read before it is "
                                "produced; is the graph in topological order?") from None

    def set_outputs(self, keys: list) -> None:
        self.output_keys = list(keys)
        self.graph.outputs = [self.value(k) for k in keys]

    # -- helpers for rules ------------------------------------------------------------------------
    def op(self, op_type: str, inputs: list, attrs: dict | None = None, *, outputs: int = 1):
        """Add a core node for the native node being converted; infer its type and fold it."""
        node, outs = add_folded(self.graph, op_type, inputs, attrs, name=self._name,
                                outputs=outputs, scope=self._scope, native=self.node)
        self.native_names[id(node)] = (self._name, self._op)
        return outs[0] if outputs == 1 else outs

    def const(self, value, like: Value | None = None, dtype=None) -> Value:
        """A constant; its dtype follows `dtype`, else `like`'s dtype, else the array's own."""
        dt = dtype or (like.type.dtype if like is not None and like.type is not None else None)
        arr = np.asarray(value, dtype=_np(dt) if dt else None)
        return self.graph.add_const(f"{self._name or 'c'}_c", arr)

    # -- converting -------------------------------------------------------------------------------
    def convert(self, node, op: str, args: tuple, kwargs: dict, output_keys: list,
                output_types: list, *, name: str, scope: str = "") -> None:
        """Run `op`'s rule on (args, kwargs); bind its results to `output_keys`. `output_types`
        ((shape, dtype) or None per output) type the opaque node when there is no rule."""
        self.node, self._name, self._scope, self._op = node, name, scope, op
        rule = self.table.rules.get(op)
        mark = len(self.graph.nodes)
        reason = None
        foreign = [self.foreign[id(a)] for a in _flatten((args, kwargs))
                   if isinstance(a, Value) and id(a) in self.foreign]
        if foreign:
            reason = (f"reads a {foreign[0]} value, a type NeuronCores do not compute; it runs "
                      f"in {self.table.title}")
        elif rule is None:
            reason = f"{self.table.title} op {op!r} has no Neuron conversion"
        else:
            try:
                result = rule(self, *args, **kwargs)
            except Unsupported as exc:
                reason = str(exc)
            except Exception as exc:  # noqa: BLE001 - the op falls back; the report says why
                reason = f"conversion failed: {type(exc).__name__}: {exc}"
                log.warning("%s op %s (%s) stays on the host: %s", self.table.title, name, op,
                            exc)
        if reason is not None:
            for extra in self.graph.nodes[mark:][::-1]:
                self.graph.remove_node(extra)
            self._opaque(op, args, kwargs, output_keys, output_types, reason)
            return
        results = list(result) if isinstance(result, (list, tuple)) else [result]
        if len(results) < len(output_keys):
            results += [None] * (len(output_keys) - len(results))
        for key, v in zip(output_keys, results):
            self.bind(key, v)

    def _opaque(self, op, args, kwargs, output_keys, output_types, reason) -> None:
        ins = [a for a in _flatten((args, kwargs)) if isinstance(a, Value)]
        ins = [v for i, v in enumerate(ins) if v not in ins[:i]]
        node = self.graph.add_node(f"{self.table.prefix}::{op}", ins, {"reason": reason},
                                   name=self._name, outputs=max(len(output_keys), 1),
                                   scope=self._scope, native=self.node)
        self.native_names[id(node)] = (self._name, op)
        for key, out, t in zip(output_keys, node.outputs, output_types):
            if t is not None:
                if dtypes.is_known(_dt(t[1])):
                    out.type = TensorType(tuple(t[0]), _dt(t[1]))
                else:
                    self.foreign[id(out)] = _dt(t[1])
            self.bind(key, out)

    def finish(self) -> Graph:
        """Prune what no output needs and verify; the graph is ready to partition."""
        self.graph.prune()
        verify(self.graph)
        return self.graph


def _flatten(obj):
    if isinstance(obj, (list, tuple)):
        for o in obj:
            yield from _flatten(o)
    elif isinstance(obj, dict):
        for o in obj.values():
            yield from _flatten(o)
    else:
        yield obj


def _dt(dtype) -> str:
    return np.dtype(dtype).name if not isinstance(dtype, str) else dtype


def _np(dtype) -> np.dtype:
    from .. import dtypes
    return dtypes.to_numpy(dtype)

