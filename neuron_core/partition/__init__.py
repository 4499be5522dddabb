"""The shared partitioner: what runs on the NeuronCore, what stays on the host, and why."""
from .options import OPTION_NAMES, PartitionOptions, TransferCosts
from .partitioner import Partition, Subgraph, boundary, partition
from .report import PartitionReport

__all__ = ["OPTION_NAMES", "Partition", "PartitionOptions", "PartitionReport", "Subgraph", "TransferCosts",
           "boundary", "partition"]
