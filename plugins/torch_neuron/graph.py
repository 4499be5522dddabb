"""Between torch.fx and the core IR: convert a captured graph through the table, and rebuild it with
each compiled subgraph as one `NeuronSubgraph` call while every other node stays PyTorch."""
from __future__ import annotations

import operator

import torch
import torch.fx as fx

from neuron_core.bridge import Converter
from neuron_core.compiler.fold import FOLD_LIMIT
from neuron_core.errors import FrontendError

from .capture import Captured, scope_of, type_of
from .convert import TABLE
from .op import NeuronSubgraph


def _sym_hint(node):
    """The example value of a fx node that computes a SymInt (dynamic batch), else None."""
    val = node.meta.get("val")
    if isinstance(val, torch.SymInt):
        return int(val.node.hint)
    if isinstance(val, (int, float, bool)):
        return val
    return None


def _keys(node) -> list:
    t = type_of(node)
    return [(node, i) for i in range(len(t))] if isinstance(t, list) else [node]


def _foldable(node, args, kwargs) -> bool:
    """All tensor inputs are constants and the op is deterministic: compute it with torch now."""
    target = node.target
    if not isinstance(target, torch._ops.OpOverload) or torch.Tag.nondeterministic_seeded in \
            target.tags:
        return False
    values = _values(args, kwargs)
    t = type_of(node)
    if not isinstance(t, tuple):
        return False
    numel = 1
    for d in t[0]:
        numel *= d
    unresolved = []
    fx.node.map_aggregate((args, kwargs), lambda a: unresolved.append(a)
                          if isinstance(a, _Unresolved) else None)
    return numel <= FOLD_LIMIT and not unresolved and all(v.is_const for v in values)


def _values(args, kwargs) -> list:
    from neuron_core.ir import Value
    out = []

    def walk(a):
        if isinstance(a, (list, tuple)):
            for x in a:
                walk(x)
        elif isinstance(a, dict):
            for x in a.values():
                walk(x)
        elif isinstance(a, Value):
            out.append(a)
    walk((args, kwargs))
    return out


def _to_torch(a):
    from neuron_core.ir import Value
    if isinstance(a, Value):
        return torch.from_numpy(a.const.copy())
    if isinstance(a, (list, tuple)):
        return type(a)(_to_torch(x) for x in a)
    return a


def to_core(cap: Captured) -> Converter:
    """Convert every node of the captured graph; parameters become constants."""
    cv = Converter(TABLE, "torch_model")
    for node in cap.graph.nodes:
        if node.op == "placeholder":
            if node.name in cap.params:
                t = cap.params[node.name].detach()
                cv.add_const(node, (t.float() if t.dtype == torch.bfloat16 else t).numpy().copy(),
                             node.name)
            else:
                shape, dtype = type_of(node)
                cv.add_input(node, node.name, shape, dtype)
        elif node.op == "call_function":
            _convert(cv, node)
        elif node.op == "output":
            outs = [a for a in node.args[0]]
            bad = [a for a in outs if not isinstance(a, fx.Node) or not cv.has(a)]
            if bad:
                raise FrontendError(f"model outputs must be tensors; output(s) {bad} are not")
            cv.set_outputs(outs)
    return cv


def _convert(cv: Converter, node) -> None:
    if node.target is operator.getitem:
        src, index = node.args
        if cv.has((src, index)):
            cv.bind(node, cv.value((src, index)))
        return
    if _sym_hint(node) is not None:
        return                                 # a size computed on the host (dynamic batch)

    def resolve(a):
        if isinstance(a, fx.Node):
            if cv.has(a):
                return cv.value(a)
            hint = _sym_hint(a)
            return hint if hint is not None else _Unresolved(a.name)
        return a
    args = fx.node.map_aggregate(node.args, resolve)
    kwargs = fx.node.map_aggregate(node.kwargs, resolve)
    keys = _keys(node)
    t = type_of(node)
    types = t if isinstance(t, list) else [t]
    if _foldable(node, args, kwargs):
        result = node.target(*_to_torch(args), **_to_torch(kwargs))
        arr = result.detach()
        cv.add_const(node, (arr.float() if arr.dtype == torch.bfloat16 else arr).numpy().copy(),
                     node.name)
        return
    cv.convert(node, str(node.target), args, kwargs, keys, types, name=node.name,
               scope=scope_of(node))


class _Unresolved:
    """An argument that is neither a tensor nor a known size: its node cannot be converted."""

    def __init__(self, name):
        self.name = name

    def __repr__(self):
        return f"<non-tensor value %{self.name}>"


#: factory keywords that only restate the CPU defaults and that torch.jit.trace cannot record
_HOST_ONLY_KWARGS = ("device", "pin_memory", "layout")


def _const_of(cv, key):
    """A non-parameter value known at compile time, as a tensor (a buffer of the rebuilt module)."""
    if not cv.has(key) or key.op == "placeholder":
        return None
    v = cv.value(key)
    return torch.from_numpy(v.const.copy()) if v.is_const and v.const.dtype.kind in "biuf" else None


def rebuild(cap: Captured, cv, plan, dynamic_batch: bool) -> fx.GraphModule:
    """A GraphModule over flat inputs: NeuronSubgraph calls plus the host nodes they need."""
    root = torch.nn.Module()
    graph = fx.Graph()
    produced: dict = {}
    old_graph = cap.graph
    placeholders = {n.name: n for n in old_graph.nodes if n.op == "placeholder"}
    for name in cap.user_inputs:
        produced[placeholders[name]] = graph.placeholder(name)
    params = {}

    by_value: dict = {}         # id(core Value) -> output of the NeuronSubgraph call computing it

    def materialize(key):
        if key in produced:
            return produced[key]
        if cv.has(key) and id(cv.value(key)) in by_value:
            return by_value[id(cv.value(key))]
        if isinstance(key, tuple):
            src, i = key
            new = graph.call_function(operator.getitem, (materialize(src), i))
        else:
            node = key
            const = _const_of(cv, key)
            if const is not None:
                attr = f"c_{len(params)}"
                params[attr] = const
                root.register_buffer(attr, const)
                new = graph.get_attr(attr)
            elif node.op == "placeholder":
                attr = f"p_{len(params)}"
                params[attr] = cap.params[node.name]
                root.register_buffer(attr, cap.params[node.name].detach().clone())
                new = graph.get_attr(attr)
            else:
                args = fx.node.map_arg(node.args, materialize)
                kwargs = {k: v for k, v in fx.node.map_arg(node.kwargs, materialize).items()
                          if k not in _HOST_ONLY_KWARGS}
                new = graph.call_function(node.target, args, kwargs)
                new.meta = dict(node.meta)
        produced[key] = new
        return new

    for call in plan.calls:
        name = f"neuron_subgraph_{call.index}"
        root.add_module(name, NeuronSubgraph(call.neff, call.index, dynamic_batch))
        ins = tuple(materialize(k) for k in call.input_keys)
        out = graph.call_module(name, ins)
        for j, key in enumerate(call.output_keys):
            produced[key] = graph.call_function(operator.getitem, (out, j))
            by_value[id(cv.value(key))] = produced[key]
    out_node = next(n for n in old_graph.nodes if n.op == "output")
    graph.output(tuple(materialize(a) for a in out_node.args[0]))
    graph.lint()
    return fx.GraphModule(root, graph)
