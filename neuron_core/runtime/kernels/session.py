"""Session glue: onnxruntime sessions of small graphs whose constant weights it reads from the
caller's memory, each with a pool of intra-op threads of its own that sleeps when idle, while the
process's budget of pool threads lasts (then on the calling thread alone)."""
from __future__ import annotations

import logging
import os
import threading
import weakref

import numpy as np

log = logging.getLogger("Neuron")

OPSET = 17
#: intra-op threads per kernel session: every session has its own pool (a process-wide one would
#: make onnxruntime refuse every other session in the process that keeps the default options), so a
#: model holds (threads - 1) x instructions idle threads; more than 4 rarely pays for a single op
MAX_THREADS = 4
#: the pool threads all kernel sessions of the process may hold together: a program of thousands
#: of instructions gets pools for its first sessions and runs the rest on the calling thread
#: (a session of one intra-op thread starts none), so the thread count stays bounded
THREAD_BUDGET = 64
#: a session whose constant weights exceed this runs on them unpacked: onnxruntime's packed copy
#: (1.5-2.4x faster small-batch MatMuls) would hold a second copy of large weights
PREPACK_MAX_BYTES = 4 << 20

_budget_lock = threading.Lock()
_threads_held = 0


def _take_threads() -> int:
    """Intra-op threads for a new session, taken from the process's budget (1: no pool)."""
    global _threads_held
    want = min(len(os.sched_getaffinity(0)), MAX_THREADS)
    with _budget_lock:
        if want <= 1 or _threads_held + want - 1 > THREAD_BUDGET:
            return 1
        _threads_held += want - 1
        return want


def _give_threads(n: int) -> None:
    global _threads_held
    with _budget_lock:
        _threads_held -= n - 1


def threads_held() -> int:
    """Pool threads the live kernel sessions of the process hold."""
    return _threads_held


def session_options(ort, threads: int):
    """Options of a kernel session: a spinning pool would hold a core for a while after every call
    and slow down the next kernel's pool, so its threads sleep when idle."""
    options = ort.SessionOptions()
    options.log_severity_level = 3
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return options


def attribute(name: str, value):
    """An ONNX attribute of an instruction's attribute value (ValueError for a tagged array, which
    no kernel op takes as an attribute)."""
    from onnx import helper
    if isinstance(value, dict):
        raise ValueError(name)
    return helper.make_attribute(name, value)


def external(name: str, array: np.ndarray):
    """An initializer whose data the session takes from an OrtValue (no protobuf copy)."""
    from onnx import TensorProto, helper
    tensor = TensorProto(name=name, data_type=helper.np_dtype_to_tensor_dtype(array.dtype),
                         dims=array.shape, data_location=TensorProto.EXTERNAL)
    entry = tensor.external_data.add()
    entry.key, entry.value = "location", name
    return tensor


def session(graph, weights: dict, what: str):
    """An onnxruntime session running `graph` with `weights` as external initializers, and the
    OrtValues it reads them from (to be kept alive with it); (None, None) if it takes no such
    graph (`what` names it in the debug log)."""
    import onnxruntime as ort
    from onnx import helper
    domains = {node.domain for node in graph.node} - {""}
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)] + [
        helper.make_opsetid(d, 1) for d in domains])
    threads = _take_threads()
    options = session_options(ort, threads)
    if sum(a.nbytes for a in weights.values()) > PREPACK_MAX_BYTES:
        options.add_session_config_entry("session.disable_prepacking", "1")
    values = [ort.OrtValue.ortvalue_from_numpy(np.ascontiguousarray(a)) for a in weights.values()]
    if weights:
        options.add_external_initializers(list(weights), values)
    try:
        found = ort.InferenceSession(model.SerializeToString(), options,
                                     providers=["CPUExecutionProvider"])
    except Exception as exc:  # a case the kernel library does not take: the reference runs it
        _give_threads(threads)
        log.debug("no fast kernel for %s: %s", what, exc)
        return None, None
    weakref.finalize(found, _give_threads, threads)
    return found, values
