"""The public entry point `mx_neuron.compile`."""
from __future__ import annotations

from ._mxnet import import_mxnet
from .compile import compile_symbol
from .gluon import compile_block

mx = import_mxnet()


def compile(obj, args=None, aux=None, inputs=None, **compile_args):
    """Compile an MXNet Symbol or a hybridizable Gluon block for the (simulated) NeuronCore.

    Supported regions become `_neuron_subgraph_op` nodes holding their NEFF (as a uint8 param);
    everything else stays MXNet. Bind the result with `ctx=mx.neuron()` (or `mx.cpu()`).

    Args:
        obj: an `mx.sym.Symbol` or an `mx.gluon.HybridBlock` (initialized).
        args: Symbol only: the arg params (name -> NDArray).
        aux: Symbol only: the aux params (name -> NDArray).
        inputs: input name -> NDArray, numpy array or shape tuple (float32), e.g.
            `{"data": (1, 3, 224, 224)}`.
        **compile_args: `excl_node_names` (node names kept on MXNet), `flags` / `compiler_args`
            (neuron-cc options, e.g. `["--fast-math", "none"]`), `--neuroncore-pipeline-cores`
            (pass with `**{...}`), `minimum_segment_size`, `work_dir` (or `compiler_workdir`:
            each sub-graph's IR, NEFF and log, and the partition report, go there), the partitioner
            options `force_fuse_ops`, `subgraph_builder_function`, `fallback`, `cost_aware`;
            `model_name` names the model in `mx_neuron.estimate`.

    Returns:
        `(sym, args, aux)` for a Symbol; a `SymbolBlock` for a Gluon block. The log ends with the
        estimated latency and throughput on inf1.xlarge; `mx_neuron.estimate(sym, args)` gives
        every Inf1 size.

    Example:
        >>> import mx_neuron, mxnet as mx
        >>> sym, args, aux = mx.model.load_checkpoint("resnet-50", 0)
        >>> csym, cargs, caux = mx_neuron.compile(sym, args, aux, inputs={"data": (1, 3, 224, 224)})
        >>> exe = csym.bind(mx.neuron(), {"data": x, **cargs}, aux_states=caux)
        >>> exe.forward()[0]
    """
    if isinstance(obj, mx.gluon.HybridBlock):
        if args is not None or aux is not None:
            return compile_block(obj, inputs=inputs if inputs is not None else args,
                                 **compile_args)
        return compile_block(obj, inputs=inputs, **compile_args)
    return compile_symbol(obj, args, aux, inputs, **compile_args)
