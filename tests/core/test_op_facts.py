"""Everything about an op lives on the op (neuron_core/ops/): the compiler, the runtime and the
partitioner read its declared facts and name no sets of op types themselves."""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

from neuron_core.ops import get_op, op_names
from neuron_core.ops.registry import ENGINES, PRECISION_CLASS

ROOT = Path(__file__).resolve().parents[2] / "neuron_core"
STAGES = ("compiler", "runtime", "partition")


def _literal_op_names(tree, names: set) -> list:
    """(line, op names) of every set, list, tuple or dict literal naming two or more op types."""
    found = []
    for node in ast.walk(tree):
        if isinstance(node, (ast.Set, ast.List, ast.Tuple)):
            items = node.elts
        elif isinstance(node, ast.Dict):
            items = [k for k in node.keys if k is not None]
        else:
            continue
        named = sorted({e.value for e in items if isinstance(e, ast.Constant)
                        and isinstance(e.value, str) and e.value in names})
        if len(named) >= 2:
            found.append((node.lineno, named))
    return found


def test_no_op_type_sets_outside_ops():
    names = set(op_names())
    offences = []
    for stage in STAGES:
        for path in sorted((ROOT / stage).rglob("*.py")):
            tree = ast.parse(path.read_text(), str(path))
            offences += [f"{path.relative_to(ROOT.parent)}:{line}: {named}"
                         for line, named in _literal_op_names(tree, names)]
    assert not offences, "op facts belong on the op (neuron_core/ops/):\n" + "\n".join(offences)


def test_the_scan_finds_what_it_looks_for():
    """The scan above is not vacuous: it flags a membership test against a tuple of op types and
    a dict keyed by them, and lets one op name and non-op strings through."""
    names = set(op_names())
    code = ('if instr.op in ("Conv", "MaxPool"): pass\n'
            'CODES = {"Add": 0, "Sub": 1}\n'
            'x = ("Conv",)\n'
            'y = ("fast", "reference")\n')
    assert sorted(line for line, _ in _literal_op_names(ast.parse(code), names)) == [1, 2]


@pytest.mark.parametrize("name", op_names())
def test_declared_facts_are_consistent(name):
    op = get_op(name)
    assert op.engine in ENGINES and op.precision in PRECISION_CLASS.values()
    assert op.epilogue in (None, "unary", "binary")
    assert op.timing in ("stream", "window", "view", "gather")
    assert set(op.fast_kernels) <= {"blocked-conv", "blocked-pool", "gemm", "session"}
    if op.epilogue is not None or op.vector_code is not None:
        # what joins an epilogue or the fused vector pass is elementwise
        assert op.layout_free, f"{name} joins elementwise paths but is not layout_free"
    if op.timing in ("view", "gather"):
        assert op.precision == "move"
    assert isinstance(op.matmul_inputs, tuple)


def test_the_verifier_s_attribute_table_is_onnx_s():
    """ops/attr_schema.py (what a load checks instructions against, without importing onnx)
    names every registered op, its attributes with onnx.defs' types and its input and output
    counts."""
    import onnx.defs

    from neuron_core.ops.attr_schema import ARITY, ATTRIBUTES
    from neuron_core.ops.registry import op_names
    schemas = {n: onnx.defs.get_schema(n) for n in op_names()}
    assert ATTRIBUTES == {n: {a: s.type.name for a, s in sc.attributes.items()}
                          for n, sc in schemas.items()}
    assert ARITY == {n: (sc.min_input, sc.max_input, sc.min_output, sc.max_output)
                     for n, sc in schemas.items()}
