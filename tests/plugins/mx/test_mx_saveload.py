"""Compiled symbol + params saved with sym.save / mx.nd.save load, run and estimate (with the host
work measured at compile time) in a fresh process after `import mx_neuron` (even after a plain
`import mxnet` failed there first), and fail clearly without it."""
from __future__ import annotations

import numpy as np
import pytest

mx_neuron = pytest.importorskip("mx_neuron")
mx = pytest.importorskip("mxnet")

from ..fresh_process import run_python as _run  # noqa: E402
from .mx_helpers import FP32_TOL, rel_err  # noqa: E402
from .test_mx_api import SHAPE, _cnn  # noqa: E402


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("mx_saved")
    sym, args, aux, x, ref = _cnn(middle=lambda y: mx.sym.sin(y, name="odd_sin"))
    csym, cargs, caux = mx_neuron.compile(sym, args, aux, inputs={"data": SHAPE},
                                          cost_aware=False)
    csym.save(str(tmp / "model-symbol.json"))
    mx.nd.save(str(tmp / "model-0000.params"),
               {**{f"arg:{k}": v for k, v in cargs.items()},
                **{f"aux:{k}": v for k, v in caux.items()}})
    np.save(tmp / "x.npy", x)
    return tmp, ref


#: the saved checkpoint loaded, bound on a NeuronCore and run on x.npy, the output saved
FORWARD = """
        sym, args, aux = mx.model.load_checkpoint("model", 0)
        mod = mx.mod.Module(sym, data_names=["data"], label_names=None, context=mx.neuron())
        mod.bind(data_shapes=[("data", (2, 3, 16, 16))], for_training=False)
        mod.set_params(args, aux)
        mod.forward(mx.io.DataBatch([mx.nd.array(np.load("x.npy"))]), is_train=False)
        np.save("{out}", mod.get_outputs()[0].asnumpy())
"""


@pytest.mark.parametrize("hooks", ["off", "on"])
def test_saveload_fresh_process_after_failed_mxnet_import(saved, hooks):
    """Without the import hooks (neuron_sim_hooks.py) a plain `import mxnet` fails half-way on
    numpy 1.26 and `import mx_neuron` completes it; with them (the default) it works at once."""
    tmp, ref = saved
    proc = _run("""
        import numpy as np
        try:
            import mxnet   # numpy 1.26 lacks np.bool: MXNet 1.9.1 fails half-way
            print("plain import worked")
        except AttributeError:
            print("plain import failed")
        import mx_neuron   # restores the alias and completes the import
        import mxnet as mx
    """ + FORWARD.format(out="out.npy") + """
        nodes = __import__("json").load(open("model-symbol.json"))["nodes"]
        print("ops", sorted({n["op"] for n in nodes}))
        row = mx_neuron.estimate(sym, args).instances["inf1.xlarge"]
        print("estimate host", row.host_ms, "device", row.device_ms)
    """, tmp, NEURON_SIM_NO_IMPORT_HOOKS="1" if hooks == "off" else "0")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert f"plain import {'failed' if hooks == 'off' else 'worked'}" in proc.stdout
    assert "ops ['_neuron_subgraph_op', 'null', 'sin']" in proc.stdout
    host, device = map(float, proc.stdout.split("estimate host ")[1].split(" device "))
    assert host > 0 and device > 0
    assert rel_err(np.load(tmp / "out.npy"), ref) < FP32_TOL
    # the NEFFs travel in the params file, not the symbol JSON
    assert (tmp / "model-symbol.json").stat().st_size < 5000


def test_saveload_without_plugin_import_names_the_op(saved):
    """With the import hooks off, MXNet alone cannot load a compiled symbol and names the op."""
    tmp, _ = saved
    proc = _run("""
        import numpy as np
        np.bool = bool
        import mxnet as mx
        try:
            mx.sym.load("model-symbol.json")
        except mx.base.MXNetError as exc:
            print("ERROR:", str(exc).strip().splitlines()[-1])
    """, tmp, NEURON_SIM_NO_IMPORT_HOOKS="1")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "Operator _neuron_subgraph_op is not registered" in proc.stdout


def test_saveload_with_only_import_mxnet(saved):
    """A user's script that imports only mxnet (as the Inf1 tutorials' inference scripts do)
    loads and runs the compiled symbol: the hooks import mx_neuron with it."""
    tmp, ref = saved
    proc = _run("""
        import mxnet as mx
        import numpy as np
    """ + FORWARD.format(out="out2.npy"), tmp)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert rel_err(np.load(tmp / "out2.npy"), ref) < FP32_TOL
