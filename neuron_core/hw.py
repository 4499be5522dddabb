"""NeuronCore-v1 hardware constants, each with its source ("AWS docs"), "assumption" or "calibrated".

The timing model (`neuron_core.runtime.timing`) reads every constant it uses from here. The
"calibrated" ones were fitted once, together, against the published Inf1 benchmark rows (DESIGN.md
§4) by `bench/bench_calibration.py`; see the docstring of `neuron_core.runtime.timing` for the fit.
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class NeuronCoreConfig:
    """One NeuronCore-v1 and its chip. Every constant of the compiler and simulator lives here."""

    # -- compute and on-chip memory ------------------------------------------------------------------
    pe_rows: int = 128                 # PE array rows = contraction partitions (assumption)
    pe_cols: int = 64                  # PE array columns = output columns per pass (assumption)
    clock_hz: float = 1.0e9            # ~1 GHz, consistent with 16 TFLOPS peak (assumption)
    sbuf_bytes: int = 8 * 1024 ** 2    # state buffer, 128 partitions (assumption)
    psum_bytes: int = 256 * 1024       # fp32 partial-sum buffer (assumption)
    partitions: int = 128              # SBUF partitions (assumption)
    vector_flops_per_cycle: int = 256  # VectorEngine (AWS docs)
    scalar_flops_per_cycle: int = 512  # ScalarEngine (AWS docs)
    pe_fill_cycles: int = 64           # cycles to load a stationary tile into the array (assumption)
    # SBUF kept for tiles in flight: rows, and the weights a pipeline stage prefetches
    # (assumption)
    sbuf_stream_bytes: int = 2 * 1024 ** 2
    # -- memory system and links ------------------------------------------------------------------
    core_memory_bytes: int = 2 * 1024 ** 3   # device DRAM per core (AWS docs: 8 GiB per chip)
    dram_bytes_per_s: float = 50e9     # per chip, shared by its cores (AWS docs)
    cores_per_chip: int = 4            # AWS docs
    neuronlink_bytes_per_s: float = 32 * 1024 ** 3  # chip-to-chip link (AWS docs)
    pcie_bytes_per_s: float = 12e9     # host<->device per chip: PCIe Gen3 x16 at ~75% (assumption)
    pcie_latency_s: float = 10e-6      # per host<->device transfer (assumption)
    dma_latency_s: float = 2e-6        # until the first bytes of a DMA arrive (assumption)
    stage_sync_s: float = 10e-6        # pipeline hand-off between cores, besides the bytes (assumption)
    # -- calibrated (bench/bench_calibration.py) -----------------------------------------------------
    # Fitted together by the bench's grid search against DESIGN.md §4; with them 6 of the 7
    # published rows are within ±25% (worst: ResNet-50 FP16 b10 throughput 1.20); ResNet-50
    # PyTorch b5 cannot be met together with the FP16 b10 row (see `neuron_core.runtime.timing`).
    pe_efficiency: float = 0.47        # achieved / ideal PE-array cycles of the tile plan: set by
    #                                    BERT b3/b6, DistilBERT b8, ResNet-50 b10 (calibrated)
    instr_overhead_s: float = 0.5e-6   # issue + semaphore wait per engine instruction (calibrated)
    launch_overhead_s: float = 50e-6   # runtime launch of one execution (calibrated)
    dram_efficiency: float = 0.9       # achievable share of the chip's DRAM bandwidth: set by the
    #                                    rows with 4 cores per chip streaming at once (calibrated)
    core_dma_bytes_per_s: float = 21e9  # most DRAM bandwidth one core's DMA queues draw: set by
    #                                     BERT b1 on one core, bound by weight streaming (calibrated)

    @property
    def peak_flops(self) -> float:
        """Dense matmul peak: 2 FLOPs per PE per cycle."""
        return 2 * self.pe_rows * self.pe_cols * self.clock_hz

    def core_dram_bytes_per_s(self, active_cores: int = 1) -> float:
        """DRAM bandwidth one core gets while `active_cores` cores of its chip stream at once."""
        active = max(1, min(int(active_cores), self.cores_per_chip))
        return min(self.core_dma_bytes_per_s, self.dram_bytes_per_s * self.dram_efficiency / active)


INF1 = NeuronCoreConfig()

#: Inf1 instance sizes and their Inferentia chips (AWS docs); each chip has 4 NeuronCores
INF1_INSTANCES: dict[str, int] = {"inf1.xlarge": 1, "inf1.2xlarge": 1, "inf1.6xlarge": 4,
                                  "inf1.24xlarge": 16}
