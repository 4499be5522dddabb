"""torch_neuron.trace: capture, convert, partition, compile, and return a TorchScript module whose
compiled subgraphs run on the simulated NeuronCore and whose other operations run in PyTorch."""
from __future__ import annotations

import logging
import threading

import torch
import torch.utils._pytree as pytree

from neuron_core.bridge import compile_plan, neuron_time, with_precision
from neuron_core.errors import CompilerError, NeuronError
from neuron_core.estimate import Compiled, estimate_compiled, measure_host_ms
from neuron_core.partition import OPTION_NAMES
from neuron_core.estimate import summary as _summary

from .capture import capture
from .graph import rebuild, to_core

log = logging.getLogger("Neuron")


class _Wrapper(torch.nn.Module):
    """Takes the user's argument structure, flattens it, and returns the model's output structure.

    Its buffers travel with the saved model: `neuron_shape` (the first input's traced shape) and
    `neuron_dynamic` (whether its dimension 0 may vary) for `torch.neuron.DataParallel`, and
    `neuron_host_ms` (the host work per call, measured at trace time) for `torch.neuron.estimate`."""

    def __init__(self, gm: torch.fx.GraphModule, out_spec, shape: list, dynamic: bool):
        super().__init__()
        self.graph_module = gm
        self._out_spec = out_spec
        self.register_buffer("neuron_shape", torch.tensor(shape, dtype=torch.int64))
        self.register_buffer("neuron_dynamic", torch.tensor(dynamic))
        self.register_buffer("neuron_host_ms", torch.zeros((), dtype=torch.float64))

    def forward(self, *args):
        flat, _ = pytree.tree_flatten(args)
        outs = self.graph_module(*flat)
        return pytree.tree_unflatten(list(outs), self._out_spec)


def _options(minimum_segment_size, single_fusion_ratio_threshold, fallback,
             subgraph_builder_function, trace_kwargs) -> dict:
    options = {"minimum_segment_size": minimum_segment_size,
               "single_fusion_ratio_threshold": single_fusion_ratio_threshold,
               "fallback": fallback, "subgraph_builder_function": subgraph_builder_function}
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
          optimizations=None, separate_weights=False, **trace_kwargs) -> torch.jit.ScriptModule:
    """Compile `model` for the (simulated) NeuronCore; unsupported operations stay in PyTorch.

    Args:
        model: a torch.nn.Module (put in eval mode while tracing) or a function of tensors.
        example_inputs: a tensor, or a tuple/list of tensors (nested lists/dicts allowed).
        compiler_args: neuron-cc options, e.g. ["--fast-math", "fp32-cast-matmult"].
        compiler_timeout: seconds the compilation may take.
        compiler_workdir: directory that receives each subgraph's IR, NEFF and log, and the
            partition report (report.json, partition.dot).
        subgraph_builder_function: called with each torch.fx node; False keeps it in PyTorch.
        minimum_segment_size: smallest subgraph (in operations) worth compiling.
        single_fusion_ratio_threshold: keep only the largest subgraph when it holds more than
            this fraction of the operations.
        fallback: False raises, listing every operation that cannot run on Neuron.
        dynamic_batch_size: let dimension 0 of the inputs vary at run time.
        optimizations: reserved; must be None or empty.
        separate_weights: accepted for compatibility; weights always travel inside the NEFF.
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
    if optimizations:
        raise NeuronError(f"optimizations={optimizations!r} is not supported; pass None (the "
                          "compiler applies its optimisations itself; --fast-math chooses casts)")
    del separate_weights
    options = _options(minimum_segment_size, single_fusion_ratio_threshold, fallback,
                       subgraph_builder_function, trace_kwargs)
    cap = capture(model, example_inputs, dynamic_batch=bool(dynamic_batch_size))
    cv = to_core(cap)
    plan = _compile(cv, compiler_timeout, compiler_args=compiler_args, workdir=compiler_workdir,
                    **options)
    gm = rebuild(cap, cv, plan, bool(dynamic_batch_size))
    args = example_inputs if isinstance(example_inputs, tuple) else (
        tuple(example_inputs) if isinstance(example_inputs, list) else (example_inputs,))
    # named after the user's model, so that a loaded model still says what it is
    named = type(getattr(model, "__name__", None) or type(model).__name__, (_Wrapper,), {})
    wrapper = named(gm, cap.out_spec, _first_shape(cap.example_flat),
                    bool(dynamic_batch_size)).eval()
    spec = str(cap.out_spec)
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
