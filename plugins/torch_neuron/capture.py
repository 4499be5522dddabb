"""Graph capture: `torch.export` lowered to the core ATen op set.

Why this capture: core ATen is a closed, canonical set of ~180 ops (every `nn` layer, functional and
Tensor method decomposes into it), so one conversion table covers any model; each node keeps its
module scope (`nn_module_stack`) for the report, and parameters arrive as named, lifted inputs.
"""
from __future__ import annotations

import contextlib
import logging
import re
import warnings
from dataclasses import dataclass

import torch
import torch.fx.experimental._config as fx_config
import torch.utils._pytree as pytree
from torch.export import Dim, export

from neuron_core.errors import FrontendError

log = logging.getLogger("Neuron")


@dataclass
class Captured:
    """A model's decomposed graph plus what the wrapper needs to call it like the original."""

    program: "torch.export.ExportedProgram"
    params: dict            # placeholder name -> tensor (parameters, buffers, constants)
    user_inputs: list       # placeholder names of the flattened user inputs, in order
    in_spec: object         # pytree spec of (args, kwargs)
    out_spec: object        # pytree spec of the outputs
    example_flat: list      # flattened example input tensors
    widened: bool = False   # captured at batch 2 from a batch-1 example (see capture)

    @property
    def graph(self) -> "torch.fx.Graph":
        return self.program.graph_module.graph


def _as_args(example_inputs) -> tuple:
    if isinstance(example_inputs, torch.Tensor):
        return (example_inputs,)
    if isinstance(example_inputs, list):
        return tuple(example_inputs)
    if isinstance(example_inputs, tuple):
        return example_inputs
    if isinstance(example_inputs, dict):
        return (example_inputs,)
    raise FrontendError(f"example_inputs must be a tensor or a tuple/list of tensors, got "
                        f"{type(example_inputs).__name__}")


def capture(model: torch.nn.Module, example_inputs, *, dynamic_batch: bool = False) -> Captured:
    """Export `model` on `example_inputs` and decompose it to core ATen."""
    args = _as_args(example_inputs)
    flat, _ = pytree.tree_flatten(args)
    bad = [type(t).__name__ for t in flat if not isinstance(t, torch.Tensor)]
    if bad:
        raise FrontendError(f"example_inputs may hold only tensors (in tuples, lists or dicts); "
                            f"found {', '.join(sorted(set(bad)))}")
    if not isinstance(model, torch.nn.Module):
        if not callable(model):
            raise FrontendError(f"trace expects a torch.nn.Module or a function, got "
                                f"{type(model).__name__}")
        model = FunctionModule(model)
    was_training = model.training
    model.eval()
    widened = False
    try:
        try:
            program = _export(model, args, dynamic_batch, min_batch=1)
        except Exception as exc:  # export raises many kinds; say which model and what it said
            one = all(t.dim() == 0 or t.shape[0] == 1 for t in flat)
            if not (dynamic_batch and one and "Constraints violated" in str(exc)):
                raise _capture_error(model, exc, dynamic_batch) from exc
            # the model takes another branch at batch 1 (transformers' masks do): capture the
            # general one from the example repeated to batch 2, the compiled batch from now on
            log.info("%s specialises on a batch of 1; capturing it at batch 2 (the example "
                     "repeated) so that every batch size runs", type(model).__name__)
            args = pytree.tree_map(lambda t: torch.cat([t, t]) if t.dim() else t, args)
            flat, _ = pytree.tree_flatten(args)
            widened = True
            try:
                program = _export(model, args, dynamic_batch, min_batch=2)
            except Exception as again:
                raise _capture_error(model, again, dynamic_batch) from again
    finally:
        model.train(was_training)
    sig = program.graph_signature
    state = dict(program.state_dict)
    state.update(program.constants)
    params = {}
    for spec in sig.input_specs:
        if spec.kind.name != "USER_INPUT":
            params[spec.arg.name] = state[spec.target]
    user_inputs = [s.arg.name for s in sig.input_specs if s.kind.name == "USER_INPUT"]
    return Captured(program, params, user_inputs, program.call_spec.in_spec,
                    program.call_spec.out_spec, flat, widened)


def _export(model, args, dynamic_batch: bool, min_batch: int):
    dynamic_shapes = None
    sizes = contextlib.nullcontext()
    if dynamic_batch:
        batch = Dim("batch", min=min_batch)
        dynamic_shapes = pytree.tree_map(lambda t: {0: batch} if t.dim() > 0 else None, args)
        # users trace with a batch of 1; without this, export specialises a size-1 example
        sizes = fx_config.patch(backed_size_oblivious=True)
    with torch.no_grad(), sizes, warnings.catch_warnings():
        # torch's own pytree specs trip its own deprecation notice while exporting; not the user's
        warnings.filterwarnings("ignore", message=r".*isinstance\(treespec, LeafSpec\)",
                                category=FutureWarning)
        program = export(model, args, dynamic_shapes=dynamic_shapes, strict=False)
        _views_as_reshapes(program)
        return program.run_decompositions()


def _capture_error(model, exc: Exception, dynamic_batch: bool) -> FrontendError:
    hint = ("; with dynamic_batch_size=True every input needs the batch on dimension 0 and the "
            "model must not specialise on it" if dynamic_batch else "")
    first = str(exc).splitlines()[0] if str(exc) else ""
    foreign = re.search(r"Found <class '([\w.]+)'> in output", first)
    if foreign:
        cls = foreign.group(1)
        hint = ("; for a Hugging Face model, turn the cache off (use_cache=False in its config "
                "or call)" if "cache" in cls.lower() else "")
        return FrontendError(f"{type(model).__name__} returns a {cls}, which is not a tensor nor "
                             f"a tuple, list or dict of tensors; trace a function that returns "
                             f"tensors only, e.g. lambda ids: model(ids).logits{hint}")
    return FrontendError(f"torch.export could not capture {type(model).__name__}: "
                         f"{type(exc).__name__}: {first}{hint}")


def _views_as_reshapes(program) -> None:
    """Turn every `view` of the exported graph into `reshape`, in place, before decomposing.

    Why: export records a view of an op's output with the strides that op's kernel gives, and
    drops a `.contiguous()` that was a no-op for them; a decomposition may lay the same values out
    differently. torch's rule for `_scaled_dot_product_flash_attention_for_cpu` returns the
    (L, N, H, E) layout of nn.MultiheadAttention, while the kernel returns the layout of the query,
    (N, L, H, E) in Hugging Face models, so GPT-2's `attn_output.reshape(...).contiguous()`
    followed by Conv1D's `x.view(-1, d)` fails with "Cannot view a tensor with shape ... and
    strides ...". `reshape` is the same view whenever a view is possible and copies otherwise, so
    the values, and the aliasing of every view that was valid, stay as they were.
    """
    view = torch.ops.aten.view.default
    for node in program.graph_module.graph.nodes:
        if node.op == "call_function" and node.target is view:
            node.target = torch.ops.aten.reshape.default
    program.graph_module.recompile()


class FunctionModule(torch.nn.Module):
    """Lets trace() take a plain function, as torch.jit.trace does."""

    def __init__(self, fn):
        super().__init__()
        self.fn = fn

    def forward(self, *args):
        return self.fn(*args)


def module_stack(node) -> list:
    """(module path, class name) of each module a node sits in, outermost first, from
    torch.export's nn_module_stack."""
    out = []
    for entry in (node.meta.get("nn_module_stack") or {}).values():
        if not entry:
            continue
        path, kind = entry[0], entry[1] if len(entry) > 1 else ""
        out.append((path, getattr(kind, "__name__", None) or
                    str(kind).rsplit(".", 1)[-1].strip("'>")))
    return out


def scope_of(node) -> str:
    """The module path and class of a node, e.g. 'layer1.0.conv1 (Conv2d)', from nn_module_stack."""
    scopes = [s for s in module_stack(node) if s[0]]
    if not scopes:
        return ""
    path, kind = scopes[-1]
    return f"{path} ({kind})" if kind else path


def type_of(node):
    """((shape), dtype) of a node's tensor value, or a list of them for tuple outputs, or None."""
    val = node.meta.get("val")
    return _type(val)


def _type(val):
    if isinstance(val, torch.Tensor):
        return tuple(_dim(d) for d in val.shape), str(val.dtype).replace("torch.", "")
    if isinstance(val, (list, tuple)):
        return [_type(v) for v in val]
    return None


def _dim(d):
    if isinstance(d, int):
        return d
    hint = getattr(getattr(d, "node", None), "hint", None)
    if hint is None:
        raise FrontendError(f"a symbolic dimension {d} has no example value")
    return int(hint)
