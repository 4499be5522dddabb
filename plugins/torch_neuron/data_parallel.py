"""torch.neuron.DataParallel: one traced model replicated on several NeuronCores, each replica
running a slice of the batch in its own thread.

    model = torch.neuron.DataParallel(torch.neuron.trace(net, torch.zeros(1, 3, 224, 224)))
    out = model(torch.zeros(16, 3, 224, 224))     # 4 slices of 4 on cores 0-3 (4 visible cores)

With dynamic batching (the default when dim=0), any batch works: it is cut into one slice per
core, and each slice is run in pieces of the compiled batch (the last piece padded, its padding
dropped from the outputs), unless the model was traced with dynamic_batch_size=True, which takes
the slice whole. Without it (`disable_dynamic_batching()`), the batch divided by the number of
cores must equal the compiled batch.
"""
from __future__ import annotations

import concurrent.futures
import logging

import torch
import torch.utils._pytree as pytree

from neuron_core.bridge import on_core
from neuron_core.errors import BadInputError, NeuronError
from neuron_core.runtime.device import get_device_manager

log = logging.getLogger("Neuron")


class DataParallel(torch.nn.Module):
    """Replicate a model from torch.neuron.trace on NeuronCores `device_ids` (default: every core
    visible to this process, see NEURON_RT_VISIBLE_CORES) and split inputs along `dim`. As in
    torch-neuron, ids count the visible cores from 0 (`2` or `'nc:2'` is the third visible core);
    `self.device_ids` holds the machine's core numbers they stand for.

    Example:
        >>> traced = torch.neuron.trace(model, torch.zeros(1, 3, 224, 224))   # doctest: +SKIP
        >>> parallel = torch.neuron.DataParallel(traced, device_ids=[0, 1])   # doctest: +SKIP
        >>> parallel(torch.zeros(5, 3, 224, 224)).shape                       # doctest: +SKIP
        torch.Size([5, 1000])
    """

    def __init__(self, module, device_ids=None, dim: int = 0):
        super().__init__()
        shape = getattr(module, "neuron_shape", None)
        if not isinstance(module, torch.jit.ScriptModule) or not isinstance(shape, torch.Tensor):
            raise NeuronError(f"DataParallel takes a model returned by torch.neuron.trace (or "
                              f"loaded from one with torch.jit.load), got {type(module).__name__}; "
                              "trace the model first")
        if isinstance(dim, bool) or not isinstance(dim, int) or dim < 0:
            raise NeuronError(f"dim must be a non-negative int (the dimension to split), got "
                              f"{dim!r}")
        self.module = module
        self.dim = dim
        self.device_ids = _device_ids(device_ids)
        self.compiled_dynamic = bool(module.neuron_dynamic)
        shape = [int(v) for v in shape.tolist()]
        if dim >= len(shape):
            raise NeuronError(f"dim={dim} is not a dimension of the model's first input, which "
                              f"was traced with shape {tuple(shape)}; choose dim < {len(shape)}")
        #: the first input's size along `dim` as traced: what each core takes without dynamic
        #: batching, and the piece size with it
        self.compiled_batch = shape[dim]
        self.dynamic_batching = dim == 0 and self.compiled_batch > 0
        if not self.dynamic_batching:
            log.warning("DataParallel: dynamic batching is off (it needs dim=0 and a batched "
                        "first input); input.shape[%d] / %d NeuronCores must equal the traced "
                        "size %d", dim, len(self.device_ids), self.compiled_batch)
        self._pool = None

    def __getstate__(self):
        state = dict(self.__dict__)
        state["_pool"] = None     # threads do not copy; a copy starts its own on first call
        return state

    def _executor(self) -> concurrent.futures.ThreadPoolExecutor:
        if self._pool is None:
            self._pool = concurrent.futures.ThreadPoolExecutor(
                max_workers=len(self.device_ids), thread_name_prefix="neuron-dp")
        return self._pool

    def disable_dynamic_batching(self) -> None:
        """Require input.shape[dim] / len(device_ids) == the compiled batch from now on."""
        self.dynamic_batching = False

    def forward(self, *inputs):
        flat, spec = pytree.tree_flatten(inputs)
        size = self._batch_size(flat)
        cores = len(self.device_ids)
        if self.dynamic_batching:
            sizes = [size // cores + (i < size % cores) for i in range(cores)]
        else:
            if size % cores or size // cores != self.compiled_batch:
                raise BadInputError(
                    f"DataParallel without dynamic batching splits input.shape[{self.dim}]={size} "
                    f"evenly over {cores} NeuronCores, so it must be {cores} x the traced size "
                    f"{self.compiled_batch} = {cores * self.compiled_batch}; pass that, or "
                    "keep dynamic batching on (dim=0)")
            sizes = [self.compiled_batch] * cores
        jobs, start = [], 0
        for core, n in zip(self.device_ids, sizes):
            if n:
                piece = [self._narrow(x, start, n) for x in flat]
                jobs.append(self._executor().submit(self._replica, core, piece, spec))
                start += n
        results = [job.result() for job in jobs]
        leaves = [pytree.tree_flatten(r) for r in results]
        return pytree.tree_unflatten(self._join([f for f, _ in leaves]), leaves[0][1])

    # -- pieces ------------------------------------------------------------------------------------
    def _batch_size(self, flat: list) -> int:
        sizes = {i: x.shape[self.dim] for i, x in enumerate(flat)
                 if isinstance(x, torch.Tensor) and x.dim() > self.dim}
        if not sizes:
            raise BadInputError(f"DataParallel found no input tensor with a dimension {self.dim} "
                                "to split; pass batched tensors or choose another dim")
        if len(set(sizes.values())) > 1:
            raise BadInputError(f"DataParallel splits every input tensor along dim {self.dim}, "
                                f"but their sizes there differ: {sizes} (input index -> size)")
        size = next(iter(sizes.values()))
        if size == 0:
            raise BadInputError(f"DataParallel got an empty batch (size 0 on dim {self.dim}); "
                                "pass at least one sample")
        return size

    def _narrow(self, x, start: int, n: int):
        if isinstance(x, torch.Tensor) and x.dim() > self.dim:
            return x.narrow(self.dim, start, n)
        return x

    def _replica(self, core: int, flat: list, spec):
        with on_core(core), torch.no_grad():
            n = self._batch_size(flat)
            step = self.compiled_batch
            if not self.dynamic_batching:    # each core runs the traced size; outputs are
                return self.module(*pytree.tree_unflatten(flat, spec))   # joined on dim as is
            if self.compiled_dynamic or n == step:
                return self._checked(self.module(*pytree.tree_unflatten(flat, spec)), n)
            outs = []
            for start in range(0, n, step):
                take = min(step, n - start)
                piece = [self._pad(self._narrow(x, start, take), step) for x in flat]
                out = self._checked(self.module(*pytree.tree_unflatten(piece, spec)), step)
                outs.append(pytree.tree_map(lambda y: self._narrow(y, 0, take), out))
            leaves = [pytree.tree_flatten(o) for o in outs]
            return pytree.tree_unflatten(self._join([f for f, _ in leaves]), leaves[0][1])

    def _pad(self, x, size: int):
        if not isinstance(x, torch.Tensor) or x.dim() <= self.dim or x.shape[self.dim] == size:
            return x
        shape = list(x.shape)
        shape[self.dim] = size - x.shape[self.dim]
        return torch.cat([x, x.new_zeros(shape)], self.dim)

    def _checked(self, out, n: int):
        """`out`, if every output tensor carries the slice (n samples) on `dim`: the replicas'
        outputs are joined there, so a reduction over the batch would come back wrong."""
        for i, y in enumerate(pytree.tree_leaves(out)):
            if isinstance(y, torch.Tensor) and (y.dim() <= self.dim or y.shape[self.dim] != n):
                raise BadInputError(
                    f"DataParallel joins every output along dim {self.dim}, but output {i} has "
                    f"shape {tuple(y.shape)} for a slice of {n}: it does not carry the batch "
                    "there; return per-sample outputs (reduce after the call), or run the model "
                    "without DataParallel")
        return out

    def _join(self, parts: list) -> list:
        return [torch.cat(group, self.dim) if isinstance(group[0], torch.Tensor) and
                group[0].dim() > self.dim else group[0] for group in zip(*parts)]


def _device_ids(device_ids) -> list[int]:
    visible = list(get_device_manager().take())
    if device_ids is None:
        return visible
    listed = list(device_ids) if isinstance(device_ids, (list, tuple)) else [device_ids]
    ids = []
    for d in listed:
        if isinstance(d, str) and d.startswith("nc:"):
            d = d[3:]
        try:
            ids.append(int(d))
        except (TypeError, ValueError):
            raise NeuronError(f"device_ids holds {d!r}; give NeuronCore indices such as [0, 1] "
                              f"(visible to this process: {visible})") from None
    if any(not 0 <= i < len(visible) for i in ids) or not ids or len(set(ids)) != len(ids):
        raise NeuronError(f"device_ids={device_ids!r} must name distinct NeuronCores visible "
                          f"to this process, counted from 0: 0 to {len(visible) - 1} (they are "
                          f"NeuronCores {visible}; NEURON_RT_VISIBLE_CORES chooses them)")
    return [visible[i] for i in ids]
