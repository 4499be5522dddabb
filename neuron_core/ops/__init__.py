"""Every op, registered once: shape/dtype inference, support verdict, fp32 reference, lowering, cost.

Op modules in this package are found by name and imported on first use of the registry.
"""
from .registry import (CAST, DMA, ENGINES, PE_TRANSPOSE, SCALAR_ENGINE, TENSOR_ENGINE, VECTOR_ENGINE,
                       Cost, Op, Verdict, get_op, has_op, infer_node, instruction_op, op_names,
                       register_op, shape_params_at_run_time)

__all__ = ["CAST", "DMA", "ENGINES", "PE_TRANSPOSE", "SCALAR_ENGINE", "TENSOR_ENGINE", "VECTOR_ENGINE",
           "Cost", "Op", "Verdict", "get_op", "has_op", "infer_node", "instruction_op", "op_names",
           "register_op", "shape_params_at_run_time"]
