"""torch_neuron.trace: capture, convert, partition, compile, and return a TorchScript module whose
compiled subgraphs run on the simulated NeuronCore and whose other operations run in PyTorch."""
from __future__ import annotations

import enum
import inspect
import logging
import threading
from collections import Counter, defaultdict
from contextlib import contextmanager

import torch
import torch.utils._pytree as pytree

from neuron_core.bridge import compile_plan, neuron_time, with_precision
from neuron_core.compiler.options import env_flags
from neuron_core.errors import CompilerError, NeuronError
from neuron_core.estimate import Compiled, estimate_compiled, measure_host_ms
from neuron_core.partition import OPTION_NAMES
from neuron_core.estimate import summary as _summary

from .capture import FunctionModule, capture, module_stack
from .graph import rebuild, to_core

log = logging.getLogger("Neuron")


class _Wrapper(torch.nn.Module):
    """Takes the user's argument structure, flattens it, and returns the model's output structure.

    Its buffers travel with the saved model: `neuron_shape` (the first input's traced shape) and
    `neuron_dynamic` (whether its dimension 0 may vary) for `torch.neuron.DataParallel`, and
    `neuron_host_ms` (the host work per call, measured at trace time) for `torch.neuron.estimate`."""

    def __init__(self, gm: torch.fx.GraphModule, out_spec, shape: list, dynamic: bool,
                 half_inputs: bool = False):
        super().__init__()
        self.graph_module = gm
        self._out_spec = scriptable_spec(out_spec)
        self._half_inputs = half_inputs
        self.register_buffer("neuron_shape", torch.tensor(shape, dtype=torch.int64))
        self.register_buffer("neuron_dynamic", torch.tensor(dynamic))
        self.register_buffer("neuron_host_ms", torch.zeros((), dtype=torch.float64))

    def forward(self, *args):
        flat, _ = pytree.tree_flatten(args)
        if self._half_inputs:      # Optimization.FLOAT32_TO_FLOAT16: the cast runs on the CPU
            flat = [x.to(torch.float16) if x.dtype == torch.float32 else x for x in flat]
        outs = self.graph_module(*flat)
        return pytree.tree_unflatten(list(outs), self._out_spec)


class Optimization(enum.Enum):
    """Passes `trace(..., optimizations=[...])` applies to the model.

    FLOAT32_TO_FLOAT16: the compiled graph takes and returns float16 where the model took and
    returned float32, halving what crosses PCIe; float32 inputs are cast to float16 on the CPU
    first, so the traced model accepts both. Inside, the model computes as before.
    """

    FLOAT32_TO_FLOAT16 = "float32-to-float16"


class _Float16IO(torch.nn.Module):
    """The user's model behind float16 inputs and outputs (Optimization.FLOAT32_TO_FLOAT16)."""

    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, *args):
        args = pytree.tree_map(lambda x: x.float() if isinstance(x, torch.Tensor) and
                               x.dtype == torch.float16 else x, args)
        return pytree.tree_map(lambda y: y.half() if isinstance(y, torch.Tensor) and
                               y.dtype == torch.float32 else y, self.model(*args))


def _optimizations(optimizations) -> set:
    if optimizations is None:
        return set()
    listed = list(optimizations) if isinstance(optimizations, (list, tuple, set)) else \
        [optimizations]
    bad = [o for o in listed if not isinstance(o, Optimization)]
    if bad:
        raise NeuronError(f"optimizations holds {bad!r}; give torch_neuron.Optimization members: "
                          f"{', '.join('Optimization.' + o.name for o in Optimization)}")
    return set(listed)


def scriptable_spec(spec):
    """The output structure a TorchScript module can return for `spec`: tuples, lists and dicts
    stay; a mapping such as a Hugging Face ModelOutput becomes a dict of its fields (what
    torch.jit.trace(strict=False) gives for one), and any other registered container (a
    DynamicCache) the tuple of its children."""
    if spec.is_leaf():
        return spec
    children = [scriptable_spec(c) for c in spec.children()]
    if isinstance(spec.type, type) and issubclass(spec.type, dict):
        keys = spec.context[1] if spec.type is defaultdict else spec.context
        return pytree.TreeSpec(dict, list(keys), children)
    if spec.type is list:
        return pytree.TreeSpec(list, None, children)
    return pytree.treespec_tuple(children)


#: the torch.jit.trace keywords trace() passes on
_JIT_TRACE_KEYS = frozenset(inspect.signature(torch.jit.trace).parameters) - {"func",
                                                                             "example_inputs"}
#: trace(verbose=N) -> the Neuron logger's level while compiling
_VERBOSE = {0: logging.WARNING, 1: logging.INFO}


def _verbose_level(verbose) -> int | None:
    if verbose is None:
        return None
    if isinstance(verbose, bool) or not isinstance(verbose, (int, str)):
        raise NeuronError(f"verbose must be an int (0 warnings, 1 info, 2 debug) or a level name "
                          f"such as 'INFO', got {verbose!r}")
    if isinstance(verbose, int):
        return _VERBOSE.get(verbose, logging.DEBUG if verbose > 1 else logging.WARNING)
    level = logging.getLevelName(verbose.upper())
    if not isinstance(level, int):
        raise NeuronError(f"verbose={verbose!r} is not a level; use DEBUG, INFO, WARNING or ERROR")
    return level


@contextmanager
def _log_level(level: int | None):
    if level is None:
        yield
        return
    before = log.level
    log.setLevel(level)
    try:
        yield
    finally:
        log.setLevel(before)


class NodeView:
    """A torch.fx node as `subgraph_builder_function` sees it: `name` is its module scope and
    op, e.g. 'layer/ExampleConvolutionLayer/conv/Conv2d/aten::convolution' (torch-neuron's node
    names name the modules a node sits in), `op` the ATen op; everything else is the fx node's."""

    def __init__(self, node):
        object.__setattr__(self, "node", node)
        object.__setattr__(self, "op", aten_name(node.target))
        object.__setattr__(self, "name", "/".join([*_scopes(node), self.op]))

    def __getattr__(self, attr):
        return getattr(object.__getattribute__(self, "node"), attr)

    def __repr__(self) -> str:
        return f"NodeView({self.name!r})"


def _scopes(node) -> list:
    """'path/Class' for each module the node sits in, outermost first."""
    return ["/".join(p for p in (path.rsplit(".", 1)[-1] if path else "", kind) if p)
            for path, kind in module_stack(node)]


def aten_name(op) -> str:
    """'aten::convolution' for torch.ops.aten.convolution.default or its name
    'aten.convolution.default' (torch-neuron's spelling); other callables by their name."""
    text = op if isinstance(op, str) else str(op)
    if text.startswith("aten."):
        return "aten::" + text.split(".")[1]
    return text if isinstance(op, str) else getattr(op, "__name__", text)


def _builder(fn):
    """Wrap a user's subgraph_builder_function so that it sees NodeViews."""
    if fn is None or not callable(fn):
        return fn
    return lambda node: fn(NodeView(node)) if isinstance(node, torch.fx.Node) else fn(node)


def _options(minimum_segment_size, single_fusion_ratio_threshold, fallback,
             subgraph_builder_function, trace_kwargs) -> dict:
    options = {"minimum_segment_size": minimum_segment_size,
               "single_fusion_ratio_threshold": single_fusion_ratio_threshold,
               "fallback": fallback, "subgraph_builder_function": _builder(subgraph_builder_function)}
    for key in OPTION_NAMES:   # the partitioner's keywords trace() does not name itself
        if key not in options and key in trace_kwargs:
            options[key] = trace_kwargs.pop(key)
    return options


def _compile(cv, timeout, **kwargs):
    if timeout is None:
        return compile_plan(cv, **kwargs)
    if not isinstance(timeout, (int, float)) or timeout <= 0:
        raise NeuronError(f"compiler_timeout must be a positive number of seconds, got {timeout!r}")
    box: dict = {}

    def work():
        try:
            box["plan"] = compile_plan(cv, **kwargs)
        except BaseException as exc:  # re-raised in the caller's thread
            box["error"] = exc
    worker = threading.Thread(target=work, name="neuron-cc", daemon=True)
    worker.start()
    worker.join(timeout)
    if worker.is_alive():
        raise CompilerError(f"compilation did not finish within compiler_timeout={timeout} s; "
                            "raise the timeout, or lower the work with a smaller model or "
                            "subgraph_builder_function")
    if "error" in box:
        raise box["error"]
    return box["plan"]


def trace(model, example_inputs, compiler_args=None, compiler_timeout=None, compiler_workdir=None,
          subgraph_builder_function=None, minimum_segment_size=2,
          single_fusion_ratio_threshold=0.6, fallback=True, dynamic_batch_size=False,
          optimizations=None, separate_weights=False, verbose=None,
          **trace_kwargs) -> torch.jit.ScriptModule:
    """Compile `model` for the (simulated) NeuronCore; unsupported operations stay in PyTorch.

    Args:
        model: a torch.nn.Module (put in eval mode while tracing) or a function of tensors.
        example_inputs: a tensor, or a tuple/list of tensors (nested lists/dicts allowed).
        compiler_args: neuron-cc options, e.g. ["--fast-math", "fp32-cast-matmult"].
        compiler_timeout: seconds the compilation may take.
        compiler_workdir: directory that receives each subgraph's IR, NEFF and log, and the
            partition report (report.json, partition.dot).
        subgraph_builder_function: called with each operation (a NodeView: `.name` holds its
            module scope, e.g. '.../ExampleConvolutionLayer/conv/Conv2d/aten::convolution');
            False keeps it in PyTorch.
        minimum_segment_size: smallest subgraph (in operations) worth compiling.
        single_fusion_ratio_threshold: keep only the largest subgraph when it holds more than
            this fraction of the operations.
        fallback: False raises FallbackDisabledError (an AttributeError, as the Neuron docs
            say), listing every operation that cannot run on Neuron.
        dynamic_batch_size: let dimension 0 of the inputs vary at run time (also turned on by
            NEURON_CC_FLAGS='--dynamic-batch-size').
        optimizations: a list of Optimization members (FLOAT32_TO_FLOAT16).
        separate_weights: accepted for compatibility; weights always travel inside the NEFF.
        verbose: the Neuron logger's level while compiling: 0 warnings, 1 info, 2 debug, or a
            level name. NEURON_CC_FLAGS adds compiler arguments (after compiler_args) and
            --workdir DIR (when compiler_workdir is not given).
        **trace_kwargs: torch.jit.trace options (e.g. strict=False), plus no_fuse_ops,
            force_fuse_ops and cost_aware for the partitioner.

    Returns:
        A torch.jit.ScriptModule; save it with torch.jit.save and load it with torch.jit.load
        after `import torch_neuron`.

    Example:
        >>> import torch, torch_neuron
        >>> model = torch.nn.Sequential(torch.nn.Linear(4, 4), torch.nn.ReLU())
        >>> traced = torch.neuron.trace(model, torch.zeros(1, 4))   # doctest: +SKIP
        >>> traced(torch.ones(1, 4)).shape                           # doctest: +SKIP
        torch.Size([1, 4])
    """
    passes = _optimizations(optimizations)
    level = _verbose_level(verbose)
    del separate_weights
    options = _options(minimum_segment_size, single_fusion_ratio_threshold, fallback,
                       subgraph_builder_function, trace_kwargs)
    unknown = sorted(set(trace_kwargs) - _JIT_TRACE_KEYS)
    if unknown:
        raise NeuronError(f"torch.neuron.trace got unknown keyword(s) {', '.join(unknown)}; it "
                          f"takes its own, the partitioner's ({', '.join(OPTION_NAMES)}) and "
                          f"torch.jit.trace's ({', '.join(sorted(_JIT_TRACE_KEYS))})")
    env = env_flags()
    dynamic = bool(dynamic_batch_size) or env.dynamic_batch_size
    args = example_inputs if isinstance(example_inputs, tuple) else (
        tuple(example_inputs) if isinstance(example_inputs, list) else (example_inputs,))
    half = Optimization.FLOAT32_TO_FLOAT16 in passes
    captured_model, captured_inputs = model, example_inputs
    if half:
        inner = model if isinstance(model, torch.nn.Module) else FunctionModule(model)
        captured_model = _Float16IO(inner).train(inner.training)   # capture restores it
        captured_inputs = pytree.tree_map(lambda x: x.half() if isinstance(x, torch.Tensor) and
                                          x.dtype == torch.float32 else x, args)
    with _log_level(level):
        cap = capture(captured_model, captured_inputs, dynamic_batch=dynamic)
        cv = to_core(cap)
        plan = _compile(cv, compiler_timeout, compiler_args=compiler_args,
                        workdir=compiler_workdir, env=env, **options)
        log_operator_counts(plan)
    gm = rebuild(cap, cv, plan, dynamic)
    # named after the user's model, so that a loaded model still says what it is
    named = type(getattr(model, "__name__", None) or type(model).__name__, (_Wrapper,), {})
    wrapper = named(gm, cap.out_spec, _first_shape(cap.example_flat), dynamic, half).eval()
    spec = str(wrapper._out_spec)
    if "strict" not in trace_kwargs and ("dict" in spec or "list" in spec):
        trace_kwargs["strict"] = False       # dict/list outputs need it; say so once
        log.info("model returns a dict or list: tracing with strict=False")
    with torch.no_grad():
        traced = torch.jit.trace(wrapper, args, check_trace=False, **trace_kwargs)
    if cap.widened:
        _check_batch_one(model, traced, args)
    _measure_host(traced, args)
    _attach(traced, plan)
    log.info(summary(traced))
    return traced


def log_operator_counts(plan) -> None:
    """torch-neuron's compile summary on the Neuron logger, counting native (ATen) ops."""
    compiled = Counter({aten_name(op): n for op, n in plan.native_compiled.items()})
    host = Counter({aten_name(op): n for op, n in plan.native_host.items()})
    total, placed = sum(compiled.values()) + sum(host.values()), sum(compiled.values())
    percent = 100.0 * placed / total if total else 0.0
    if host:
        log.info("There are %d ops of %d different types in the TorchScript that are not "
                 "compiled by neuron-cc: %s, (neuron-cc list-operators --framework PYTORCH lists "
                 "what compiles)", sum(host.values()), len(host), ", ".join(sorted(host)))
    log.info("Number of arithmetic operators (pre-compilation) before = %d, fused = %d, percent "
             "fused = %.2f%%", total, placed, percent)
    subgraphs = len(plan.calls)
    log.info("Neuron successfully compiled %d sub-graphs, Total fused subgraphs = %d, Percent of "
             "model sub-graphs successfully compiled = %.1f%%", subgraphs, subgraphs,
             100.0 if subgraphs else 0.0)
    log.info("Compiled these operators (and operator counts) to Neuron:")
    for op, n in sorted(compiled.items()):
        log.info(" => %s: %d", op, n)
    if host:
        log.info("Not compiled operators (and operator counts) to Neuron:")
        for op, n in sorted(host.items()):
            log.info(" => %s: %d", op, n)
    log.info("Number of arithmetic operators (post-compilation) before = %d, compiled = %d, "
             "percent compiled = %.2f%%", total, placed, percent)


def _check_batch_one(model, traced, args) -> None:
    """A model captured at batch 2 because it branches on batch 1 must still give the eager
    answer at batch 1 (exact fp32 simulation, so only summation order may differ)."""
    with torch.no_grad(), with_precision("fp32"):
        got = pytree.tree_leaves(traced(*args))
        want = pytree.tree_leaves(model(*args))
    for g, w in zip(got, want):
        if not (isinstance(g, torch.Tensor) and isinstance(w, torch.Tensor)):
            continue
        if g.shape != w.shape:
            differs = True
        elif w.numel() == 0:
            differs = False
        else:
            scale = float(w.double().abs().max()) if w.is_floating_point() else 1.0
            differs = float((g.double() - w.double()).abs().max()) > 1e-3 * max(scale, 1e-6)
        if differs:
            raise NeuronError(
                f"{type(model).__name__} computes something else at batch 1 than at other batch "
                "sizes, so dynamic_batch_size=True cannot serve both from one capture; trace "
                "with the batch size you will run, or without dynamic_batch_size")


def _measure_host(traced, args) -> None:
    """Time runs of the example: everything outside NeuronCore calls is host work. TorchScript's
    first-call optimisation is switched off so that it is not counted."""
    with torch.no_grad(), torch.jit.optimized_execution(False), neuron_time() as inside:
        host_ms = measure_host_ms(lambda: traced(*args), lambda: inside["seconds"])
    traced.neuron_host_ms.fill_(host_ms)


def _compiled(model) -> Compiled:
    """Where a traced (or loaded) model keeps its NEFFs (buffers named `neff`) and host time."""
    host = getattr(model, "neuron_host_ms", None)
    if host is None or not isinstance(host, torch.Tensor):
        raise NeuronError(f"estimate takes a model returned by torch.neuron.trace (or loaded from "
                          f"one), got {type(model).__name__}")
    neffs = [bytes(b.numpy()) for name, b in model.named_buffers()
             if name == "neff" or name.endswith(".neff")]
    return Compiled(neffs, float(host), getattr(model, "original_name", "model"))


def estimate(model, instance: str | None = None, cores: int | None = None,
             batch_size: int | None = None, host_ms: float | None = None):
    """Latency P50 and throughput of a traced (or loaded) model on Inf1 sizes, from the timing
    model: its Neuron subgraphs plus the host work measured when it was traced (or `host_ms`).

    Example:
        >>> print(torch.neuron.estimate(traced).format())                  # doctest: +SKIP
        >>> est = torch.neuron.estimate(traced, "inf1.xlarge")             # doctest: +SKIP
        >>> est.instances["inf1.xlarge"].latency_ms_p50                   # doctest: +SKIP
    """
    return estimate_compiled(_compiled(model), instance, cores, batch_size, host_ms)


def summary(model) -> str:
    """One line for the end of a trace: the estimate on the smallest Inf1 size."""
    return _summary(_compiled(model), "torch.neuron.estimate(model)")


def _first_shape(args) -> list:
    """The shape of the first input tensor that has dimensions ([] when there is none)."""
    tensors = [t for t in pytree.tree_leaves(args) if isinstance(t, torch.Tensor) and t.dim()]
    return list(tensors[0].shape) if tensors else []


def _attach(traced, plan) -> None:
    """Keep the partition report on the module for this process (print(traced.neuron_report))."""
    try:
        object.__setattr__(traced, "neuron_report", plan.report)
    except (AttributeError, RuntimeError):
        log.debug("could not attach the report to the traced module")
