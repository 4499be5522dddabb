"""Partitioner options (the Neuron plugins' names) and the cost constants of the keep/drop decision."""
from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Callable

from ..errors import NeuronError


@dataclass(frozen=True)
class TransferCosts:
    """Constants of the cost-aware filter, in one visible place. A cluster is kept when the host time
    it saves beats the cost of moving its boundary tensors and launching it."""

    host_flops_per_s: float = 50e9       # a 2-core x86 host running the framework (measured order)
    host_bytes_per_s: float = 10e9       # host memory streaming for elementwise ops (assumption)
    device_flops_per_s: float = 8e12     # half the 16 TFLOPS peak: typical PE utilisation (assumption)
    device_vector_flops_per_s: float = 256e9   # VectorEngine 256 ops/cycle at 1 GHz (AWS docs)
    device_bytes_per_s: float = 12.5e9   # one core's share of 50 GB/s chip DRAM (AWS docs / 4)
    pcie_bytes_per_s: float = 8e9        # host <-> device transfers (assumption: PCIe gen3 x8)
    transfer_latency_s: float = 20e-6    # per tensor crossing host <-> device (assumption)
    launch_s: float = 50e-6              # per subgraph execution (assumption)


@dataclass
class PartitionOptions:
    """What decides placement. Names follow torch-neuron / tensorflow-neuron."""

    minimum_segment_size: int = 2
    no_fuse_ops: tuple = ()          # op types or node names kept on the host
    force_fuse_ops: tuple = ()       # op types or node names kept on Neuron even if small/costly
    subgraph_builder_function: Callable | None = None   # node -> bool (False: host)
    single_fusion_ratio_threshold: float = 0.6
    fallback: bool = True            # False: fail listing every node that cannot run on Neuron
    cost_aware: bool = True          # drop clusters whose transfers cost more than they save
    #                                  (not with a subgraph_builder_function: it chose them)
    #: not a plugin keyword: the constants of the cost-aware filter
    costs: TransferCosts = field(default_factory=TransferCosts, metadata={"keyword": False})

    def __post_init__(self):
        if isinstance(self.no_fuse_ops, str):
            self.no_fuse_ops = (self.no_fuse_ops,)
        if isinstance(self.force_fuse_ops, str):
            self.force_fuse_ops = (self.force_fuse_ops,)
        self.no_fuse_ops = tuple(self.no_fuse_ops or ())
        self.force_fuse_ops = tuple(self.force_fuse_ops or ())
        if not isinstance(self.minimum_segment_size, int) or self.minimum_segment_size < 1:
            raise NeuronError(f"minimum_segment_size must be an integer >= 1, got "
                              f"{self.minimum_segment_size!r}")
        if not 0 < float(self.single_fusion_ratio_threshold) <= 1:
            raise NeuronError("single_fusion_ratio_threshold must be in (0, 1], got "
                              f"{self.single_fusion_ratio_threshold!r}")
        if self.subgraph_builder_function is not None and not callable(
                self.subgraph_builder_function):
            raise NeuronError("subgraph_builder_function must be a callable node -> bool, got "
                              f"{type(self.subgraph_builder_function).__name__}")


#: the PartitionOptions a plugin's compile call takes as keywords, in declaration order
OPTION_NAMES = tuple(f.name for f in fields(PartitionOptions) if f.metadata.get("keyword", True))
