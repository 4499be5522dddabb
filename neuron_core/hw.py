"""NeuronCore-v1 hardware constants, each with its source ("AWS docs") or "assumption"."""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class NeuronCoreConfig:
    """One NeuronCore-v1 and its chip. Every constant of the compiler and simulator lives here."""

    pe_rows: int = 128                 # PE array rows = contraction partitions (assumption)
    pe_cols: int = 64                  # PE array columns = output columns per pass (assumption)
    clock_hz: float = 1.0e9            # ~1 GHz, consistent with 16 TFLOPS peak (assumption)
    sbuf_bytes: int = 8 * 1024 ** 2    # state buffer, 128 partitions (assumption)
    psum_bytes: int = 256 * 1024       # fp32 partial-sum buffer (assumption)
    partitions: int = 128              # SBUF partitions (assumption)
    vector_flops_per_cycle: int = 256  # VectorEngine (AWS docs)
    scalar_flops_per_cycle: int = 512  # ScalarEngine (AWS docs)
    core_memory_bytes: int = 2 * 1024 ** 3   # device DRAM per core (AWS docs: 8 GiB per chip)
    dram_bytes_per_s: float = 50e9     # per chip, shared by its cores (AWS docs)
    cores_per_chip: int = 4            # AWS docs

    @property
    def peak_flops(self) -> float:
        """Dense matmul peak: 2 FLOPs per PE per cycle."""
        return 2 * self.pe_rows * self.pe_cols * self.clock_hz


INF1 = NeuronCoreConfig()
