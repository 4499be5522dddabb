"""The shared partitioner: what runs on the NeuronCore, what stays on the host, and why."""
from .options import PartitionOptions, TransferCosts
from .partitioner import Partition, Subgraph, boundary, partition
from .report import PartitionReport

__all__ = ["Partition", "PartitionOptions", "PartitionReport", "Subgraph", "TransferCosts",
           "boundary", "partition"]
