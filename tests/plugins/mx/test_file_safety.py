"""A compiled symbol whose `_neuron_subgraph_op` config is damaged fails with a clear error and
never kills the process: mx.sym.load says so with a NeuronError naming the node, and MXNet's own
loader, which calls the op's callbacks, raises MXNetError. Run in a fresh process, so a crash is
a failed test here."""
from __future__ import annotations

import json

import pytest

mx_neuron = pytest.importorskip("mx_neuron")
mx = pytest.importorskip("mxnet")

from ..fresh_process import run_python  # noqa: E402

RUN = """
    import mx_neuron, mxnet as mx, numpy as np
    from neuron_core.errors import NeuronError
    from mx_neuron.jsonform import _ORIGINAL
    try:
        mx.sym.load("model-symbol.json")
    except NeuronError as exc:
        print("NeuronError", str(exc).startswith("node ") and "malformed config" in str(exc))
    params = mx.nd.load("model-0000.params")
    args = {k[4:]: v for k, v in params.items() if k.startswith("arg:")}
    args["data"] = mx.nd.ones((1, 4))
    try:   # MXNet's own loader: the damaged config reaches the op's callbacks
        sym = _ORIGINAL["load_json"](open("model-symbol.json").read())
        sym.bind(mx.cpu(), args).forward()
        mx.nd.waitall()
    except mx.base.MXNetError:
        print("MXNetError")
"""


@pytest.mark.parametrize("damage", ["{bad", "[]"])
def test_damaged_config_is_an_error_not_a_crash(tmp_path, damage):
    data = mx.sym.Variable("data")
    sym = mx.sym.relu(mx.sym.FullyConnected(data, num_hidden=3, name="fc"))
    args = {"fc_weight": mx.nd.ones((3, 4)), "fc_bias": mx.nd.zeros((3,))}
    csym, cargs, _ = mx_neuron.compile(sym, args, {}, inputs={"data": (1, 4)},
                                       minimum_segment_size=1, cost_aware=False)
    graph = json.loads(mx_neuron.jsonform.mxnet_json(csym))   # MXNet's form: Custom nodes
    nodes = [n for n in graph["nodes"] if n.get("attrs", {}).get("op_type") == "_neuron_subgraph_op"]
    assert nodes, "the model compiled to no Neuron sub-graph"
    nodes[0]["attrs"]["config"] = damage
    (tmp_path / "model-symbol.json").write_text(json.dumps(graph))
    mx.nd.save(str(tmp_path / "model-0000.params"), {f"arg:{k}": v for k, v in cargs.items()})
    done = run_python(RUN, tmp_path, timeout=120)
    assert done.returncode == 0, f"process died ({done.returncode}): {done.stderr[-800:]}"
    lines = [line for line in done.stdout.splitlines() if line in ("NeuronError True", "MXNetError")]
    assert lines == ["NeuronError True", "MXNetError"], done.stdout[-800:] + done.stderr[-800:]
    assert "malformed config attribute" in done.stdout   # MXNet prints the callback's error
