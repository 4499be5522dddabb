"""The core IR: Graph, Node, Value, TensorType, its text form and its verifier."""
from .graph import Graph, Node, TensorType, Value
from .printer import format_graph, format_node
from .verifier import verify

__all__ = ["Graph", "Node", "TensorType", "Value", "format_graph", "format_node", "verify"]
