"""The Neuron logger's default output: torch-neuron's `INFO:Neuron:` lines on stderr until the
application configures logging, never twice. Checked in fresh processes (pytest configures
logging in its own); the configuration of `Neuron.runtime` from NEURON_RT_LOG_* also in this one,
with both loggers restored after each test."""
from __future__ import annotations

import io
import logging
import logging.handlers
import os
import subprocess
import sys
import textwrap

import pytest

from neuron_core import logs
from neuron_core.errors import NeuronError


def _run(code: str, **env: str) -> subprocess.CompletedProcess:
    """`code` run by a fresh interpreter whose environment has no NEURON_RT_LOG_* but `env`."""
    environ = {k: v for k, v in os.environ.items() if not k.startswith("NEURON_RT_LOG_")}
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True,
                          text=True, timeout=60, env={**environ, **env})


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


# --- the runtime's logger, configured from NEURON_RT_LOG_LEVEL / NEURON_RT_LOG_LOCATION -----------

@pytest.fixture(autouse=True)
def logger_state(monkeypatch):
    """The `Neuron` and `Neuron.runtime` loggers as a process starts them (no level, no handlers,
    propagating) for the test, and their levels, handlers and `propagate` back as they were after
    it (handlers it added are closed); the test's environment has no NEURON_RT_LOG_*."""
    for var in (logs.ENV_LOG_LEVEL, logs.ENV_LOG_LOCATION):
        monkeypatch.delenv(var, raising=False)
    loggers = [logging.getLogger(logs.LOGGER), logging.getLogger(logs.RUNTIME_LOGGER)]
    saved = [(lg.level, list(lg.handlers), lg.propagate) for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.NOTSET)
        lg.handlers = []
        lg.propagate = True
    yield
    for lg, (level, handlers, propagate) in zip(loggers, saved):
        for h in lg.handlers:
            if h not in handlers and any(isinstance(f, logs._Routed) for f in h.filters):
                h.close()
        lg.setLevel(level)
        lg.handlers[:] = handlers
        lg.propagate = propagate


def _unconfigured_process() -> None:
    """The `Neuron` logger installed and out of reach of pytest's handlers on the root logger, as
    in a process that has not configured logging. Call it in the test's body: pytest also adds its
    handlers to the loggers that do not propagate when a test starts."""
    logs.install()
    logging.getLogger(logs.LOGGER).propagate = False


@pytest.mark.parametrize("text, level", [("ERROR", logging.ERROR), ("warning", logging.WARNING),
                                         ("Warn", logging.WARNING), ("info", logging.INFO),
                                         ("DEBUG", logging.DEBUG), ("trace", 5), (" Trace ", 5)])
def test_the_level_comes_from_the_environment_in_any_case(text, level):
    logs.configure_runtime_logging({"NEURON_RT_LOG_LEVEL": text})
    assert logs.runtime_log.level == level
    assert logging.getLevelName(logs.TRACE) == "TRACE" and logs.TRACE == 5


def test_unset_means_error_and_keeps_a_level_the_application_set():
    logs.configure_runtime_logging({})
    assert logs.runtime_log.level == logging.ERROR
    logs.runtime_log.handlers.clear()
    logs.runtime_log.setLevel(logging.INFO)
    logs.configure_runtime_logging({})
    assert logs.runtime_log.level == logging.INFO
    logs.configure_runtime_logging({"NEURON_RT_LOG_LEVEL": "debug"})
    assert logs.runtime_log.level == logging.DEBUG
    logs.configure_runtime_logging({})                      # the level set here goes with its variable
    assert logs.runtime_log.level == logging.ERROR


def test_by_default_only_errors_of_the_runtime_print_on_stderr(capsys):
    _unconfigured_process()
    logs.runtime_log.info("loaded %s on NeuronCore %d", "resnet50", 0)
    logs.runtime_log.error("NeuronCore %d is gone", 0)
    logging.getLogger(logs.LOGGER).info("compiled")
    captured = capsys.readouterr()
    assert captured.err == "ERROR:Neuron.runtime:NeuronCore 0 is gone\nINFO:Neuron:compiled\n"
    assert captured.out == ""


def test_debug_and_trace_print_on_the_console_once_and_only_for_the_runtime(capsys, monkeypatch):
    monkeypatch.setenv("NEURON_RT_LOG_LEVEL", "TRACE")
    _unconfigured_process()
    logs.runtime_log.log(logs.TRACE, "queued request %d", 1)
    logs.runtime_log.debug("ran")
    logs.runtime_log.info("loaded")
    logging.getLogger(logs.LOGGER).debug("a compile-time detail stays quiet")
    assert capsys.readouterr().err == "TRACE:Neuron.runtime:queued request 1\n" \
                                      "DEBUG:Neuron.runtime:ran\nINFO:Neuron.runtime:loaded\n"


def test_a_file_location_gets_the_records_with_the_pid_and_the_console_does_not(capsys, tmp_path):
    _unconfigured_process()
    path = tmp_path / "rt.log"
    handler = logs.configure_runtime_logging({"NEURON_RT_LOG_LEVEL": "debug",
                                              "NEURON_RT_LOG_LOCATION": str(path)})
    assert isinstance(handler, logging.FileHandler) and not path.exists()   # opened when first used
    logs.runtime_log.debug("allocated %d bytes", 4096)
    logs.runtime_log.error("an error too")
    handler.flush()
    lines = path.read_text(encoding="utf-8").splitlines()
    assert len(lines) == 2
    assert lines[0].endswith(f" DEBUG Neuron.runtime pid={os.getpid()}: allocated 4096 bytes")
    assert lines[1].endswith(f" ERROR Neuron.runtime pid={os.getpid()}: an error too")
    assert capsys.readouterr().err == ""
    assert logs.runtime_log.propagate is False


def test_a_process_logs_to_the_file_it_is_told(tmp_path):
    path = tmp_path / "rt.log"
    out = _run("""
        import logging
        from neuron_core import logs
        logs.install()
        logs.runtime_log.info("loaded %s on NeuronCore %d", "resnet50", 3)
        logs.runtime_log.debug("below INFO")
    """, NEURON_RT_LOG_LEVEL="INFO", NEURON_RT_LOG_LOCATION=str(path))
    assert out.returncode == 0, out.stderr
    assert out.stderr == "" and out.stdout == ""
    (line,) = path.read_text(encoding="utf-8").splitlines()
    assert line.endswith(": loaded resnet50 on NeuronCore 3") and " INFO Neuron.runtime pid=" in line


def test_a_bad_level_is_named_with_the_values_to_use(monkeypatch):
    with pytest.raises(NeuronError) as err:
        logs.configure_runtime_logging({"NEURON_RT_LOG_LEVEL": "LOUD"})
    assert str(err.value) == "NEURON_RT_LOG_LEVEL='LOUD' is not a log level: " \
                             "use ERROR, WARNING, INFO, DEBUG or TRACE"
    monkeypatch.setenv("NEURON_RT_LOG_LEVEL", "verbose")
    with pytest.raises(NeuronError, match="NEURON_RT_LOG_LEVEL='verbose'"):
        logs.install()


def test_a_file_in_a_missing_directory_is_an_error_that_says_what_to_do(tmp_path):
    before = list(logs.runtime_log.handlers), logs.runtime_log.level, logs.runtime_log.propagate
    missing = tmp_path / "no" / "such"
    with pytest.raises(NeuronError) as err:
        logs.configure_runtime_logging({"NEURON_RT_LOG_LEVEL": "debug",
                                        "NEURON_RT_LOG_LOCATION": str(missing / "rt.log")})
    message = str(err.value)
    assert message.startswith(f"NEURON_RT_LOG_LOCATION='{missing / 'rt.log'}'")
    assert f"the directory {missing} does not exist" in message
    assert "create it, or use console or syslog" in message
    with pytest.raises(NeuronError, match="is a directory"):
        logs.configure_runtime_logging({"NEURON_RT_LOG_LOCATION": str(tmp_path)})
    assert (list(logs.runtime_log.handlers), logs.runtime_log.level,
            logs.runtime_log.propagate) == before


def test_syslog_selects_a_syslog_handler_that_never_crashes(monkeypatch, tmp_path):
    monkeypatch.setattr(logs, "SYSLOG_SOCKET", str(tmp_path / "no-log-socket"))
    handler = logs.configure_runtime_logging({"NEURON_RT_LOG_LOCATION": "SysLog"})
    assert isinstance(handler, logging.handlers.SysLogHandler)
    assert handler.address == ("localhost", 514)
    assert handler.formatter._fmt == logs.SYSLOG_FORMAT
    assert handler.mapPriority("TRACE") == "debug"
    assert logs.runtime_log.handlers == [handler] and logs.runtime_log.propagate is False

    not_a_socket = tmp_path / "log"
    not_a_socket.write_text("")
    monkeypatch.setattr(logs, "SYSLOG_SOCKET", str(not_a_socket))
    monkeypatch.setattr(logging, "raiseExceptions", False)
    handler = logs.configure_runtime_logging({"NEURON_RT_LOG_LOCATION": "syslog",
                                              "NEURON_RT_LOG_LEVEL": "info"})
    assert handler.address == str(not_a_socket)
    logs.runtime_log.info("nobody listens")                 # goes to handleError, raises nothing

    def no_address(*args, **kwargs):
        raise OSError("no network")
    monkeypatch.setattr(logging.handlers.socket, "getaddrinfo", no_address)
    handler = logs.RuntimeSysLogHandler(("localhost", 514))
    handler.emit(logging.makeLogRecord({"msg": "still no crash", "levelname": "INFO"}))


def test_the_same_environment_changes_nothing_and_a_new_one_replaces_only_its_handler(tmp_path):
    env = {"NEURON_RT_LOG_LEVEL": "debug", "NEURON_RT_LOG_LOCATION": str(tmp_path / "a.log")}
    first = logs.configure_runtime_logging(env)
    logs.runtime_log.setLevel(logging.WARNING)              # the application's, after the first call
    assert logs.configure_runtime_logging(dict(env, NEURON_RT_LOG_LEVEL="DEBUG")) is first
    assert logs.runtime_log.level == logging.WARNING
    app = logging.StreamHandler(io.StringIO())
    logs.runtime_log.addHandler(app)

    second = logs.configure_runtime_logging({"NEURON_RT_LOG_LEVEL": "info"})
    assert isinstance(second, logs.RuntimeConsoleHandler)
    assert logs.runtime_log.handlers == [app, second]
    assert logs.runtime_log.propagate is True               # given back with the file handler
    assert logs.runtime_log.level == logging.INFO
    assert first.stream is None                             # closed


def test_an_application_handler_on_the_runtime_logger_keeps_propagate(tmp_path, capsys):
    _unconfigured_process()
    app = logging.StreamHandler(io.StringIO())
    logs.runtime_log.addHandler(app)
    logs.runtime_log.propagate = True
    logs.configure_runtime_logging({"NEURON_RT_LOG_LOCATION": str(tmp_path / "rt.log")})
    assert logs.runtime_log.propagate is True
    logs.runtime_log.error("both")
    assert app.stream.getvalue() == "both\n"
    assert capsys.readouterr().err == ""                    # the file's records stay off the console


@pytest.mark.parametrize("location", ["console", "file"])
def test_an_application_that_calls_basicConfig_gets_no_duplicate_lines(location, tmp_path):
    path = tmp_path / "rt.log"
    out = _run("""
        import logging, sys
        from neuron_core import logs
        logs.install()
        logs.runtime_log.debug("before")
        logs.runtime_log.info("before, at INFO")
        logging.basicConfig(stream=sys.stdout, level=logging.DEBUG, format="app %(name)s %(message)s")
        logs.runtime_log.debug("after")
        logging.getLogger("Neuron").info("compiled")
    """, NEURON_RT_LOG_LEVEL="DEBUG",
        NEURON_RT_LOG_LOCATION=str(path) if location == "file" else "console")
    assert out.returncode == 0, out.stderr
    if location == "console":
        assert out.stderr == "DEBUG:Neuron.runtime:before\nINFO:Neuron.runtime:before, at INFO\n"
        assert out.stdout == "app Neuron.runtime after\napp Neuron compiled\n"
    else:
        assert out.stderr == "" and out.stdout == "app Neuron compiled\n"
        assert [line.rsplit(": ", 1)[1] for line in path.read_text().splitlines()] == \
            ["before", "before, at INFO", "after"]
