"""The Neuron logger's default output: torch-neuron's `INFO:Neuron:` lines on stderr until the
application configures logging, never twice. Checked in fresh processes (pytest configures
logging in its own)."""
from __future__ import annotations

import subprocess
import sys
import textwrap


def _run(code: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True,
                          text=True, timeout=60)


def test_info_lines_print_on_stderr_when_nothing_is_configured():
    out = _run("""
        import logging
        from neuron_core import logs
        logs.install(); logs.install()            # idempotent: one handler
        logging.getLogger("Neuron").info("The neuron partitioner created %d sub-graphs", 1)
        logging.getLogger("Neuron").debug("not at the default level")
    """)
    assert out.returncode == 0, out.stderr
    assert out.stderr == "INFO:Neuron:The neuron partitioner created 1 sub-graphs\n"
    assert out.stdout == ""


def test_an_application_handler_replaces_the_default_and_no_line_doubles():
    out = _run("""
        import logging, sys
        from neuron_core import logs
        logs.install()
        logging.basicConfig(stream=sys.stdout, format="app %(name)s %(message)s")
        logging.getLogger("Neuron").info("compiled")
    """)
    assert out.returncode == 0, out.stderr
    assert out.stdout == "app Neuron compiled\n" and out.stderr == ""


def test_a_level_the_user_set_is_kept():
    out = _run("""
        import logging
        logging.getLogger("Neuron").setLevel(logging.WARNING)
        from neuron_core import logs
        logs.install()
        logging.getLogger("Neuron").info("quiet")
        logging.getLogger("Neuron").warning("loud")
    """)
    assert out.stderr == "WARNING:Neuron:loud\n", out.stderr


def test_importing_a_plugin_turns_the_lines_on():
    out = _run("""
        import torch, torch_neuron
        torch.neuron.trace(torch.nn.Sequential(torch.nn.Linear(4, 4), torch.nn.ReLU()).eval(),
                           torch.zeros(1, 4))
    """)
    assert out.returncode == 0, out.stderr
    lines = out.stderr.splitlines()
    assert "INFO:Neuron:Number of arithmetic operators (pre-compilation) before = 2, fused = 2, " \
           "percent fused = 100.00%" in lines, out.stderr
    assert "INFO:Neuron:Neuron successfully compiled 1 sub-graphs, Total fused subgraphs = 1, " \
           "Percent of model sub-graphs successfully compiled = 100.0%" in lines
    assert lines.count("INFO:Neuron:The neuron partitioner created 1 sub-graphs") == 1
