"""The compiler: graph passes, casting policy, lowering to a NeuronCore program, memory plan."""
from .options import CompilerOptions, parse_compiler_args
from .pipeline import Compiled, compile_graph

__all__ = ["CompilerOptions", "Compiled", "compile_graph", "parse_compiler_args"]
