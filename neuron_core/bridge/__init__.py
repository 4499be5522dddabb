"""What the framework plugins share: a conversion table and converter (native graph -> core IR),
the compile plan (partition, compile each subgraph, keep native values' names), the NEFF runner
the plugins' custom ops call, and the analysis every plugin's `analyze_model` returns.

    table = ConversionTable.of(PLUGIN)   # PLUGIN: the plugin's record (bridge.plugin.Plugin)

    @table.register("aten.relu.default")
    def _relu(cv, node, x):
        return cv.op("Relu", [x])

    cv = Converter(table)
    ...                                   # add inputs, constants, convert each native node
    plan = compile_plan(cv, compiler_args=["--fast-math", "none"], minimum_segment_size=2)
    for call in plan.calls: ...           # each compiled subgraph: NEFF bytes, native keys in/out

No framework is imported here; the plugins bring theirs.
"""
from .analyze import analyze
from .convert import ConversionTable, Converter, Unsupported
from .plan import NeuronCall, Plan, compile_plan
from .plugin import Plugin
from ..estimate import estimate_neffs, summary_line
from ..neff import neff_key
from .runner import bound_core, neuron_seconds, neuron_time, on_core, run_neff, with_precision

__all__ = ["ConversionTable", "Converter", "Unsupported", "NeuronCall", "Plan", "compile_plan",
           "run_neff", "neff_key", "on_core", "bound_core", "neuron_time", "neuron_seconds",
           "with_precision", "estimate_neffs", "summary_line", "analyze", "Plugin"]
